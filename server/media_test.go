package server_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mqim/mqim/internal/testnode"
	"github.com/mqim/mqim/media"
	"github.com/mqim/mqim/protocol/authtoken"
)

type uploadResult struct {
	media.Result
	Error struct {
		Code string `json:"code"`
	} `json:"error"`
}

func upload(t *testing.T, addr, token, contentType, query string, body []byte) (int, uploadResult) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/media"+query, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r uploadResult
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("upload answered %d with Content-Type %q", resp.StatusCode, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("upload answered %d: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, r
}

// [IM-12.2] Upload with a user token, then download with another user's
// token; limits and types are enforced with JSON errors. Media do not touch
// the store: the default one, SQLite, will do.
func TestMedia(t *testing.T) {
	secret := []byte("media-test")
	n := testnode.Start(t, testnode.NewDB(t, testnode.SQLite), secret, slog.New(slog.NewTextHandler(io.Discard, nil)))
	mint := func(user string) string {
		tok, err := authtoken.Mint(secret, user, "", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	alice, bob := mint("alice"), mint("bob")
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 1000)...)
	sum := sha256.Sum256(png)

	status, res := upload(t, n.HTTPAddr(), alice, "image/png", "?name=cat.png", png)
	if status != 201 || res.Mime != "image/png" || res.Size != int64(len(png)) || res.SHA256 != hex.EncodeToString(sum[:]) ||
		res.Name != "cat.png" || res.URL != "http://"+n.HTTPAddr()+"/v1/media/"+res.ID {
		t.Fatalf("upload: %d %+v", status, res)
	}

	get := func(token, url string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, b := get(bob, res.URL)
	if resp.StatusCode != 200 || !bytes.Equal(b, png) || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("download: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
	}
	if resp, b = get(bob, res.URL, "Range", "bytes=0-7"); resp.StatusCode != 206 || !bytes.Equal(b, png[:8]) {
		t.Fatalf("range download: %d %q", resp.StatusCode, b)
	}
	if resp, _ = get("", res.URL); resp.StatusCode != 401 {
		t.Fatalf("download without token: %d, want 401", resp.StatusCode)
	}
	if resp, _ = get(bob, "http://"+n.HTTPAddr()+"/v1/media/"+strings.Repeat("0", 32)); resp.StatusCode != 404 {
		t.Fatalf("unknown id: %d, want 404", resp.StatusCode)
	}
	if resp, _ = get(bob, "http://"+n.HTTPAddr()+"/v1/media/..%2F..%2Fetc"); resp.StatusCode != 404 {
		t.Fatalf("path id: %d, want 404", resp.StatusCode)
	}

	// The type is sniffed when no Content-Type is sent.
	if status, res := upload(t, n.HTTPAddr(), alice, "", "", []byte("plain words\n")); status != 201 || res.Mime != "text/plain" {
		t.Fatalf("sniffed upload: %d %+v", status, res)
	}

	cases := []struct {
		name, token, ct, query string
		body                   []byte
		status                 int
		code                   string
	}{
		{"no token", "", "image/png", "", png, 401, "not_authorized"},
		{"bad token", "x.y.z", "image/png", "", png, 401, "not_authorized"},
		{"too large", alice, "image/png", "", make([]byte, 1<<20+1), 413, "too_large"},
		{"forbidden type", alice, "text/html", "", []byte("<p>hi</p>"), 415, "unsupported_media"},
		{"sniffed forbidden type", alice, "", "", []byte("<html><script>x</script></html>"), 415, "unsupported_media"},
		{"bad content type", alice, "image/", "", png, 415, "unsupported_media"},
		{"empty", alice, "image/png", "", nil, 400, "bad_request"},
		{"bad name", alice, "image/png", "?name=a%2Fb", png, 400, "bad_request"},
	}
	for _, c := range cases {
		status, res := upload(t, n.HTTPAddr(), c.token, c.ct, c.query, c.body)
		if status != c.status || res.Error.Code != c.code {
			t.Errorf("%s: %d %q, want %d %q", c.name, status, res.Error.Code, c.status, c.code)
		}
	}
}

// Media ids are safe file names [IM-12.2-1].
func TestMediaID(t *testing.T) {
	if !media.ValidID(media.NewID()) || media.ValidID("../../etc/passwd") {
		t.Fatal("ValidID")
	}
}
