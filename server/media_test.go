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
	"github.com/mqim/mqim/internal/testvgw"
	"github.com/mqim/mqim/media"
	"github.com/mqim/mqim/protocol/authtoken"
	"github.com/mqim/mqim/server"
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

// mediaBackends are the attachment backends node-level media tests run on:
// local disk (the default) and S3 on a real versitygw.
var mediaBackends = []struct {
	name   string
	config func(tb testing.TB) func(*server.Config)
}{
	{"disk", func(testing.TB) func(*server.Config) { return nil }}, // testnode's default
	{"s3", func(tb testing.TB) func(*server.Config) {
		s3 := testvgw.Start(tb).Config()
		return func(c *server.Config) { c.Media.S3 = s3 }
	}},
}

// forEachMediaBackend runs f on every store and every media backend.
func forEachMediaBackend(t *testing.T, f func(t *testing.T, db testnode.DB, opt func(*server.Config))) {
	testnode.ForEachBackend(t, func(t *testing.T, b testnode.Backend) {
		for _, m := range mediaBackends {
			t.Run(m.name, func(t *testing.T) { f(t, testnode.NewDB(t, b), m.config(t)) })
		}
	})
}

// [IM-12.2] Upload with a user token, then download with another user's
// token; limits and types are enforced with JSON errors. On both stores and
// both media backends.
func TestMedia(t *testing.T) {
	forEachMediaBackend(t, testMedia)
}

func testMedia(t *testing.T, db testnode.DB, opt func(*server.Config)) {
	secret := []byte("media-test")
	n := testnode.Start(t, db, secret, slog.New(slog.NewTextHandler(io.Discard, nil)), opt)
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

// [IM-12.2-2], [IM-12.2-3], [IM-12.2-4] When the S3 server is down, uploads
// and downloads answer 503 unavailable (and count in
// mqim_media_storage_errors_total); the node keeps serving, and once the
// server is back, what was stored downloads and uploads work again.
func TestMediaS3Down(t *testing.T) {
	secret := []byte("media-test")
	srv := testvgw.Start(t)
	s3 := srv.Config()
	n := testnode.Start(t, testnode.NewDB(t, testnode.SQLite), secret, slog.New(slog.NewTextHandler(io.Discard, nil)),
		func(c *server.Config) { c.Media.S3 = s3 })
	tok, err := authtoken.Mint(secret, "alice", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	status, res := upload(t, n.HTTPAddr(), tok, "text/plain", "", []byte("kept"))
	if status != 201 {
		t.Fatalf("upload: %d %+v", status, res)
	}
	srv.Stop()
	if status, r := upload(t, n.HTTPAddr(), tok, "text/plain", "", []byte("lost")); status != 503 || r.Error.Code != "unavailable" {
		t.Errorf("upload with S3 down: %d %q, want 503 unavailable", status, r.Error.Code)
	}
	req, _ := http.NewRequest("GET", res.URL, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body uploadResult
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 503 || body.Error.Code != "unavailable" {
		t.Errorf("download with S3 down: %d %q, want 503 unavailable", resp.StatusCode, body.Error.Code)
	}
	resp, err = http.Get("http://" + n.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range []string{`mqim_media_storage_errors_total{op="put"} 1`, `mqim_media_storage_errors_total{op="open"} 1`} {
		if !strings.Contains(string(m), line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}
	if resp, err := http.Get("http://" + n.HTTPAddr() + "/livez"); err != nil || resp.StatusCode != 200 {
		t.Errorf("livez with S3 down: %v %v", resp, err)
	}

	// Back: what was stored is there, and uploads work again.
	srv.Restart(t)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "kept" {
		t.Errorf("download with S3 back: %d %q", resp.StatusCode, b)
	}
	if status, r := upload(t, n.HTTPAddr(), tok, "text/plain", "", []byte("new")); status != 201 {
		t.Errorf("upload with S3 back: %d %+v", status, r)
	}
}

// [IM-12.2-4] A node whose S3 configuration is wrong does not start, with
// an error that says why.
func TestMediaS3BadConfig(t *testing.T) {
	srv := testvgw.Start(t)
	s3 := srv.Config()
	s3.SecretKey = "wrong"
	db := testnode.NewDB(t, testnode.SQLite)
	st, err := db.Open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = server.New(server.Config{Secret: []byte("x"), Store: st, Media: server.Media{S3: s3}})
	if err == nil || !strings.Contains(err.Error(), "media: S3 bucket "+s3.Bucket) || !strings.Contains(err.Error(), "credentials refused") {
		t.Fatalf("server.New with a wrong secret: %v", err)
	}
}

// BenchmarkMedia uploads a 1 MiB file and downloads it through a node, per
// media backend: go test -run X -bench Media -benchtime 50x ./server
func BenchmarkMedia(b *testing.B) {
	secret := []byte("media-bench")
	tok, err := authtoken.Mint(secret, "alice", "", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	for _, m := range mediaBackends {
		b.Run(m.name, func(b *testing.B) {
			n := testnode.Start(b, testnode.NewDB(b, testnode.SQLite), secret, slog.New(slog.NewTextHandler(io.Discard, nil)),
				m.config(b), func(c *server.Config) { c.Media.MaxBytes = 2 << 20 })
			b.SetBytes(2 * int64(len(data)))
			for b.Loop() {
				req, _ := http.NewRequest("POST", "http://"+n.HTTPAddr()+"/v1/media", bytes.NewReader(data))
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", "application/octet-stream")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				var res media.Result
				json.NewDecoder(resp.Body).Decode(&res)
				resp.Body.Close()
				if resp.StatusCode != 201 {
					b.Fatalf("upload: %d", resp.StatusCode)
				}
				req, _ = http.NewRequest("GET", res.URL, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				if resp, err = http.DefaultClient.Do(req); err != nil {
					b.Fatal(err)
				}
				got, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || got != int64(len(data)) {
					b.Fatalf("download: %d, %d bytes", resp.StatusCode, got)
				}
			}
		})
	}
}
