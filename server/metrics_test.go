package server_test

import (
	"bufio"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqim/mqim/internal/testnode"
	"github.com/mqim/mqim/server"
)

// Every mqim_* metric a node serves is documented in docs/METRICS.md,
// with its name as written there.
func TestMetricsAreDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	words := filepath.Join(t.TempDir(), "words.txt")
	if err := os.WriteFile(words, []byte("word\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := testnode.Start(t, testnode.NewDB(t, testnode.SQLite), []byte("metrics-test"), slog.New(slog.NewTextHandler(io.Discard, nil)),
		func(c *server.Config) { // moderation's metrics are served only when it is on
			c.Moderation = server.Moderation{RejectLists: []string{words}, WebhookURL: "http://127.0.0.1:9/check", WebhookSecret: []byte("sixteen bytes or more")}
		})
	resp, err := http.Get("http://" + n.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	seen := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "# TYPE mqim_") {
			continue
		}
		name := strings.Fields(line)[2]
		seen++
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("metric %s is served but not in docs/METRICS.md", name)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if seen < 10 {
		t.Fatalf("only %d mqim_* metrics served", seen)
	}
}
