// Package grafana checks the Grafana dashboard (dashboard.json): every
// expression parses as PromQL, and every metric it uses is served by a real
// mqimd (or, for the metrics a node registers only when their feature is
// on, is documented in docs/METRICS.md). It is a module of its own so that
// the Prometheus query parser and its dependencies stay out of the
// server's build (scripts/test runs it in this folder).
package grafana

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// promql parses PromQL as Prometheus does, with its default options.
var promql = parser.NewParser(parser.Options{})

// conditional metrics are registered only with their feature on: push
// providers configured, other nodes on the bus.
var conditional = []string{"mqim_push_", "mqim_bus_"}

type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// metricsOf parses the dashboard's expressions and returns the metric
// names they select, each with the panel that uses it.
func metricsOf(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	names := map[string]string{}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			expr, err := promql.ParseExpr(tg.Expr)
			if err != nil {
				t.Errorf("panel %q: %q: %v", p.Title, tg.Expr, err)
				continue
			}
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				if vs, ok := n.(*parser.VectorSelector); ok {
					for _, m := range vs.LabelMatchers {
						if m.Name == labels.MetricName {
							names[m.Value] = p.Title
						}
					}
				}
				return nil
			})
		}
	}
	if len(names) == 0 {
		t.Fatal("the dashboard selects no metric")
	}
	return names
}

// base is the family name of a series name (histograms expose
// name_bucket, name_sum and name_count).
func base(name string) string {
	for _, s := range []string{"_bucket", "_sum", "_count"} {
		if n, ok := strings.CutSuffix(name, s); ok {
			return n
		}
	}
	return name
}

func TestDashboard(t *testing.T) {
	used := metricsOf(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs/METRICS.md"))
	if err != nil {
		t.Fatal(err)
	}
	served := scrape(t, root)
	for name, panel := range used {
		fam := base(name)
		switch {
		case served[fam] || served[name]:
		case isConditional(fam) && strings.Contains(string(doc), "`"+fam+"`"):
		default:
			t.Errorf("panel %q uses %s, which mqimd does not serve", panel, name)
		}
	}
}

func isConditional(name string) bool {
	for _, p := range conditional {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// scrape builds mqimd and mqim from the repository, runs mqimd on its
// embedded defaults, sends one message and makes one RPC (so that the
// labelled series exist), and returns the metric families it serves.
func scrape(t *testing.T, root string) map[string]bool {
	t.Helper()
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin, "./cmd/mqimd", "./cmd/mqim")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	mqttAddr, wsAddr, httpAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := exec.CommandContext(ctx, filepath.Join(bin, "mqimd"), "--data-dir", t.TempDir(), "--jwt-secret", "grafana-test",
		"--mqtt-addr", mqttAddr, "--ws-addr", wsAddr, "--http-addr", httpAddr, "--log-level", "warn")
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = srv.Wait() }()
	base := "http://" + httpAddr
	waitFor(t, "mqimd ready", func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	mqim := func(args ...string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, "mqim"), append([]string{"--server", "mqtt://" + mqttAddr, "--secret", "grafana-test", "--user", "alice"}, args...)...)
		cmd.Env = append(os.Environ(), "MQIM_HTTP="+base)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mqim %v: %v\n%s", args, err, out)
		}
	}
	mqim("user", "create", "alice", "bob")
	mqim("send", "--to", "bob", "hello")
	mqim("history", "--with", "bob")

	served := map[string]bool{}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			served[f[2]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return served
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(fmt.Sprintf("timed out waiting for %s", what))
		}
		time.Sleep(50 * time.Millisecond) // a poll interval
	}
}
