package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/mqim/mqim/protocol"
)

// uploadMedia uploads body over HTTP as user [IM-12.2-1] and returns the
// decoded result.
func uploadMedia(t *testing.T, n *testNode, user, contentType string, body []byte) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+n.HTTPAddr()+"/v1/media?name=pic.png", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token(t, user))
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != 201 {
		t.Fatalf("upload: %d %v %v", resp.StatusCode, res, err)
	}
	return res
}

// TestAttachmentMessage: an image is uploaded over HTTP, sent as an image
// message with its URL and metadata [IM-12.1], received by bob, who
// downloads the same bytes with his own token [IM-12.2].
func TestAttachmentMessage(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		alice := dl.dial(t, n, "alice")
		bob := dl.dial(t, n, "bob")

		png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{1, 2, 3}, 300)...)
		up := uploadMedia(t, n, "alice", "image/png", png)
		body := map[string]any{"url": up["url"], "mime": up["mime"], "size": up["size"], "sha256": up["sha256"],
			"width": 640, "height": 480, "thumbnail": up["url"]}
		alice.sendOK(protocol.Send{Cmid: "img-1", To: "bob", Type: protocol.TypeImage, Body: body})
		ev := bob.nextMessage()
		if ev.Msg.Type != protocol.TypeImage || ev.Msg.Body["url"] != up["url"] || ev.Msg.Body["sha256"] != up["sha256"] {
			t.Fatalf("bob got %v", ev)
		}
		url, _ := ev.Msg.Body["url"].(string)
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+token(t, "bob"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(got, png) {
			t.Fatalf("download of %s: %d, %d bytes", url, resp.StatusCode, len(got))
		}
	})
}

// TestMessageTypes: the body of each type is validated by the table of
// [IM-12.1-1]; a refused body stores nothing.
func TestMessageTypes(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		alice := dl.dial(t, n, "alice")
		dl.dial(t, n, "bob")
		const u = "https://cdn.example.com/a.bin"
		ok := []protocol.Send{
			{Type: protocol.TypeImage, Body: map[string]any{"url": "/v1/media/0123456789abcdef0123456789abcdef"}},
			{Type: protocol.TypeVoice, Body: map[string]any{"url": u, "duration": 3.5, "mime": "audio/ogg"}},
			{Type: protocol.TypeVideo, Body: map[string]any{"url": u, "duration": 10, "width": 1920, "height": 1080, "thumbnail": u}},
			{Type: protocol.TypeFile, Body: map[string]any{"url": u, "name": "report.pdf", "size": 12345, "mime": "application/pdf"}},
			{Type: protocol.TypeLocation, Body: map[string]any{"lat": 48.8584, "lon": 2.2945, "name": "Eiffel Tower"}},
			{Type: protocol.TypeLocation, Body: map[string]any{"lat": -90, "lon": 180}},
			{Type: protocol.TypeCustom, Body: map[string]any{}},
		}
		for i, s := range ok {
			s.Cmid, s.To = "ok-"+string(rune('a'+i)), "bob"
			alice.sendOK(s)
		}
		bad := []struct {
			name string
			s    protocol.Send
			code string
		}{
			{"image without url", protocol.Send{Type: protocol.TypeImage, Body: map[string]any{"width": 1}}, protocol.CodeBadRequest},
			{"image with a relative url", protocol.Send{Type: protocol.TypeImage, Body: map[string]any{"url": "pic.png"}}, protocol.CodeBadRequest},
			{"image with a javascript url", protocol.Send{Type: protocol.TypeImage, Body: map[string]any{"url": "javascript:alert(1)"}}, protocol.CodeBadRequest},
			{"image with negative width", protocol.Send{Type: protocol.TypeImage, Body: map[string]any{"url": u, "width": -1}}, protocol.CodeBadRequest},
			{"image with fractional size", protocol.Send{Type: protocol.TypeImage, Body: map[string]any{"url": u, "size": 1.5}}, protocol.CodeBadRequest},
			{"voice without duration", protocol.Send{Type: protocol.TypeVoice, Body: map[string]any{"url": u}}, protocol.CodeBadRequest},
			{"voice with a string duration", protocol.Send{Type: protocol.TypeVoice, Body: map[string]any{"url": u, "duration": "3"}}, protocol.CodeBadRequest},
			{"video with url a number", protocol.Send{Type: protocol.TypeVideo, Body: map[string]any{"url": 5}}, protocol.CodeBadRequest},
			{"file without name", protocol.Send{Type: protocol.TypeFile, Body: map[string]any{"url": u}}, protocol.CodeBadRequest},
			{"location without lon", protocol.Send{Type: protocol.TypeLocation, Body: map[string]any{"lat": 1}}, protocol.CodeBadRequest},
			{"location off the globe", protocol.Send{Type: protocol.TypeLocation, Body: map[string]any{"lat": 91, "lon": 0}}, protocol.CodeBadRequest},
			{"unknown type", protocol.Send{Type: "sticker", Body: map[string]any{"url": u}}, protocol.CodeUnknownType},
		}
		for i, c := range bad {
			c.s.Cmid, c.s.To = "bad-"+string(rune('a'+i)), "bob"
			mark := alice.mark()
			if err := alice.checkRefused(mark, alice.send(c.s), c.code, c.s.Cmid); err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
		}
		if got := alice.historyAll("d:alice:bob"); len(got) != len(ok) {
			t.Fatalf("history holds %d messages, want the %d valid ones", len(got), len(ok))
		}
	})
}

// TestHugeDeclaredMap: a 40-byte send whose body declares 2^32 map entries
// is refused as bad_payload at once; it used to make the node allocate
// gigabytes [IM-6.1-3].
func TestHugeDeclaredMap(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		alice := dl.dial(t, n, "alice")
		dl.dial(t, n, "bob")
		p := []byte("\x84\xa4cmid\xa2c1\xa2to\xa3bob\xa4type\xa4text\xa4body\xdf\xff\xff\xff\xff")
		mark := alice.mark()
		alice.expectRefused(mark, alice.publish(protocol.SendTopic("alice"), p), protocol.CodeBadPayload, anyCmid)
		alice.sendOK(text("c2", "bob", "still here"))
	})
}
