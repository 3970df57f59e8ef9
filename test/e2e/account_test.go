package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mqim/mqim/delivery/cluster"
	"github.com/mqim/mqim/internal/jwks"
	"github.com/mqim/mqim/internal/testnode"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
	"github.com/mqim/mqim/server"
)

func adminToken(t testing.TB) string {
	t.Helper()
	tok, err := authtoken.Mint(secret, "ops", authtoken.RoleAdmin, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// httpDo calls the HTTP API with tok ("" for none) and returns the status and the
// decoded JSON answer [IM-8.3].
func httpDo(t testing.TB, n *testNode, tok, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+n.HTTPAddr()+path, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&res)
	return resp.StatusCode, res
}

// admin calls the admin API as an admin and fails t unless it answers 200.
func admin(t testing.TB, n *testNode, method, path string, body any) map[string]any {
	t.Helper()
	status, res := httpDo(t, n, adminToken(t), method, path, body)
	if status != http.StatusOK {
		t.Fatalf("%s %s: %d %v", method, path, status, res)
	}
	return res
}

// expectEnded waits until the server ended d's connection: MQTT 5 with
// DISCONNECT code, 3.1.1 by closing it [IM-6.2-2].
func (d *device) expectEnded(code byte) {
	d.t.Helper()
	if d.v5 {
		d.expectServerDisconnect(code)
	}
	select {
	case <-d.c.done():
	case <-time.After(waitTimeout):
		d.t.Fatalf("%s: connection not ended by the server", d.id)
	}
}

// expectRefused dials and checks the CONNACK code: v5 on MQTT 5, v3 on
// 3.1.1.
func (dl dialer) expectRefused(t *testing.T, n *testNode, user string, v5, v3 byte, opts ...dialOpt) {
	t.Helper()
	want := v5
	if !dl.v5() {
		want = v3
	}
	if _, code, err := dl.tryDial(t, n, user, opts...); err == nil || code != want {
		t.Fatalf("%s: connect %s: code %#x, %v; want refused with %#x", dl, user, code, err, want)
	}
}

// mintAt signs a token for user issued at iat, bound to client if not "".
func mintAt(t testing.TB, user string, iat time.Time, client string) string {
	return signToken(t, secret, authtoken.Claims{Client: client, RegisteredClaims: jwt.RegisteredClaims{Subject: user,
		IssuedAt: jwt.NewNumericDate(iat), ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}})
}

// TestDisableAndKick: disabling a user ends its live sessions with 0x98
// and refuses CONNECT with 0x8A (3.1.1: 5) until it is enabled; a kick
// ends one device or all with 0x98, and they may reconnect [IM-8.3-2],
// [IM-8.3-3].
func TestDisableAndKick(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		phone := dl.dial(t, n, "alice", withClientID("alice.phone"))
		laptop := dl.dial(t, n, "alice", withClientID("alice.laptop"))
		bob := dl.dial(t, n, "bob")

		admin(t, n, "POST", "/v1/admin/users/alice/kick", map[string]string{"client": "alice.phone"})
		phone.expectEnded(0x98)
		laptop.sendOK(text("k1", "bob", "still here")) // the other device stays
		phone = dl.dial(t, n, "alice", withClientID("alice.phone"))

		admin(t, n, "POST", "/v1/admin/users/alice/kick", nil)
		phone.expectEnded(0x98)
		laptop.expectEnded(0x98)

		phone = dl.dial(t, n, "alice", withClientID("alice.phone"))
		admin(t, n, "POST", "/v1/admin/users/alice/disable", nil)
		phone.expectEnded(0x98)
		dl.expectRefused(t, n, "alice", 0x8A, 5, withClientID("alice.phone"))
		if st := admin(t, n, "GET", "/v1/admin/users/alice", nil); st["disabled"] != true {
			t.Fatalf("user state after disable: %v", st)
		}
		// A disabled user's token no longer works over HTTP either.
		if status, _ := httpDo(t, n, token(t, "alice"), "POST", "/v1/media", nil); status != http.StatusUnauthorized {
			t.Errorf("HTTP with a disabled user's token: %d; want 401", status)
		}
		bob.sendOK(text("b1", "alice", "messages to a disabled user are stored"))

		admin(t, n, "POST", "/v1/admin/users/alice/enable", nil)
		dl.dial(t, n, "alice", withClientID("alice.phone"))

		if status, res := httpDo(t, n, adminToken(t), "POST", "/v1/admin/users/nobody/disable", nil); status != http.StatusNotFound {
			t.Errorf("disable an unknown user: %d %v; want 404", status, res)
		}
	})
}

// TestRevocation: "log out everywhere" ends the sessions whose token was
// issued before the revocation (0x87) and refuses those tokens at CONNECT
// (0x87; 3.1.1: 5), while a token issued after it works; a revoked device
// is ended and refused by client id; a token bound to a client id (cid)
// works for that client id only [IM-3.1-8].
func TestRevocation(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		dl.dial(t, n, "bob")
		old := mintAt(t, "alice", time.Now().Add(-time.Minute), "")
		phone := dl.dial(t, n, "alice", withClientID("alice.phone"), withToken(old))
		res := admin(t, n, "POST", "/v1/admin/users/alice/revoke-tokens", nil)
		phone.expectEnded(0x87)
		dl.expectRefused(t, n, "alice", 0x87, 5, withClientID("alice.phone"), withToken(old))
		nb := int64(res["not_before"].(float64))
		fresh := mintAt(t, "alice", time.Unix(nb, 0), "")
		phone = dl.dial(t, n, "alice", withClientID("alice.phone"), withToken(fresh))
		laptop := dl.dial(t, n, "alice", withClientID("alice.laptop"), withToken(fresh))

		admin(t, n, "PUT", "/v1/admin/users/alice/revoked-devices/alice.phone", nil)
		phone.expectEnded(0x87)
		dl.expectRefused(t, n, "alice", 0x87, 5, withClientID("alice.phone"), withToken(fresh))
		laptop.sendOK(text("r1", "bob", "the laptop stays"))
		if st := admin(t, n, "GET", "/v1/admin/users/alice", nil); fmt.Sprint(st["revoked_devices"]) != "[alice.phone]" {
			t.Errorf("revoked devices: %v", st)
		}
		admin(t, n, "DELETE", "/v1/admin/users/alice/revoked-devices/alice.phone", nil)
		dl.dial(t, n, "alice", withClientID("alice.phone"), withToken(fresh))

		bound := mintAt(t, "carol", time.Now(), "carol.watch")
		dl.expectRefused(t, n, "carol", 0x87, 5, withClientID("carol.other"), withToken(bound))
		dl.dial(t, n, "carol", withClientID("carol.watch"), withToken(bound))
	})
}

// TestDeleteUser: a deleted user's sessions end (0x98), its messages are
// recalled for everyone, its id is refused at CONNECT (0x8A; 3.1.1: 5)
// even with a valid token, cannot be created again, and is no recipient
// [IM-8.3-5].
func TestDeleteUser(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		alice := dl.dial(t, n, "alice")
		bob := dl.dial(t, n, "bob")
		sent := alice.sendOK(text("a1", "bob", "my secret"))
		bob.sendOK(text("b1", "alice", "bob's own words"))
		call[protocol.Contact](bob, protocol.MethodContactAdd, protocol.ContactRequest{User: "alice"})
		pic := uploadMedia(t, n, "alice", "image/png", []byte("\x89PNG\r\n\x1a\nalice's picture"))
		kept := uploadMedia(t, n, "bob", "image/png", []byte("\x89PNG\r\n\x1a\nbob's picture"))

		if status, res := httpDo(t, n, adminToken(t), "DELETE", "/v1/admin/users/alice", nil); status != http.StatusOK || res["deleted"] != true {
			t.Fatalf("delete: %d %v", status, res)
		}
		alice.expectEnded(0x98)
		dl.expectRefused(t, n, "alice", 0x8A, 5)
		for _, m := range bob.historyAll(sent.Conv) {
			switch m.From {
			case "alice":
				if m.Type != "recalled" || len(m.Body) != 0 {
					t.Errorf("a deleted user's message is kept: %+v", m)
				}
			case "bob":
				if m.Body["text"] != "bob's own words" {
					t.Errorf("bob's message changed: %+v", m)
				}
			}
		}
		contacts := call[protocol.ContactsResult](bob, protocol.MethodContactList, map[string]any{})
		if len(contacts.Contacts) != 0 {
			t.Errorf("bob's contacts still list the deleted user: %+v", contacts)
		}
		bob.expectRefusedSend(text("b2", "alice", "hello?"), protocol.CodeUnknownUser)
		if status, _ := httpDo(t, n, token(t, "bob"), "GET", "/v1/media/"+pic["id"].(string), nil); status != http.StatusNotFound {
			t.Errorf("a deleted user's upload: %d; want 404", status)
		}
		if status, _ := httpDo(t, n, token(t, "bob"), "GET", "/v1/media/"+kept["id"].(string), nil); status != http.StatusOK {
			t.Errorf("bob's upload after alice's deletion: %d; want 200", status)
		}
		if status, _ := httpDo(t, n, adminToken(t), "POST", "/v1/users", map[string]string{"id": "alice"}); status != http.StatusGone {
			t.Errorf("create a deleted user: %d; want 410", status)
		}
		if st := admin(t, n, "GET", "/v1/admin/users/alice", nil); st["deleted"] != true || st["exists"] != false {
			t.Errorf("state of a deleted user: %v", st)
		}
	})
}

// expectRefusedSend sends and expects the refusal code.
func (d *device) expectRefusedSend(s protocol.Send, code string) {
	d.t.Helper()
	mark := d.mark()
	d.expectRefused(mark, d.send(s), code, s.Cmid)
}

// TestAuditLog: every admin action is in the audit log with who, what,
// when and from where, paged newest first; no body or token is in it;
// only admin tokens read it [IM-8.3-6].
func TestAuditLog(t *testing.T) {
	forEachStore(t, func(t *testing.T, be backend) {
		n := startNode(t, be)
		dl := dialer{5}
		dl.dial(t, n, "alice")
		admin(t, n, "POST", "/v1/admin/users/alice/kick", nil)
		admin(t, n, "POST", "/v1/admin/users/alice/disable", nil)
		admin(t, n, "POST", "/v1/admin/users/alice/enable", nil)
		admin(t, n, "POST", "/v1/admin/users/alice/revoke-tokens", nil)
		admin(t, n, "PUT", "/v1/admin/users/alice/revoked-devices/alice.x", nil)
		if status, _ := httpDo(t, n, adminToken(t), "POST", "/v1/users", map[string]string{"id": "dave"}); status != http.StatusCreated {
			t.Fatalf("create dave: %d", status)
		}
		if status, _ := postNotification(t, n, adminToken(t), map[string]any{"to": "dave", "cmid": "n1", "body": map[string]any{"text": "TOP SECRET BODY"}}); status != http.StatusCreated {
			t.Fatalf("notification: %d", status)
		}
		admin(t, n, "DELETE", "/v1/admin/users/alice", nil)

		want := []string{"user.deleted", "notification.sent", "user.created", "device.revoked", "tokens.revoked", "user.enabled", "user.disabled", "user.kicked"}
		var got []string
		var raw strings.Builder
		path := "/v1/admin/audit?limit=3"
		for pages := 0; ; pages++ {
			res := admin(t, n, "GET", path, nil)
			b, _ := json.Marshal(res)
			raw.Write(b)
			entries := res["entries"].([]any)
			if len(entries) > 3 || pages > 5 {
				t.Fatalf("page %d has %d entries", pages, len(entries))
			}
			for _, e := range entries {
				e := e.(map[string]any)
				got = append(got, e["action"].(string))
				if e["actor"] != "ops" || e["role"] != "admin" || e["ts"].(float64) == 0 || !strings.HasPrefix(e["remote"].(string), "127.0.0.1:") {
					t.Errorf("entry without who/when/where: %v", e)
				}
			}
			next, ok := res["next"].(float64)
			if !ok {
				break
			}
			path = fmt.Sprintf("/v1/admin/audit?limit=3&before=%d", int64(next))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("audit actions %v; want %v", got, want)
		}
		if strings.Contains(raw.String(), "TOP SECRET") || strings.Contains(raw.String(), "eyJ") {
			t.Errorf("the audit log holds a body or a token: %s", raw.String())
		}
		if res := admin(t, n, "GET", "/v1/admin/audit?target=dave", nil); len(res["entries"].([]any)) != 2 {
			t.Errorf("entries about dave: %v", res)
		}
		for _, tc := range []struct {
			tok, path string
			status    int
		}{
			{"", "/v1/admin/audit", http.StatusUnauthorized},
			{"garbage", "/v1/admin/audit", http.StatusUnauthorized},
			{token(t, "bob"), "/v1/admin/audit", http.StatusForbidden},
			{adminToken(t), "/v1/admin/audit?limit=0", http.StatusBadRequest},
			{adminToken(t), "/v1/admin/audit?before=x", http.StatusBadRequest},
			{adminToken(t), "/v1/admin/users/bad%2Fid", http.StatusBadRequest},
		} {
			if status, res := httpDo(t, n, tc.tok, "GET", tc.path, nil); status != tc.status {
				t.Errorf("GET %s with %.10q: %d %v; want %d", tc.path, tc.tok, status, res, tc.status)
			}
		}
		if status, _ := httpDo(t, n, token(t, "bob"), "POST", "/v1/admin/users/alice/kick", nil); status != http.StatusForbidden {
			t.Errorf("kick with a user token: %d; want 403", status)
		}
	})
}

// TestAccountActionsAcrossNodes: an action taken on one node ends the
// sessions on another within 5 s (over NATS), and the other node refuses
// the user's CONNECT [IM-8.3-7].
//
// PostgreSQL only: nodes share a database only there.
func TestAccountActionsAcrossNodes(t *testing.T) {
	n1, n2 := twoNodes(t)
	forEachVersion(t, func(t *testing.T, dl dialer) {
		user := "u" + randomID()
		old := mintAt(t, user, time.Now().Add(-time.Minute), "")
		d := dl.dial(t, n2, user, withToken(old))
		start := time.Now()
		res := admin(t, n1, "POST", "/v1/admin/users/"+user+"/revoke-tokens", nil)
		d.expectEnded(0x87)
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("revocation took %v on the other node; want ≤ 5 s", el)
		}
		dl.expectRefused(t, n2, user, 0x87, 5, withToken(old))

		// A token of the second of the revocation is refused too: mint after it.
		dl.expectRefused(t, n2, user, 0x87, 5, withToken(mintAt(t, user, time.Unix(int64(res["not_before"].(float64))-1, 0), "")))
		d = dl.dial(t, n2, user, withToken(mintAt(t, user, time.Unix(int64(res["not_before"].(float64)), 0), "")))
		start = time.Now()
		admin(t, n1, "POST", "/v1/admin/users/"+user+"/disable", nil)
		d.expectEnded(0x98)
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("ban took %v on the other node; want ≤ 5 s", el)
		}
		dl.expectRefused(t, n2, user, 0x8A, 5)
	})
}

// TestJWKSConnect: a node verifying tokens with a JWKS URL accepts an
// EdDSA token by its kid, a token of a key added later (rotation), and
// refuses an HS256 token once HS256 is off [IM-3.1-2].
func TestJWKSConnect(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		keys := &jwksServer{}
		srv := httptest.NewServer(keys)
		defer srv.Close()
		k1 := keys.add(t, "k1")
		set, err := jwks.New(t.Context(), jwks.Config{URL: srv.URL, RefreshUnknown: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		v, err := authtoken.NewVerifier(authtoken.VerifierConfig{KeySet: set.Keyfunc, Issuer: "idp", Audience: "mqim"})
		if err != nil {
			t.Fatal(err)
		}
		n := startNode(t, be, func(c *server.Config) { c.Tokens = v })
		dl.dial(t, n, "alice", withToken(k1.sign(t, "k1", "alice", "idp", "mqim")))
		k2 := keys.add(t, "k2")
		dl.dial(t, n, "alice", withToken(k2.sign(t, "k2", "alice", "idp", "mqim")))
		dl.expectRefused(t, n, "alice", 0x86, 4, withToken(k2.sign(t, "k2", "alice", "idp", "other")))
		dl.expectRefused(t, n, "alice", 0x86, 4, withToken(k2.sign(t, "k1", "alice", "idp", "mqim")))
		dl.expectRefused(t, n, "alice", 0x86, 4) // HS256 is not configured
	})
}

// jwksServer serves Ed25519 public keys as a JWKS.
type jwksServer struct {
	mu   gosync.Mutex
	keys []map[string]string
}

type edKey struct{ priv ed25519.PrivateKey }

func (s *jwksServer) add(t *testing.T, kid string) edKey {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "use": "sig",
		"x": base64.RawURLEncoding.EncodeToString(pub)})
	return edKey{priv}
}

func (s *jwksServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{"keys": s.keys})
}

func (k edKey) sign(t *testing.T, kid, user, iss, aud string) string {
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, authtoken.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: user,
		Issuer: iss, Audience: jwt.ClaimStrings{aud}, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// embeddedNATS starts an embedded NATS server for the test's nodes; it is
// closed after the nodes' cleanups, which run first.
func embeddedNATS(t *testing.T) *cluster.NATS {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	nc, err := cluster.ConnectNATS(ctx, cluster.NATSConfig{StoreDir: t.TempDir(), ServerName: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// twoNodes starts two nodes on one PostgreSQL database and one embedded
// NATS server: a cluster (a SQLite file belongs to one node). opts change
// the configuration of both.
func twoNodes(t *testing.T, opts ...func(*server.Config)) (n1, n2 *testNode) {
	t.Helper()
	nc := embeddedNATS(t)
	db := testnode.NewDB(t, testnode.Postgres)
	onNATS := func(name string, id int) []func(*server.Config) {
		return append([]func(*server.Config){func(c *server.Config) { c.NATS, c.NodeName, c.NodeID = nc.Conn, name, id }}, opts...)
	}
	return startNodeOn(t, db, onNATS("n1", 1)...), startNodeOn(t, db, onNATS("n2", 2)...)
}
