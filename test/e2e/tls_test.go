package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/mqim/mqim/internal/testcerts"
	"github.com/mqim/mqim/internal/testnode"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
	"github.com/mqim/mqim/server"
)

// tlsFiles are a node's TLS files and what its clients need to trust it.
type tlsFiles struct {
	ca        *testcerts.CA
	dir       string
	cert, key string
	caFile    string
}

// newTLSFiles makes a test CA and a server certificate for loopback.
func newTLSFiles(t *testing.T) *tlsFiles {
	t.Helper()
	f := &tlsFiles{ca: testcerts.NewCA(t, "mqim test CA"), dir: t.TempDir()}
	f.cert, f.key = f.ca.Server(t).Write(t, f.dir, "server")
	f.caFile = f.ca.WriteCA(t, f.dir, "ca.pem")
	return f
}

// opt configures a node with the files (and, with clientCA, mTLS).
func (f *tlsFiles) opt(clientCA bool) func(*server.Config) {
	return func(c *server.Config) {
		c.TLSCert, c.TLSKey = f.cert, f.key
		if clientCA {
			c.TLSClientCA = f.caFile
		}
	}
}

// client is a client configuration that trusts the CA, with the given
// client certificates.
func (f *tlsFiles) client(certs ...tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: f.ca.Pool(), ServerName: "localhost", Certificates: certs}
}

// servedCert is the certificate a new TLS handshake with addr sees.
func servedCert(t *testing.T, addr string, c *tls.Config) *x509.Certificate {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, c)
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// TestTLSListeners: with a certificate, MQTT over TLS and over wss work
// beside the plain listeners, which stay [IM-1.1-5]; a client that does
// not trust the certificate's CA, or that offers only TLS 1.1, gets no
// connection.
func TestTLSListeners(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		f := newTLSFiles(t)
		n := startNode(t, be, f.opt(false))
		alice := dl.dial(t, n, "alice", overTLS(f.client()))
		bob := dl.dial(t, n, "bob", overTLS(f.client()), overWebSocket())
		carol := dl.dial(t, n, "carol") // plain TCP
		dave := dl.dial(t, n, "dave", overWebSocket())

		alice.sendOK(text("01JH0Z6Q4T3W8YV5B2K7C9D1T1", "bob", "over tls"))
		if ev := bob.nextMessage(); ev.Msg.Body["text"] != "over tls" {
			t.Fatalf("bob (wss) got %v", ev)
		}
		bob.sendOK(text("01JH0Z6Q4T3W8YV5B2K7C9D1T2", "carol", "wss to plain"))
		if ev := carol.nextMessage(); ev.Msg.Body["text"] != "wss to plain" {
			t.Fatalf("carol (tcp) got %v", ev)
		}
		carol.sendOK(text("01JH0Z6Q4T3W8YV5B2K7C9D1T3", "dave", "plain"))
		if ev := dave.nextMessage(); ev.Msg.Body["text"] != "plain" {
			t.Fatalf("dave (ws) got %v", ev)
		}

		if _, _, err := dl.tryDial(t, n, "eve", overTLS(&tls.Config{ServerName: "localhost"})); err == nil {
			t.Fatal("a client without the test CA connected over TLS")
		}
		if _, _, err := dl.tryDial(t, n, "eve", overTLS(&tls.Config{RootCAs: f.ca.Pool(), ServerName: "localhost", MaxVersion: tls.VersionTLS11})); err == nil {
			t.Fatal("a TLS 1.1 client connected")
		}
	})
}

// TestHTTPS: the HTTP API and the chat page over TLS; the page served over
// HTTPS points at the wss listener.
func TestHTTPS(t *testing.T) {
	forEachStore(t, func(t *testing.T, be backend) {
		f := newTLSFiles(t)
		n := startNode(t, be, f.opt(false))
		c := &http.Client{Timeout: waitTimeout, Transport: &http.Transport{TLSClientConfig: f.client(), ForceAttemptHTTP2: true}}
		resp, err := c.Get("https://" + n.HTTPSAddr() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
			t.Fatalf("GET /healthz over TLS: %s %s", resp.Proto, resp.Status)
		}
		_, wssPort, _ := net.SplitHostPort(n.WSSAddr())
		resp, err = c.Get("https://" + n.HTTPSAddr() + "/web/config.json")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), `"ws_port":`+wssPort) {
			t.Fatalf("config.json over HTTPS: %s, want ws_port %s (wss)", b, wssPort)
		}
	})
}

// TestMosquittoTLS: mosquitto_pub and mosquitto_sub over TLS, verifying
// the server's chain with --cafile; with another CA the handshake fails.
func TestMosquittoTLS(t *testing.T) {
	pubBin, subBin := mosquittoTools(t)
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		f := newTLSFiles(t)
		n := startNode(t, be, f.opt(false))
		_, port, _ := net.SplitHostPort(n.MQTTSAddr())
		common := func(user, id, cafile string) []string {
			v := "311"
			if dl.v5() {
				v = "5"
			}
			return []string{"-V", v, "-h", "localhost", "-p", port, "--cafile", cafile,
				"-i", id, "-u", user, "-P", token(t, user), "-q", "1"}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		subArgs := append(common("bob", "bob.sub", f.caFile), "-t", protocol.InboxTopic("bob"), "-C", "1", "-W", "20")
		if dl.v5() {
			subArgs = append(subArgs, "-D", "connect", "user-property", "format", "json")
		}
		sub := exec.CommandContext(ctx, subBin, subArgs...)
		var out, errOut bytes.Buffer
		sub.Stdout, sub.Stderr = &out, &errOut
		if err := sub.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- sub.Wait() }()
		eventually(t, waitTimeout, "mosquitto_sub to subscribe over TLS", func() bool {
			select {
			case err := <-exited:
				t.Fatalf("mosquitto_sub exited early: %v: %s", err, errOut.String())
			default:
			}
			return n.Subscribed("bob.sub", protocol.InboxTopic("bob"))
		})
		send := `{"cmid":"01JH0Z6Q4T3W8YV5B2K7C9D1M1","to":"bob","type":"text","body":{"text":"hi over tls"}}`
		if b, err := exec.CommandContext(ctx, pubBin, append(common("alice", "alice.pub", f.caFile), "-t", protocol.SendTopic("alice"), "-m", send)...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_pub over TLS: %v: %s", err, b)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("mosquitto_sub: %v: %s", err, errOut.String())
			}
		case <-ctx.Done():
			t.Fatal("mosquitto_sub did not exit")
		}
		if !strings.Contains(out.String(), "hi over tls") {
			t.Fatalf("mosquitto_sub printed %q", out.String())
		}

		other := testcerts.NewCA(t, "another CA").WriteCA(t, t.TempDir(), "other.pem")
		b, err := exec.CommandContext(ctx, pubBin, append(common("alice", "alice.pub2", other), "-t", protocol.SendTopic("alice"), "-m", send)...).CombinedOutput()
		if err == nil {
			t.Fatalf("mosquitto_pub trusting another CA connected: %s", b)
		}
	})
}

// TestTLSRotation: a new certificate is served to new connections once its
// files change (polled) or on ReloadTLS (SIGHUP), while connections made
// with the old one go on; broken files keep the old one in use.
func TestTLSRotation(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		for _, how := range []string{"poll", "reload"} {
			t.Run(how, func(t *testing.T) {
				f := newTLSFiles(t)
				poll := time.Hour
				if how == "poll" {
					poll = 20 * time.Millisecond
				}
				n := startNode(t, be, f.opt(false), func(c *server.Config) { c.TLSPoll = poll })
				first := servedCert(t, n.MQTTSAddr(), f.client())
				alice := dl.dial(t, n, "alice", overTLS(f.client()))
				bob := dl.dial(t, n, "bob", overTLS(f.client()), overWebSocket())

				next := f.ca.Server(t)
				next.Write(t, f.dir, "server")
				if how == "reload" {
					if err := n.ReloadTLS(); err != nil {
						t.Fatal(err)
					}
				}
				eventually(t, waitTimeout, "the new certificate to be served", func() bool {
					return servedCert(t, n.MQTTSAddr(), f.client()).SerialNumber.Cmp(next.Cert.SerialNumber) == 0
				})
				if got := servedCert(t, n.WSSAddr(), f.client()); got.SerialNumber.Cmp(next.Cert.SerialNumber) != 0 {
					t.Fatalf("wss serves serial %v, want the new %v", got.SerialNumber, next.Cert.SerialNumber)
				}
				if first.SerialNumber.Cmp(next.Cert.SerialNumber) == 0 {
					t.Fatal("test bug: same serial")
				}

				// The connections made before the rotation still work.
				alice.sendOK(text("01JH0Z6Q4T3W8YV5B2K7C9D1R1", "bob", "after rotation"))
				if ev := bob.nextMessage(); ev.Msg.Body["text"] != "after rotation" {
					t.Fatalf("bob got %v", ev)
				}
				carol := dl.dial(t, n, "carol", overTLS(f.client()))
				carol.sendOK(text("01JH0Z6Q4T3W8YV5B2K7C9D1R2", "bob", "new connection"))
				if ev := bob.nextMessage(); ev.Msg.Body["text"] != "new connection" {
					t.Fatalf("bob got %v", ev)
				}

				// A broken key: not loaded, the last good certificate stays.
				if err := os.WriteFile(f.key, []byte("-----BEGIN PRIVATE KEY-----\ngarbage\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := n.ReloadTLS(); err == nil {
					t.Fatal("ReloadTLS of a broken key succeeded")
				}
				if got := servedCert(t, n.MQTTSAddr(), f.client()); got.SerialNumber.Cmp(next.Cert.SerialNumber) != 0 {
					t.Fatalf("after a broken reload the node serves serial %v, want %v", got.SerialNumber, next.Cert.SerialNumber)
				}
				dl.dial(t, n, "dave", overTLS(f.client()))
			})
		}
	})
}

// TestMTLS: with a client CA, a verified client certificate that names
// the user logs in without a password, over TLS and wss, and names the
// user when CONNECT has no username; a certificate of another user or of
// another CA does not [IM-3.4-1]. Token logins over TLS go on.
func TestMTLS(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		f := newTLSFiles(t)
		n := startNode(t, be, f.opt(true))
		aliceCert := f.ca.Client(t, "alice", nil, nil).TLS(t)

		alice := dl.dial(t, n, "alice", overTLS(f.client(aliceCert)), withoutPassword())
		bob := dl.dial(t, n, "bob", overTLS(f.client())) // a token, no certificate
		alice.sendOK(text("01JH0Z6Q4T3W8YV5B2K7C9D1C1", "bob", "by certificate"))
		if ev := bob.nextMessage(); ev.Msg.Body["text"] != "by certificate" || ev.Msg.From != "alice" {
			t.Fatalf("bob got %v", ev)
		}
		aliceWS := dl.dial(t, n, "alice", overTLS(f.client(aliceCert)), overWebSocket(), withoutPassword())
		aliceWS.sendOK(text("01JH0Z6Q4T3W8YV5B2K7C9D1C2", "bob", "by certificate over wss"))
		if ev := bob.nextMessage(); ev.Msg.Body["text"] != "by certificate over wss" {
			t.Fatalf("bob got %v", ev)
		}

		// No username: the certificate's user.
		anon := dl.dial(t, n, "", overTLS(f.client(aliceCert)), withoutPassword(), noSubscribe(), withClientID("alice.nouser"))
		if c := anon.subscribe(protocol.InboxTopic("alice")); c != 1 {
			t.Fatalf("certificate login without username: subscribe to alice's inbox granted %#x", c)
		}

		// alice's certificate does not log in mallory.
		badCode := byte(0x86)
		if !dl.v5() {
			badCode = 4
		}
		if _, code, err := dl.tryDial(t, n, "mallory", overTLS(f.client(aliceCert)), withoutPassword()); err == nil || code != badCode {
			t.Fatalf("alice's certificate as mallory: %v, code %#x; want refused with %#x", err, code, badCode)
		}
		// Nor does a certificate the client CA did not sign: the handshake fails.
		forged := testcerts.NewCA(t, "forger").Client(t, "alice", nil, nil).TLS(t)
		if _, _, err := dl.tryDial(t, n, "alice", overTLS(f.client(forged)), withoutPassword()); err == nil {
			t.Fatal("a certificate of another CA connected")
		}
		// Over the plain listener there is no certificate: no password, no login.
		if _, code, err := dl.tryDial(t, n, "alice", withoutPassword()); err == nil || code != badCode {
			t.Fatalf("no password over plain TCP: %v, code %#x", err, code)
		}
	})
}

// TestMTLSSubjectAltName: the user id may be taken from a DNS or an email
// SAN instead of the CN [IM-3.4-1].
func TestMTLSSubjectAltName(t *testing.T) {
	forEachStore(t, func(t *testing.T, be backend) {
		dl := dialer{5}
		for _, c := range []struct{ identity, user string }{{"dns", "alice.devices.example"}, {"email", "alice@example.com"}} {
			t.Run(c.identity, func(t *testing.T) {
				f := newTLSFiles(t)
				n := startNode(t, be, f.opt(true), func(cfg *server.Config) { cfg.TLSClientIdentity = c.identity })
				leaf := f.ca.Client(t, "the-cn", []string{"alice.devices.example"}, []string{"alice@example.com"}).TLS(t)
				dl.dial(t, n, c.user, overTLS(f.client(leaf)), withoutPassword())
				if _, _, err := dl.tryDial(t, n, "the-cn", overTLS(f.client(leaf)), withoutPassword()); err == nil {
					t.Fatalf("identity %s: the CN logged in", c.identity)
				}
			})
		}
	})
}

// proxyDial dials addr from local (an address of 127.0.0.0/8) and, unless
// src is nil, sends a PROXY protocol v2 header naming src as the client.
func proxyDial(local string, src *net.TCPAddr, addr string) func() (net.Conn, error) {
	return func() (net.Conn, error) {
		d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		if src != nil {
			h := proxyproto.HeaderProxyFromAddrs(2, src, c.RemoteAddr())
			if _, err := h.WriteTo(c); err != nil {
				c.Close()
				return nil, err
			}
		}
		return c, nil
	}
}

// TestProxyProtocol: behind a load balancer in a trusted range, the node
// sees the client's address from the PROXY protocol v2 header, over plain
// and TLS listeners alike; a connection from a trusted address without a
// header is served as it is; a header from an untrusted address ends the
// connection [IM-1.1-6].
func TestProxyProtocol(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		f := newTLSFiles(t)
		n := startNode(t, be, f.opt(false), func(c *server.Config) { c.ProxyProtocolFrom = []string{"127.0.0.1/32"} })
		client := &net.TCPAddr{IP: net.ParseIP("198.51.100.7"), Port: 40001}

		a := dl.dial(t, n, "alice", withConn(proxyDial("127.0.0.1", client, n.MQTTAddr())))
		if got := n.ClientRemote(a.id); got != client.String() {
			t.Fatalf("remote of a proxied connection: %q, want %q", got, client)
		}
		b := dl.dial(t, n, "bob", withConn(proxyDial("127.0.0.1", nil, n.MQTTAddr())))
		if got := n.ClientRemote(b.id); !strings.HasPrefix(got, "127.0.0.1:") {
			t.Fatalf("remote of a direct connection from a trusted address: %q", got)
		}
		a.sendOK(text("01JH0Z6Q4T3W8YV5B2K7C9D1P1", "bob", "through the proxy"))
		if ev := b.nextMessage(); ev.Msg.Body["text"] != "through the proxy" {
			t.Fatalf("bob got %v", ev)
		}

		// TLS passed through the load balancer: the header, then the handshake.
		tlsClient := &net.TCPAddr{IP: net.ParseIP("2001:db8::9"), Port: 40002}
		c := dl.dial(t, n, "carol", withConn(func() (net.Conn, error) {
			raw, err := proxyDial("127.0.0.1", tlsClient, n.MQTTSAddr())()
			if err != nil {
				return nil, err
			}
			tc := tls.Client(raw, f.client())
			if err := tc.Handshake(); err != nil {
				raw.Close()
				return nil, err
			}
			return tc, nil
		}))
		if got := n.ClientRemote(c.id); got != tlsClient.String() {
			t.Fatalf("remote of a proxied TLS connection: %q, want %q", got, tlsClient)
		}

		// 127.0.0.2 is not trusted: its header is refused, its plain
		// connections served.
		if _, _, err := dl.tryDial(t, n, "mallory", withConn(proxyDial("127.0.0.2", client, n.MQTTAddr()))); err == nil {
			t.Fatal("a PROXY header from an untrusted address was accepted")
		}
		d := dl.dial(t, n, "dave", withConn(proxyDial("127.0.0.2", nil, n.MQTTAddr())))
		if got := n.ClientRemote(d.id); !strings.HasPrefix(got, "127.0.0.2:") {
			t.Fatalf("remote of an untrusted direct connection: %q", got)
		}

		// The HTTP listener takes the header too.
		hc := &http.Client{Timeout: waitTimeout, Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
			return proxyDial("127.0.0.1", client, n.HTTPAddr())()
		}}}
		resp, err := hc.Get("http://" + n.HTTPAddr() + "/livez")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /livez through the proxy: %s", resp.Status)
		}
	})
}

// TestSeparateListeners: /metrics on its own listener behind a token, the
// admin API on its own listener (over TLS when configured) and neither on
// the HTTP listener; by default both are on the HTTP listener [IM-8.4].
func TestSeparateListeners(t *testing.T) {
	forEachStore(t, func(t *testing.T, be backend) {
		get := func(c *http.Client, method, url, auth string) int {
			t.Helper()
			req, err := http.NewRequest(method, url, strings.NewReader(`{"id":"zoe"}`))
			if err != nil {
				t.Fatal(err)
			}
			if auth != "" {
				req.Header.Set("Authorization", "Bearer "+auth)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		admin := adminTokenFor(t)
		plain := &http.Client{Timeout: waitTimeout}

		def := startNode(t, be)
		if got := get(plain, "GET", "http://"+def.HTTPAddr()+"/metrics", ""); got != http.StatusOK {
			t.Errorf("default /metrics: %d", got)
		}
		if got := get(plain, "POST", "http://"+def.HTTPAddr()+"/v1/users", admin); got != http.StatusCreated {
			t.Errorf("default POST /v1/users: %d", got)
		}

		f := newTLSFiles(t)
		n := startNode(t, be, f.opt(false), func(c *server.Config) {
			c.MetricsAddr, c.MetricsToken, c.AdminAddr = "127.0.0.1:0", "scrape-me", "127.0.0.1:0"
		})
		secure := &http.Client{Timeout: waitTimeout, Transport: &http.Transport{TLSClientConfig: f.client()}}
		for _, c := range []struct {
			client      *http.Client
			method, url string
			auth        string
			want        int
		}{
			{plain, "GET", "http://" + n.HTTPAddr() + "/metrics", "scrape-me", http.StatusNotFound},
			{secure, "GET", "https://" + n.HTTPSAddr() + "/metrics", "scrape-me", http.StatusNotFound},
			{plain, "GET", "http://" + n.MetricsAddr() + "/metrics", "", http.StatusUnauthorized},
			{plain, "GET", "http://" + n.MetricsAddr() + "/metrics", "wrong", http.StatusUnauthorized},
			{plain, "GET", "http://" + n.MetricsAddr() + "/metrics", "scrape-me", http.StatusOK},
			{plain, "POST", "http://" + n.HTTPAddr() + "/v1/users", admin, http.StatusNotFound},
			{plain, "GET", "http://" + n.HTTPAddr() + "/v1/nodes", admin, http.StatusNotFound},
			{secure, "POST", "https://" + n.HTTPSAddr() + "/v1/users", admin, http.StatusNotFound},
			{secure, "POST", "https://" + n.AdminAddr() + "/v1/users", "", http.StatusUnauthorized},
			{secure, "POST", "https://" + n.AdminAddr() + "/v1/users", admin, http.StatusCreated},
			{secure, "GET", "https://" + n.AdminAddr() + "/v1/nodes", admin, http.StatusOK},
			{plain, "GET", "http://" + n.HTTPAddr() + "/v1/admin/audit", admin, http.StatusNotFound},
			{secure, "GET", "https://" + n.AdminAddr() + "/v1/admin/audit", admin, http.StatusOK},
			{plain, "GET", "http://" + n.HTTPAddr() + "/healthz", "", http.StatusOK},
		} {
			if got := get(c.client, c.method, c.url, c.auth); got != c.want {
				t.Errorf("%s %s (with a token: %v): %d, want %d", c.method, c.url, c.auth != "", got, c.want)
			}
		}
	})
}

// adminTokenFor is a token with role admin.
func adminTokenFor(t *testing.T) string {
	t.Helper()
	tok, err := authtoken.Mint(secret, "ops", authtoken.RoleAdmin, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestTLSBadConfig: bad TLS files and settings are start-up errors that
// say what is wrong [IM-1.1-5].
func TestTLSBadConfig(t *testing.T) {
	f := newTLSFiles(t)
	garbage := filepath.Join(f.dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		opt  func(*server.Config)
		want string
	}{
		{"key without cert", func(c *server.Config) { c.TLSKey = f.key }, "both a certificate and a key"},
		{"client CA without cert", func(c *server.Config) { c.TLSClientCA = f.caFile }, "both a certificate and a key"},
		{"missing cert", func(c *server.Config) { c.TLSCert, c.TLSKey = filepath.Join(f.dir, "nope"), f.key }, "no such file"},
		{"malformed cert", func(c *server.Config) { c.TLSCert, c.TLSKey = garbage, f.key }, "PEM"},
		{"CA without certificates", func(c *server.Config) { f.opt(false)(c); c.TLSClientCA = garbage }, "holds no PEM certificate"},
		{"bad identity", func(c *server.Config) { c.TLSClientIdentity = "serial" }, "want cn, dns or email"},
		{"bad CIDR", func(c *server.Config) { c.ProxyProtocolFrom = []string{"10.0.0.0/33"} }, "PROXY protocol"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			st, err := testnode.NewDB(t, testnode.SQLite).Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			cfg := server.Config{Secret: secret, Store: st, Log: quietLog()}
			c.opt(&cfg)
			_, err = server.New(cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New: %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestTLSDrain: a draining node disconnects devices over TLS and behind a
// PROXY protocol header as over plain TCP: what they were sent stays
// readable, and MQTT 5 devices are told the server is shutting down (a
// half-close, [IM-1.1-4]).
func TestTLSDrain(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		f := newTLSFiles(t)
		n := startNode(t, be, f.opt(false), func(c *server.Config) { c.ProxyProtocolFrom = []string{"127.0.0.1/32"} })
		bob := dl.dial(t, n, "bob", overTLS(f.client()))
		carol := dl.dial(t, n, "carol", withConn(proxyDial("127.0.0.1", &net.TCPAddr{IP: net.ParseIP("198.51.100.9"), Port: 40003}, n.MQTTAddr())))
		alice := dl.dial(t, n, "alice", noSubscribe())
		const each = 20
		for i := range each {
			for _, to := range []string{"bob", "carol"} {
				m := text(fmt.Sprintf("tls-drain-%s-%d", to, i), to, "before the drain")
				payload, _ := protocol.Encode(alice.in, &m)
				if r := alice.c.publish(protocol.SendTopic("alice"), payload, pubOpts{qos: 1}); r.Err != nil || r.Code != 0 {
					t.Fatalf("send %s: %v %#x", m.Cmid, r.Err, r.Code)
				}
			}
		}
		// Delivered live first: a drain that starts right after the last
		// commit can lose that message's delivery on any transport (seen on
		// plain TCP too; reported to the lead), which is not what this test is
		// about.
		for _, d := range []*device{bob, carol} {
			eventually(t, waitTimeout, "live at "+d.user, func() bool {
				c := 0
				for _, ev := range d.events(0) {
					if ev.Kind == protocol.KindMessage {
						c++
					}
				}
				if c != each {
					t.Logf("live: %s has %d", d.user, c)
				}
				return c == each
			})
		}
		n.stop(t)
		for _, d := range []*device{bob, carol} {
			got := map[string]bool{}
			eventually(t, waitTimeout, "every committed message at "+d.user, func() bool {
				for _, ev := range d.events(0) {
					if ev.Kind == protocol.KindMessage {
						got[ev.Msg.Cmid] = true
					}
				}
				if len(got) != each {
					t.Logf("%s has %d of %d", d.user, len(got), each)
				}
				return len(got) == each
			})
			if dl.v5() {
				d.expectServerDisconnect(0x8B)
			}
		}
	})
}
