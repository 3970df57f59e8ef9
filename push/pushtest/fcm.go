package pushtest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mqim/mqim/push"
)

// FCM is a fake of FCM HTTP v1 and of Google's OAuth2 token endpoint: the
// service account key file it writes names its /token as token_uri; the
// token endpoint checks the JWT-bearer assertion (RS256, the key, the
// scope, the audience) and issues access tokens that messages:send checks.
type FCM struct {
	*recorder
	Server  *httptest.Server
	KeyFile string
	Project string

	key       *rsa.PrivateKey
	mu        sync.Mutex
	issued    map[string]bool
	exchanges int
	errs      []string
}

// NewFCM starts the fake; the test's cleanup stops it.
func NewFCM(t testing.TB) *FCM {
	f := &FCM{recorder: newRecorder(), Project: "mqim-test", issued: map[string]bool{}}
	var pemKey []byte
	f.key, pemKey = newRSAKey(t)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("POST /v1/projects/{project}/messages:send", f.send)
	f.Server = httptest.NewTLSServer(mux)
	t.Cleanup(f.Server.Close)
	sa, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": f.Project, "private_key_id": "key-1", "private_key": string(pemKey),
		"client_email": "mqim@" + f.Project + ".iam.gserviceaccount.com", "client_id": "1",
		"token_uri": f.Server.URL + "/token",
	})
	f.KeyFile = writeFile(t, "service-account.json", sa)
	return f
}

// Config is the provider's configuration for this fake.
func (f *FCM) Config() push.FCMConfig {
	return push.FCMConfig{KeyFile: f.KeyFile, Endpoint: f.Server.URL, Client: client(f.Server)}
}

// Exchanges says how many access tokens the token endpoint issued.
func (f *FCM) Exchanges() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.exchanges
}

// Errors returns the protocol violations the fake saw.
func (f *FCM) Errors() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.errs...)
}

func (f *FCM) violation(s string) {
	f.mu.Lock()
	f.errs = append(f.errs, s)
	f.mu.Unlock()
}

func (f *FCM) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		f.violation("token: grant_type")
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(r.PostForm.Get("assertion"), claims, func(*jwt.Token) (any, error) { return &f.key.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(f.Server.URL+"/token"), jwt.WithExpirationRequired())
	if err != nil || claims["scope"] != "https://www.googleapis.com/auth/firebase.messaging" ||
		claims["iss"] != "mqim@"+f.Project+".iam.gserviceaccount.com" {
		f.violation("token: assertion")
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
		return
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := "ya29." + hex.EncodeToString(b)
	f.mu.Lock()
	f.issued[tok] = true
	f.exchanges++
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "expires_in": 3599, "token_type": "Bearer"})
}

// fcmError is FCM's error JSON.
func fcmError(status int, state, code, message string) map[string]any {
	e := map[string]any{"code": status, "message": message, "status": state}
	if code != "" {
		e["details"] = []map[string]string{{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}}
	}
	return map[string]any{"error": e}
}

func (f *FCM) send(w http.ResponseWriter, r *http.Request) {
	bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	ok := f.issued[bearer]
	f.mu.Unlock()
	if !ok {
		f.violation("send: bearer")
		writeJSON(w, http.StatusUnauthorized, fcmError(401, "UNAUTHENTICATED", "",
			"Request had invalid authentication credentials. Expected OAuth 2 access token."))
		return
	}
	if r.PathValue("project") != f.Project {
		f.violation("send: project")
		writeJSON(w, http.StatusForbidden, fcmError(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch"))
		return
	}
	var m push.FCMMessage
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8192)).Decode(&m); err != nil || m.Message.Token == "" {
		f.violation("send: body")
		writeJSON(w, http.StatusBadRequest, fcmError(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid JSON payload received."))
		return
	}
	if ans, ok := f.answerFor(m.Message.Token); ok {
		if ans.RetryAfter != "" {
			w.Header().Set("Retry-After", ans.RetryAfter)
		}
		state := map[int]string{400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}[ans.Status]
		writeJSON(w, ans.Status, fcmError(ans.Status, state, ans.Reason, "Requested entity was not found."))
		return
	}
	seq, _ := strconv.ParseInt(m.Message.Data["seq"], 10, 64)
	var title, body string
	if m.Message.Notification != nil {
		title, body = m.Message.Notification.Title, m.Message.Notification.Body
	}
	f.accept(Notification{Token: m.Message.Token, CollapseID: m.Message.Android.Notification.Tag, Title: title, Body: body,
		Conv: m.Message.Data["conv"], Seq: seq, Unread: m.Message.Android.Notification.NotificationCount, Badge: m.Message.APNs.Payload.Aps.Badge})
	writeJSON(w, http.StatusOK, map[string]string{"name": "projects/" + f.Project + "/messages/" + strconv.FormatInt(time.Now().UnixNano(), 10)})
}
