package docker_test

import (
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

type compose struct {
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

type service struct {
	Image           string         `yaml:"image"`
	Build           any            `yaml:"build"`
	Command         any            `yaml:"command"`
	Environment     any            `yaml:"environment"` // map or list of K=V
	DependsOn       any            `yaml:"depends_on"`  // list or map
	Ports           []any          `yaml:"ports"`
	Expose          []any          `yaml:"expose"`
	Volumes         []any          `yaml:"volumes"`
	StopSignal      string         `yaml:"stop_signal"`
	StopGracePeriod string         `yaml:"stop_grace_period"`
	Healthcheck     map[string]any `yaml:"healthcheck"`
}

func (s service) env(t *testing.T, name string) map[string]string {
	t.Helper()
	out := map[string]string{}
	switch e := s.Environment.(type) {
	case nil:
	case map[string]any:
		for k, v := range e {
			if v == nil {
				out[k] = ""
			} else {
				out[k] = fmt.Sprint(v)
			}
		}
	case []any:
		for _, kv := range e {
			k, v, _ := strings.Cut(fmt.Sprint(kv), "=")
			out[k] = v
		}
	default:
		t.Fatalf("service %s: environment is a %T", name, e)
	}
	return out
}

func (s service) dependsOn(t *testing.T, name string) []string {
	t.Helper()
	switch d := s.DependsOn.(type) {
	case nil:
		return nil
	case []any:
		var out []string
		for _, v := range d {
			out = append(out, fmt.Sprint(v))
		}
		return out
	case map[string]any:
		var out []string
		for k := range d {
			out = append(out, k)
		}
		return out
	default:
		t.Fatalf("service %s: depends_on is a %T", name, d)
		return nil
	}
}

func (s service) isMQIMD() bool {
	if b, ok := s.Build.(map[string]any); ok && b["dockerfile"] == "docker/Dockerfile" {
		return true
	}
	return strings.Contains(s.Image, "mqim")
}

func readCompose(t *testing.T) compose {
	t.Helper()
	return readComposeFile(t, "compose.yaml")
}

func readComposeFile(t *testing.T, name string) compose {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c
}

// classify sorts the services by role.
func classify(t *testing.T, c compose) (mqimd, nats, postgres, lb, s3 []string) {
	t.Helper()
	for name, s := range c.Services {
		img := s.Image
		if i := strings.LastIndex(img, ":-"); i >= 0 { // ${X_IMAGE:-nats:2-alpine}
			img = strings.TrimSuffix(img[i+2:], "}")
		}
		switch {
		case s.isMQIMD():
			mqimd = append(mqimd, name)
		case strings.HasPrefix(img, "nats"):
			nats = append(nats, name)
		case strings.HasPrefix(img, "postgres"):
			postgres = append(postgres, name)
		case strings.HasPrefix(img, "haproxy"):
			lb = append(lb, name)
		case strings.Contains(img, "versitygw") || strings.Contains(img, "minio"):
			s3 = append(s3, name)
		default:
			t.Errorf("compose.yaml: service %s (image %q): unknown role", name, s.Image)
		}
	}
	slices.Sort(mqimd)
	slices.Sort(nats)
	return
}

// interpolated matches a value that is one ${VAR}, ${VAR:?msg} or ${VAR:-…} reference.
var interpolated = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*(:?[?-][^}]*)?\}$`)

// varOf is the variable a ${VAR…} reference names ("" for a literal).
func varOf(v string) string {
	if !interpolated.MatchString(v) {
		return ""
	}
	name, _, _ := strings.Cut(strings.TrimPrefix(v, "${"), ":")
	return strings.TrimSuffix(name, "}")
}

// defaultOf is the value of v when its variable is unset: the default of a
// ${VAR:-default} reference, or v itself.
func defaultOf(v string) string {
	if i := strings.Index(v, ":-"); interpolated.MatchString(v) && i >= 0 {
		return strings.TrimSuffix(v[i+2:], "}")
	}
	return v
}

func TestCompose(t *testing.T) {
	c := readCompose(t)
	mqimd, nats, postgres, lb, s3 := classify(t, c)
	if len(mqimd) < 3 {
		t.Errorf("compose.yaml: %d mqimd nodes %q, want at least 3", len(mqimd), mqimd)
	}
	if len(nats) < 3 || len(nats)%2 == 0 {
		t.Errorf("compose.yaml: NATS servers %q, want an odd number, at least 3", nats)
	}
	if len(postgres) != 1 || len(lb) != 1 || len(s3) != 1 {
		t.Fatalf("compose.yaml: want one postgres, one haproxy and one S3 server, have %q, %q and %q", postgres, lb, s3)
	}

	for name, s := range c.Services {
		for _, d := range s.dependsOn(t, name) {
			if _, ok := c.Services[d]; !ok {
				t.Errorf("service %s depends on %s, which does not exist", name, d)
			}
		}
		if (len(s.Ports) > 0) != (name == lb[0]) {
			t.Errorf("service %s publishes ports %q: only the load balancer %s may", name, s.Ports, lb[0])
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(fmt.Sprint(v), ":")
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				continue // bind mount
			}
			if _, ok := c.Volumes[src]; !ok {
				t.Errorf("service %s mounts volume %s, not declared under volumes:", name, src)
			}
		}
	}

	// mqimd nodes.
	ids := map[int]string{}
	nodeNames := map[string]string{}
	for _, name := range mqimd {
		s := c.Services[name]
		env := s.env(t, name)
		id, err := strconv.Atoi(env["MQIM_NODE_ID"])
		if err != nil || id < 0 || id > 1023 {
			t.Errorf("service %s: MQIM_NODE_ID=%q, want 0..1023", name, env["MQIM_NODE_ID"])
		} else if other, dup := ids[id]; dup {
			t.Errorf("services %s and %s share node id %d: message ids would collide", other, name, id)
		}
		ids[id] = name
		nn := env["MQIM_NODE_NAME"]
		if nn == "" {
			nn = fmt.Sprintf("node-%d", id)
		}
		if other, dup := nodeNames[nn]; dup {
			t.Errorf("services %s and %s share node name %s", other, name, nn)
		}
		nodeNames[nn] = name

		st, err := url.Parse(env["MQIM_STORE"])
		if err != nil || st.Scheme != "postgres" || st.Hostname() != postgres[0] {
			t.Errorf("service %s: MQIM_STORE=%q, want postgres://…@%s/…", name, env["MQIM_STORE"], postgres[0])
		} else if _, has := st.User.Password(); has {
			t.Errorf("service %s: MQIM_STORE has a password in it; pass it as PGPASSWORD=${POSTGRES_PASSWORD}", name)
		}
		for _, n := range nats {
			if !strings.Contains(env["MQIM_NATS"], "nats://"+n+":4222") {
				t.Errorf("service %s: MQIM_NATS=%q does not list %s", name, env["MQIM_NATS"], n)
			}
		}
		if r, _ := strconv.Atoi(env["MQIM_NATS_REPLICAS"]); r != 3 || r > len(nats) {
			t.Errorf("service %s: MQIM_NATS_REPLICAS=%q, want 3 (and no more than the %d NATS servers)", name, env["MQIM_NATS_REPLICAS"], len(nats))
		}
		if env["MQIM_PROXY_PROTOCOL_FROM"] == "" {
			t.Errorf("service %s: no MQIM_PROXY_PROTOCOL_FROM: the PROXY headers HAProxy sends would be refused", name)
		}
		for k, want := range map[string]string{"MQIM_MQTT_ADDR": ":1883", "MQIM_WS_ADDR": ":8083", "MQIM_HTTP_ADDR": ":8080", "MQIM_DATA_DIR": "/data",
			"MQIM_MQTTS_ADDR": ":8883", "MQIM_WSS_ADDR": ":8084", "MQIM_HTTPS_ADDR": ":8443"} {
			if env[k] != want {
				t.Errorf("service %s: %s=%q, want %q (haproxy.cfg relies on it)", name, k, env[k], want)
			}
		}
		if !interpolated.MatchString(env["MQIM_JWT_SECRET"]) {
			t.Errorf("service %s: MQIM_JWT_SECRET must come from ${MQIM_JWT_SECRET…}", name)
		}
		if env["MQIM_SERVER_REFERENCE"] == "" {
			t.Errorf("service %s: no MQIM_SERVER_REFERENCE (where draining MQTT 5 clients go)", name)
		}
		if s.StopSignal != "SIGTERM" {
			t.Errorf("service %s: stop_signal %q, want SIGTERM", name, s.StopSignal)
		}
		// mqimd drains for up to 30s; compose must wait longer before SIGKILL.
		if d, err := time.ParseDuration(s.StopGracePeriod); err != nil || d <= 30*time.Second {
			t.Errorf("service %s: stop_grace_period %q, want more than 30s", name, s.StopGracePeriod)
		}
		if !slices.ContainsFunc(s.Volumes, func(v any) bool { return strings.HasSuffix(fmt.Sprint(v), ":/data") }) {
			t.Errorf("service %s: no volume on /data", name)
		}
		// Media: every node on the same bucket of the S3 service [IM-12.2-4],
		// with the credentials the S3 service is given.
		if ep, err := url.Parse(defaultOf(env["MQIM_MEDIA_S3_ENDPOINT"])); err != nil || ep.Hostname() != s3[0] {
			t.Errorf("service %s: MQIM_MEDIA_S3_ENDPOINT=%q, want http://%s:…", name, env["MQIM_MEDIA_S3_ENDPOINT"], s3[0])
		}
		if b := env["MQIM_MEDIA_S3_BUCKET"]; b == "" || b != c.Services[mqimd[0]].env(t, mqimd[0])["MQIM_MEDIA_S3_BUCKET"] {
			t.Errorf("service %s: MQIM_MEDIA_S3_BUCKET=%q, want one bucket for every node", name, b)
		}
		if defaultOf(env["MQIM_MEDIA_S3_PATH_STYLE"]) != "true" {
			t.Errorf("service %s: MQIM_MEDIA_S3_PATH_STYLE=%q, want true (versitygw has no virtual hosts here)", name, env["MQIM_MEDIA_S3_PATH_STYLE"])
		}
		s3env := c.Services[s3[0]].env(t, s3[0])
		for node, server := range map[string]string{"MQIM_MEDIA_S3_ACCESS_KEY": "ROOT_ACCESS_KEY", "MQIM_MEDIA_S3_SECRET_KEY": "ROOT_SECRET_KEY"} {
			if !interpolated.MatchString(env[node]) || varOf(env[node]) != varOf(s3env[server]) {
				t.Errorf("service %s: %s=%q, want the variable of %s's %s (%q)", name, node, env[node], s3[0], server, s3env[server])
			}
		}
		deps := s.dependsOn(t, name)
		for _, d := range append(slices.Clone(nats), postgres[0], s3[0]) {
			if !slices.Contains(deps, d) {
				t.Errorf("service %s does not depend on %s", name, d)
			}
		}
	}

	// NATS: JetStream, clustered with every other server, data on a volume.
	for _, name := range nats {
		s := c.Services[name]
		var args []string
		switch cmd := s.Command.(type) {
		case string:
			args = strings.Fields(cmd)
		case []any:
			for _, a := range cmd {
				args = append(args, fmt.Sprint(a))
			}
		}
		line := strings.Join(args, " ")
		if !slices.Contains(args, "-js") && !slices.Contains(args, "--jetstream") {
			t.Errorf("nats service %s: JetStream not enabled: %q", name, line)
		}
		for _, other := range nats {
			if other != name && !strings.Contains(line, "nats://"+other+":6222") {
				t.Errorf("nats service %s: no route to %s: %q", name, other, line)
			}
		}
		if len(s.Volumes) == 0 {
			t.Errorf("nats service %s: no volume", name)
		}
	}

	// PostgreSQL: a volume, a healthcheck, the password from the environment.
	pg := c.Services[postgres[0]]
	if len(pg.Volumes) == 0 || pg.Healthcheck == nil {
		t.Errorf("postgres service %s: want a volume and a healthcheck", postgres[0])
	}

	// The S3 server: data on a volume, a healthcheck the nodes wait for.
	if st := c.Services[s3[0]]; len(st.Volumes) == 0 || st.Healthcheck == nil {
		t.Errorf("S3 service %s: want a volume and a healthcheck", s3[0])
	}

	// The load balancer publishes MQTT, WebSocket and HTTP, and balances
	// over exactly the mqimd nodes.
	var published []string
	for _, p := range c.Services[lb[0]].Ports {
		s := fmt.Sprint(p)
		published = append(published, s[strings.LastIndex(s, ":")+1:])
	}
	for _, p := range []string{"1883", "8083", "8080"} {
		if !slices.Contains(published, p) {
			t.Errorf("load balancer %s does not publish %s (ports %q)", lb[0], p, published)
		}
	}
	for port, be := range readHAProxy(t).backends(t) {
		if got := slices.Sorted(slices.Values(be.servers)); !slices.Equal(got, mqimd) {
			t.Errorf("haproxy.cfg :%s backend %s servers %q, compose.yaml mqimd nodes %q", port, be.name, got, mqimd)
		}
	}
}

// TestComposeTLS: the TLS overlay gives every mqimd node of compose.yaml
// a certificate and key from the mounted docker/certs, and no other service.
func TestComposeTLS(t *testing.T) {
	mqimd, _, _, _, _ := classify(t, readCompose(t))
	c := readComposeFile(t, "compose.tls.yaml")
	if got := slices.Sorted(maps.Keys(c.Services)); !slices.Equal(got, mqimd) {
		t.Errorf("compose.tls.yaml services %q, want the mqimd nodes %q", got, mqimd)
	}
	for name, s := range c.Services {
		env := s.env(t, name)
		for _, k := range []string{"MQIM_TLS_CERT", "MQIM_TLS_KEY"} {
			if !strings.HasPrefix(env[k], "/certs/") {
				t.Errorf("compose.tls.yaml %s: %s=%q, want a file in /certs", name, k, env[k])
			}
		}
		if !slices.ContainsFunc(s.Volumes, func(v any) bool { return strings.HasPrefix(fmt.Sprint(v), "./certs:/certs") }) {
			t.Errorf("compose.tls.yaml %s: docker/certs not mounted on /certs", name)
		}
	}
}

// TestComposeNoLiteralSecrets: anything that looks like a secret is a
// ${VAR} reference, so that no secret is committed with the file.
func TestComposeNoLiteralSecrets(t *testing.T) {
	c := readCompose(t)
	secretKey := regexp.MustCompile(`(?i)(secret|password|passwd|token|_key$|apikey)`)
	for name, s := range c.Services {
		for k, v := range s.env(t, name) {
			if secretKey.MatchString(k) && !interpolated.MatchString(v) {
				t.Errorf("service %s: %s is a literal %q; use ${%s:?…}", name, k, v, k)
			}
			if strings.HasSuffix(k, "_FILE") {
				continue
			}
			if u, err := url.Parse(v); err == nil && u.User != nil {
				if _, has := u.User.Password(); has {
					t.Errorf("service %s: %s has a password in a URL", name, k)
				}
			}
		}
		if cmd := fmt.Sprint(s.Command); strings.Contains(cmd, "secret") || strings.Contains(cmd, "password") {
			t.Errorf("service %s: command mentions a secret: %s", name, cmd)
		}
	}
	// A ${VAR:-default} must not smuggle a secret in as its default.
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z0-9_]+):-`).FindAllStringSubmatch(string(b), -1) {
		if secretKey.MatchString(m[1]) {
			t.Errorf("compose.yaml: ${%s:-…} gives a secret a default; use ${%s:?…}", m[1], m[1])
		}
	}
}

// TestComposeEnvAreFlags: every MQIM_* variable given to the nodes is one of
// mqimd's flags (--media-s3-endpoint ↔ MQIM_MEDIA_S3_ENDPOINT), so that none
// is silently ignored.
func TestComposeEnvAreFlags(t *testing.T) {
	out, _ := exec.Command("go", "run", "../cmd/mqimd", "--help").CombinedOutput()
	mqimd, _, _, _, _ := classify(t, readCompose(t))
	for _, name := range mqimd {
		for k := range readCompose(t).Services[name].env(t, name) {
			flag, ok := strings.CutPrefix(k, "MQIM_")
			if !ok {
				continue
			}
			flag = strings.ToLower(strings.ReplaceAll(flag, "_", "-"))
			if !regexp.MustCompile(`(^|\s)--?` + regexp.QuoteMeta(flag) + `\b`).Match(out) {
				t.Errorf("service %s: %s is no flag of mqimd (--%s); mqimd --help:\n%s", name, k, flag, out)
			}
		}
	}
}
