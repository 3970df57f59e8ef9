package flagconfig

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type vals struct {
	addr, list, file string
	n                int
	ttl              time.Duration
	on, version      bool
}

func newSet(v *vals) *flag.FlagSet {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	fs.StringVar(&v.addr, "addr", ":1", "")
	fs.StringVar(&v.list, "list", "", "")
	fs.StringVar(&v.file, "config", "", "")
	fs.IntVar(&v.n, "n", 7, "")
	fs.DurationVar(&v.ttl, "ttl", time.Second, "")
	fs.BoolVar(&v.on, "on", false, "")
	fs.BoolVar(&v.version, "version", false, "")
	return fs
}

var loader = Loader{EnvPrefix: "FCT_", FileFlag: "config", CommandLineOnly: []string{"version"}}

func TestPrecedenceAndTypes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("addr: file\nlist: [a, b]\nn: 3\nttl: 2m\non: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FCT_N", "4")
	t.Setenv("FCT_VERSION", "true") // ignored: command line only
	var v vals
	if err := loader.Parse(newSet(&v), []string{"--config", path, "--ttl", "5s"}); err != nil {
		t.Fatal(err)
	}
	want := vals{addr: "file", list: "a,b", file: path, n: 4, ttl: 5 * time.Second, on: true}
	if v != want {
		t.Fatalf("got %+v, want %+v", v, want)
	}

	// No file: defaults, and the env names the file.
	t.Setenv("FCT_CONFIG", path)
	v = vals{}
	if err := loader.Parse(newSet(&v), nil); err != nil || v.addr != "file" || v.n != 4 {
		t.Fatalf("config from env: %v %+v", err, v)
	}
	t.Setenv("FCT_CONFIG", "")
	v = vals{}
	if err := loader.Parse(newSet(&v), nil); err != nil || v.addr != ":1" || v.ttl != time.Second {
		t.Fatalf("defaults: %v %+v", err, v)
	}
}

func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ yaml, want string }{
		{"adr: x\n", `line 1: unknown key "adr"`},
		{"n: 1\n--n: 2\n", `line 2: unknown key "--n" (the keys are the flag names); did you mean "n"?`},
		{"version: true\n", `"version" cannot be set`},
		{"config: other.yaml\n", `"config" cannot be set`},
		{"n: x\n", `line 1: n: invalid value "x"`},
		{"addr: {a: 1}\n", "not a mapping"},
		{"[1]\n", "want a mapping"},
	} {
		path := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		var v vals
		err := loader.Parse(newSet(&v), []string{"--config", path})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
	t.Setenv("FCT_N", "x")
	var v vals
	if err := loader.Parse(newSet(&v), nil); err == nil || !strings.Contains(err.Error(), `FCT_N="x"`) {
		t.Errorf("bad env: %v", err)
	}
	// An empty file sets nothing.
	path := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FCT_N", "")
	os.Unsetenv("FCT_N")
	if err := loader.Parse(newSet(&v), []string{"--config", path}); err != nil || v.n != 7 {
		t.Errorf("empty file: %v %+v", err, v)
	}
}

func TestUsageGroups(t *testing.T) {
	var v vals
	fs := newSet(&v)
	var b strings.Builder
	loader.PrintUsage(&b, fs, []Section{{Title: "Net", Names: []string{"addr"}}, {Title: "Time", Prefixes: []string{"tt"}}})
	out := b.String()
	for _, want := range []string{"\nNet:\n  --addr string\n", `(default ":1"; env FCT_ADDR)`, "\nTime:\n  --ttl duration\n", "\nOther:\n", "  --version\n        \n"} {
		if !strings.Contains(out, want) {
			t.Errorf("usage lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "Net:") > strings.Index(out, "Time:") || strings.Index(out, "Time:") > strings.Index(out, "Other:") {
		t.Errorf("sections out of order:\n%s", out)
	}
}
