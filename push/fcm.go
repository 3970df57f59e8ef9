package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"
)

// FCMEndpoint is the FCM HTTP v1 API.
const FCMEndpoint = "https://fcm.googleapis.com"

const fcmScope = "https://www.googleapis.com/auth/firebase.messaging"

// FCMConfig configures FCM HTTP v1.
type FCMConfig struct {
	KeyFile  string       // the service account's JSON key
	Endpoint string       // default FCMEndpoint; tests point it at a fake
	Client   *http.Client // the transport of both the token exchange and messages:send; nil: the default
}

// FCM sends with FCM HTTP v1 messages:send, authorized by an OAuth2 access
// token from the service account's JWT-bearer grant (golang.org/x/oauth2:
// exchanged at the key file's token_uri, cached until it expires).
type FCM struct {
	endpoint string
	project  string
	client   *http.Client
}

// serviceAccount is the part of a service account key file FCM needs.
type serviceAccount struct {
	Type         string `json:"type"`
	ProjectID    string `json:"project_id"`
	PrivateKeyID string `json:"private_key_id"`
	PrivateKey   string `json:"private_key"`
	ClientEmail  string `json:"client_email"`
	TokenURI     string `json:"token_uri"`
}

// NewFCM reads the key file and returns the provider.
func NewFCM(cfg FCMConfig) (*FCM, error) {
	data, err := os.ReadFile(cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("fcm: read service account key: %w", err)
	}
	var sa serviceAccount
	if err := json.Unmarshal(data, &sa); err != nil {
		return nil, fmt.Errorf("fcm: parse service account key %s: %w", cfg.KeyFile, err)
	}
	if sa.Type != "service_account" || sa.ProjectID == "" || sa.ClientEmail == "" || sa.PrivateKey == "" || sa.TokenURI == "" {
		return nil, fmt.Errorf("fcm: %s is not a service account key (type, project_id, client_email, private_key, token_uri)", cfg.KeyFile)
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = FCMEndpoint
	}
	base := cfg.Client
	if base == nil {
		base = &http.Client{Timeout: 15 * time.Second}
	}
	jc := &jwt.Config{Email: sa.ClientEmail, PrivateKey: []byte(sa.PrivateKey), PrivateKeyID: sa.PrivateKeyID,
		Scopes: []string{fcmScope}, TokenURL: sa.TokenURI}
	// The token source keeps this context for every later exchange: it
	// carries the HTTP client, nothing that ends.
	ts := jc.TokenSource(context.WithValue(context.Background(), oauth2.HTTPClient, base))
	return &FCM{
		endpoint: cfg.Endpoint,
		project:  sa.ProjectID,
		client:   &http.Client{Transport: &oauth2.Transport{Source: ts, Base: base.Transport}, Timeout: base.Timeout},
	}, nil
}

// FCMMessage is the JSON body of messages:send.
type FCMMessage struct {
	Message struct {
		Token        string            `json:"token"`
		Notification *fcmNotification  `json:"notification,omitempty"`
		Data         map[string]string `json:"data,omitempty"`
		Android      struct {
			CollapseKey  string `json:"collapse_key,omitempty"`
			Priority     string `json:"priority,omitempty"`
			TTL          string `json:"ttl,omitempty"`
			Notification struct {
				Tag               string `json:"tag,omitempty"`
				NotificationCount int64  `json:"notification_count,omitempty"`
			} `json:"notification"`
		} `json:"android"`
		APNs struct {
			Headers map[string]string `json:"headers,omitempty"`
			Payload struct {
				Aps struct {
					Badge int64 `json:"badge"`
				} `json:"aps"`
			} `json:"payload"`
		} `json:"apns"`
	} `json:"message"`
}

type fcmNotification struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
}

// Send posts n to messages:send.
func (f *FCM) Send(ctx context.Context, n *Notification) error {
	var m FCMMessage
	m.Message.Token = n.Device.Token
	m.Message.Notification = &fcmNotification{Title: n.Title, Body: n.Body}
	m.Message.Data = map[string]string{"conv": n.Conv, "seq": strconv.FormatInt(n.Seq, 10), "unread": strconv.FormatInt(n.Unread, 10)}
	m.Message.Android.CollapseKey, m.Message.Android.Priority = n.CollapseID, "high"
	if ttl := time.Until(n.Expires); ttl > 0 {
		m.Message.Android.TTL = strconv.Itoa(int(ttl.Seconds())) + "s"
	}
	m.Message.Android.Notification.Tag = n.CollapseID
	m.Message.Android.Notification.NotificationCount = n.Unread
	m.Message.APNs.Headers = map[string]string{"apns-collapse-id": apnsCollapseID(n.CollapseID)}
	m.Message.APNs.Payload.Aps.Badge = n.Badge
	body, err := json.Marshal(&m)
	if err != nil {
		return &SendError{Outcome: Drop, Reason: "encode", Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.endpoint+"/v1/projects/"+f.project+"/messages:send", bytes.NewReader(body))
	if err != nil {
		return &SendError{Outcome: Drop, Reason: "request", Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		if re := (*oauth2.RetrieveError)(nil); errors.As(err, &re) {
			return &SendError{Outcome: Retry, Reason: "oauth2", Err: fmt.Errorf("token exchange: HTTP %d", re.Response.StatusCode)}
		}
		return transportError(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 8192))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	status, code := fcmError(data)
	reason := code
	if reason == "" {
		reason = status
	}
	se := statusError(resp.StatusCode, fcmReason(reason), resp.Header)
	if code == "UNREGISTERED" || resp.StatusCode == http.StatusNotFound {
		se.Outcome = Remove
	}
	return se
}

// fcmError reads FCM's error JSON: the status and the FcmError code.
func fcmError(data []byte) (status, code string) {
	var e struct {
		Error struct {
			Status  string `json:"status"`
			Details []struct {
				Type      string `json:"@type"`
				ErrorCode string `json:"errorCode"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &e) != nil {
		return "", ""
	}
	for _, d := range e.Error.Details {
		if d.ErrorCode != "" {
			code = d.ErrorCode
		}
	}
	return e.Error.Status, code
}

var fcmReasons = map[string]bool{
	"UNSPECIFIED_ERROR": true, "INVALID_ARGUMENT": true, "UNREGISTERED": true, "SENDER_ID_MISMATCH": true,
	"QUOTA_EXCEEDED": true, "UNAVAILABLE": true, "INTERNAL": true, "THIRD_PARTY_AUTH_ERROR": true,
	"NOT_FOUND": true, "RESOURCE_EXHAUSTED": true, "PERMISSION_DENIED": true, "UNAUTHENTICATED": true,
}

func fcmReason(r string) string {
	if r == "" || fcmReasons[r] {
		return r
	}
	return "other"
}
