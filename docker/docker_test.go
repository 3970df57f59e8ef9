// Package docker_test checks docker/ without a Docker engine: the Dockerfile's
// build command against the one this test runs (and that it gives a static
// binary), and the HAProxy configuration. compose_test.go checks compose.yaml.
package docker_test

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// The build the Dockerfile runs, and this test repeats. Keep in step with
// the "go build" RUN line of docker/Dockerfile (TestDockerfileBuildInStep).
var (
	buildEnv   = []string{"CGO_ENABLED=0"}
	buildFlags = []string{"-trimpath", "-ldflags", "-s -w"}
	serverPkg  = "./cmd/mqimd"
	cliPkg     = "./cmd/mqim"
)

// Ports the image exposes: MQTT, WebSocket, HTTP, embedded NATS client and route.
var exposedPorts = []string{"1883", "8083", "8080", "4222", "6222"}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, …
	args string
}

func readDockerfile(t *testing.T) []instruction {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(s)
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(line)
		full := strings.TrimSpace(cur.String())
		cur.Reset()
		if full == "" {
			continue
		}
		cmd, args, _ := strings.Cut(full, " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// shellWords splits a shell command line on blanks, honouring '…' and "…"
// (no escapes or expansions: enough for a RUN line).
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				w.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// dockerGoBuild returns the environment assignments and arguments of the
// "go build" command in the Dockerfile's RUN instructions.
func dockerGoBuild(t *testing.T, ins []instruction) (env, args []string) {
	t.Helper()
	var found []string
	for _, in := range ins {
		if in.cmd != "RUN" || !strings.Contains(in.args, "go build") {
			continue
		}
		for cmd := range strings.SplitSeq(in.args, "&&") {
			words := shellWords(cmd)
			// Leading --mount=… flags belong to RUN, then VAR=value, then the command.
			for len(words) > 0 && strings.HasPrefix(words[0], "--") {
				words = words[1:]
			}
			var e []string
			for len(words) > 0 && regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`).MatchString(words[0]) {
				e = append(e, words[0])
				words = words[1:]
			}
			if len(words) >= 2 && words[0] == "go" && words[1] == "build" {
				if found != nil {
					t.Fatalf("Dockerfile runs go build more than once")
				}
				found, env = words[2:], e
			}
		}
	}
	if found == nil {
		t.Fatal("Dockerfile: no RUN … go build")
	}
	return env, found
}

func TestDockerfileBuildInStep(t *testing.T) {
	ins := readDockerfile(t)
	env, args := dockerGoBuild(t, ins)
	for _, e := range buildEnv {
		if !slices.Contains(env, e) {
			t.Errorf("Dockerfile go build: environment %q missing (have %q)", e, env)
		}
	}
	if i := slices.Index(args, buildFlags[0]); i < 0 || len(args) < i+len(buildFlags) || !slices.Equal(args[i:i+len(buildFlags)], buildFlags) {
		t.Errorf("Dockerfile go build args %q: want the flags %q, in that order (as this test builds)", args, buildFlags)
	}
	for _, p := range []string{serverPkg, cliPkg} {
		if !slices.Contains(args, p) {
			t.Errorf("Dockerfile go build args %q: package %s missing", args, p)
		}
	}
	for _, p := range []string{serverPkg, cliPkg} {
		if _, err := os.Stat(filepath.Join("..", p, "main.go")); err != nil {
			t.Errorf("package %s: %v", p, err)
		}
	}
}

func TestDockerfileImage(t *testing.T) {
	ins := readDockerfile(t)
	var froms []string
	lastFrom := -1
	for i, in := range ins {
		if in.cmd == "FROM" {
			froms = append(froms, in.args)
			lastFrom = i
		}
	}
	if len(froms) < 2 {
		t.Fatalf("Dockerfile: want a multi-stage build, have FROM %q", froms)
	}
	if !strings.Contains(froms[0], "golang:") || strings.Contains(froms[0], "alpine") {
		t.Errorf("build stage %q: want the Debian-based golang image", froms[0])
	}
	final := strings.Fields(froms[len(froms)-1])[0]
	if !strings.HasPrefix(final, "gcr.io/distroless/static") && final != "scratch" {
		t.Errorf("final stage FROM %s: want distroless/static or scratch", final)
	}

	// The Go version of the build image matches go.mod's (major.minor).
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod: no go directive")
	}
	goVer := string(m[1])
	var argVer string
	for _, in := range ins {
		if in.cmd == "ARG" {
			if v, ok := strings.CutPrefix(in.args, "GO_VERSION="); ok {
				argVer = v
			}
		}
	}
	if !strings.HasPrefix(argVer, goVer) {
		t.Errorf("Dockerfile ARG GO_VERSION=%s, go.mod says go %s", argVer, goVer)
	}

	var user, entrypoint string
	var exposed, volumes []string
	for _, in := range ins[lastFrom+1:] {
		switch in.cmd {
		case "USER":
			user = in.args
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.args)...)
		case "VOLUME":
			volumes = append(volumes, in.args)
		case "ENTRYPOINT":
			entrypoint = in.args
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "0" || u == "root" {
		t.Errorf("final stage USER %q: want a non-root user", user)
	}
	for _, p := range exposedPorts {
		if !slices.Contains(exposed, p) && !slices.Contains(exposed, p+"/tcp") {
			t.Errorf("final stage does not EXPOSE %s (have %q)", p, exposed)
		}
	}
	if !slices.ContainsFunc(volumes, func(v string) bool { return strings.Contains(v, "/data") }) {
		t.Errorf("final stage VOLUME %q: want /data", volumes)
	}
	if !strings.Contains(entrypoint, "mqimd") {
		t.Errorf("ENTRYPOINT %q: want mqimd", entrypoint)
	}
}

func TestDockerignore(t *testing.T) {
	b, err := os.ReadFile("Dockerfile.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var pats []string
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			pats = append(pats, line)
		}
	}
	// Local state (it holds scripts/dev's JWT secret) and .env files stay out.
	for _, want := range []string{".git", "data", "**/.env"} {
		if !slices.Contains(pats, want) {
			t.Errorf("Dockerfile.dockerignore: %q not excluded", want)
		}
	}
	// What the build needs is not excluded.
	for _, need := range []string{"go.mod", "go.sum", "cmd", "third_party", "internal", "broker", "store", "sync", "protocol", "clients", "hooks"} {
		for _, p := range pats {
			if p == need || p == need+"/" || p == "/"+need || p == "*" || p == "**" {
				t.Errorf("Dockerfile.dockerignore: %q excludes %s, which the build needs", p, need)
			}
		}
	}
}

// TestStaticBinary builds ./cmd/mqimd as the Dockerfile does and checks that
// it runs on an image without libc: no ELF interpreter, no shared libraries.
func TestStaticBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds mqimd; skipped with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the image is linux; ELF checks only on linux")
	}
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	out := filepath.Join(t.TempDir(), "mqimd")
	args := append([]string{"build"}, buildFlags...)
	args = append(args, "-o", out, serverPkg)
	cmd := exec.Command(gobin, args...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), buildEnv...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", gobin, strings.Join(args, " "), err, b)
	}

	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("mqimd has a PT_INTERP program header: dynamically linked, would not run on distroless/static")
		}
		if p.Type == elf.PT_DYNAMIC {
			t.Error("mqimd has a PT_DYNAMIC program header")
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil && f.Section(".dynamic") != nil {
		t.Fatal(err)
	}
	if len(libs) > 0 {
		t.Errorf("mqimd needs shared libraries (DT_NEEDED) %q", libs)
	}
	if f.Section(".symtab") != nil {
		t.Error("mqimd has a symbol table: built without -ldflags -s?")
	}
}

// haproxy is a parsed haproxy.cfg: section ("backend x") -> its lines.
type haproxy map[string][]string

func readHAProxy(t *testing.T) haproxy {
	t.Helper()
	b, err := os.ReadFile("haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	cfg := haproxy{}
	var section string
	for line := range strings.Lines(string(b)) {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			section = strings.Join(strings.Fields(line), " ")
			if _, dup := cfg[section]; dup {
				t.Errorf("haproxy.cfg: section %q twice", section)
			}
			cfg[section] = nil
			continue
		}
		if section == "" {
			t.Fatalf("haproxy.cfg: %q outside a section", line)
		}
		cfg[section] = append(cfg[section], strings.Join(strings.Fields(line), " "))
	}
	return cfg
}

// lbBackend is what the load balancer does for one published port.
type lbBackend struct {
	name      string
	mode      string   // tcp or http
	servers   []string // host of each server line
	sendProxy bool     // every server gets a PROXY protocol v2 header
}

// backends returns, for each port HAProxy binds, the default backend's
// servers and mode.
func (cfg haproxy) backends(t *testing.T) map[string]lbBackend {
	t.Helper()
	defMode := "tcp"
	for _, l := range cfg["defaults"] {
		if m, ok := strings.CutPrefix(l, "mode "); ok {
			defMode = m
		}
	}
	out := map[string]lbBackend{}
	for sec, lines := range cfg {
		if !strings.HasPrefix(sec, "frontend ") {
			continue
		}
		var ports []string
		var backend string
		for _, l := range lines {
			if a, ok := strings.CutPrefix(l, "bind "); ok {
				addr := strings.Fields(a)[0]
				ports = append(ports, addr[strings.LastIndex(addr, ":")+1:])
			}
			if b, ok := strings.CutPrefix(l, "default_backend "); ok {
				backend = b
			}
		}
		if backend == "" {
			continue // stats
		}
		lines, ok := cfg["backend "+backend]
		if !ok {
			t.Errorf("haproxy.cfg: %s uses backend %s, which is not defined", sec, backend)
			continue
		}
		be := lbBackend{name: backend, mode: defMode}
		var check, healthz bool
		be.sendProxy = true
		defaultProxy := false
		for _, l := range lines {
			if w := strings.Fields(l); w[0] == "default-server" && slices.Contains(w, "send-proxy-v2") {
				defaultProxy = true
			}
		}
		for _, l := range lines {
			w := strings.Fields(l)
			switch {
			case w[0] == "mode":
				be.mode = w[1]
			case w[0] == "server" && len(w) >= 3:
				be.servers = append(be.servers, w[2][:strings.LastIndex(w[2], ":")])
				be.sendProxy = be.sendProxy && (defaultProxy || slices.Contains(w, "send-proxy-v2"))
				check = check || slices.Contains(w, "check")
			case w[0] == "default-server":
				check = check || slices.Contains(w, "check")
			case strings.Contains(l, "/healthz") && (w[0] == "http-check" || w[0] == "option"):
				healthz = true
			}
		}
		if !check || !healthz {
			t.Errorf("haproxy.cfg backend %s: want health checks against /healthz (check %v, /healthz %v)", backend, check, healthz)
		}
		for _, p := range ports {
			out[p] = be
		}
	}
	return out
}

func TestHAProxy(t *testing.T) {
	bes := readHAProxy(t).backends(t)
	// TLS is passed through to mqimd (mTLS needs the client's handshake).
	for port, mode := range map[string]string{"1883": "tcp", "8083": "tcp", "8080": "", "8883": "tcp", "8084": "tcp", "8443": "tcp"} {
		be, ok := bes[port]
		if !ok {
			t.Errorf("haproxy.cfg: nothing bound on :%s", port)
			continue
		}
		if !be.sendProxy {
			t.Errorf("haproxy.cfg backend %s: servers without send-proxy-v2: mqimd would see HAProxy's address, not the client's", be.name)
		}
		if mode != "" && be.mode != mode {
			t.Errorf("haproxy.cfg :%s backend %s: mode %s, want %s", port, be.name, be.mode, mode)
		}
		if len(be.servers) < 3 {
			t.Errorf("haproxy.cfg backend %s: %d servers %q, want the three nodes", be.name, len(be.servers), be.servers)
		}
		if s := slices.Clone(be.servers); len(slices.Compact(slices.Sorted(slices.Values(s)))) != len(s) {
			t.Errorf("haproxy.cfg backend %s: a server twice: %q", be.name, be.servers)
		}
	}
	// Every backend names the same nodes.
	want := slices.Sorted(slices.Values(bes["1883"].servers))
	for port, be := range bes {
		if got := slices.Sorted(slices.Values(be.servers)); !slices.Equal(got, want) {
			t.Errorf("haproxy.cfg :%s backend %s servers %q, :1883 has %q", port, be.name, got, want)
		}
	}
}
