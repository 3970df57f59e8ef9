package cluster

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mqim/mqim/internal/testvgw"
	"github.com/mqim/mqim/protocol/authtoken"
)

// [IM-12.2-4] Three mqimd processes on one S3 bucket (a real versitygw):
// a file uploaded through any node downloads, whole and by range, through
// every other node. With each node on its own media directory (the
// default) the other nodes would answer 404.
func TestMediaAcrossNodes(t *testing.T) {
	srv := testvgw.Start(t)
	s3 := srv.Config()
	flags, env := testvgw.Flags(s3)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v) // the nodes inherit it
	}
	c := startCluster(t, 3, flags...)

	token := func(user string) string {
		tok, err := authtoken.Mint(secret, user, "", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	do := func(method, url, tok string, body []byte, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}

	for i, up := range c.nodes {
		data := make([]byte, 300<<10)
		rand.Read(data)
		resp, b := do("POST", "http://"+up.http+"/v1/media?name=photo.jpg", token("alice"), data, "Content-Type", "image/jpeg")
		var res struct {
			ID, URL string
		}
		if resp.StatusCode != 201 || json.Unmarshal(b, &res) != nil {
			t.Fatalf("upload through node %d: %d %s", up.id, resp.StatusCode, b)
		}
		for j, down := range c.nodes {
			if j == i {
				continue
			}
			url := fmt.Sprintf("http://%s/v1/media/%s", down.http, res.ID)
			resp, b := do("GET", url, token("bob"), nil)
			if resp.StatusCode != 200 || !bytes.Equal(b, data) || resp.Header.Get("Content-Type") != "image/jpeg" {
				t.Errorf("uploaded through node %d, downloaded through node %d: %d %q, %d bytes", up.id, down.id, resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
			}
			resp, b = do("GET", url, token("bob"), nil, "Range", "bytes=1000-1999")
			if resp.StatusCode != 206 || !bytes.Equal(b, data[1000:2000]) {
				t.Errorf("range through node %d: %d, %d bytes", down.id, resp.StatusCode, len(b))
			}
			if resp, _ := do("GET", url, "", nil); resp.StatusCode != 401 {
				t.Errorf("download through node %d without a token: %d, want 401", down.id, resp.StatusCode)
			}
		}
	}
}
