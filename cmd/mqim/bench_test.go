package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqim/mqim/clients/bench"
	"github.com/mqim/mqim/internal/testdeps"
)

// TestBenchSmoke runs every scenario of the built binary briefly against a
// node (on SQLite, the default store) and the references (Mosquitto only
// when installed, which scripts/test and CI require: testdeps.Required),
// appends the results to a file and builds the report from it: a smoke test
// of the commands and their JSON, not a timed assertion.
func TestBenchSmoke(t *testing.T) {
	bin := buildCLI(t)
	n := startNode(t)
	dir := t.TempDir()
	results := filepath.Join(dir, "results.jsonl")
	refs := "bare"
	if _, err := bench.MosquittoPath(); err == nil {
		refs = "bare,mosquitto"
	} else if testdeps.Required() {
		t.Fatalf("%v (%s=1 or CI=true: the Mosquitto reference must run)", err, testdeps.EnvRequire)
	}
	common := []string{"--server", "mqtt://" + n.MQTTAddr(), "--secret", cliSecret, "--json", "--ref", refs, "--out", results}
	for _, args := range [][]string{
		{"bench", "1to1", "--senders", "2", "--inflight", "2", "--duration", "300ms"},
		{"bench", "sync", "--events", "300", "--senders", "2", "--inflight", "4"},
		{"bench", "conns", "--conns", "20", "--settle", "10ms", "--metrics", "http://" + n.HTTPAddr() + "/metrics"},
		{"bench", "group", "--members", "5", "--messages", "20"},
	} {
		r := mqim(t, bin, append(args, common...)...)
		if r.code != 0 {
			t.Fatalf("mqim %v: %+v", args, r)
		}
		targets := map[string]bool{}
		for line := range strings.Lines(r.stdout) {
			var s struct {
				Scenario, Target         string
				MsgsPerSec               float64  `json:"msgs_per_sec"`
				P50                      *float64 `json:"p50_ms"`
				P99                      *float64 `json:"p99_ms"`
				Errors, Lost, Duplicates *int64
				Members                  int
			}
			if err := json.Unmarshal([]byte(line), &s); err != nil {
				t.Fatalf("mqim %v: not JSON: %q", args, line)
			}
			if s.Scenario != args[1] || s.P50 == nil || s.P99 == nil || s.Errors == nil || s.Lost == nil || s.Duplicates == nil || s.MsgsPerSec <= 0 {
				t.Errorf("mqim %v: summary %s", args, line)
			}
			// mqimd must lose nothing; a reference's own losses (bare mochi
			// can lose a queued message, clients/bench) are reported, not ours.
			if s.Target == "mqimd" && (*s.Lost != 0 || *s.Duplicates != 0 || *s.Errors != 0) {
				t.Errorf("mqim %v: lost, duplicates or errors: %s", args, line)
			}
			if s.Scenario == "group" && s.Members != 5 {
				t.Errorf("mqim %v: members: %s", args, line)
			}
			targets[s.Target] = true
		}
		for _, want := range append([]string{"mqimd"}, strings.Split(refs, ",")...) {
			if !targets[want] {
				t.Errorf("mqim %v: no summary for %s:\n%s", args, want, r.stdout)
			}
		}
	}
	doc := filepath.Join(dir, "BENCHMARKS.md")
	os.WriteFile(doc, []byte("# B\n\n<!-- mqim bench report: begin -->\nold\n<!-- mqim bench report: end -->\n\nafter\n"), 0o644)
	charts := filepath.Join(dir, "bench")
	if r := mqim(t, bin, "bench", "report", "--in", results, "--doc", doc, "--charts", charts); r.code != 0 {
		t.Fatalf("bench report: %+v", r)
	}
	b, _ := os.ReadFile(doc)
	for _, want := range []string{"### 1:1 messaging", "### Group fan-out", "### Offline sync pull", "### Idle connections", "](bench/bench-conns.svg)", "| mqimd |", "after\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("report lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "old") {
		t.Error("report kept the old section")
	}
	for _, name := range []string{"bench-1to1.svg", "bench-group.svg", "bench-sync.svg", "bench-conns.svg"} {
		svg, err := os.ReadFile(filepath.Join(charts, name))
		if err != nil || !strings.HasPrefix(string(svg), "<svg") || !strings.Contains(string(svg), "mqimd") {
			t.Errorf("%s: %v %.100s", name, err, svg)
		}
	}
}
