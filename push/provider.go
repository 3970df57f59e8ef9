// Package push sends offline push notifications [IM-17]: it takes the push
// outbox the store writes in the commit transaction, feeds it to a
// JetStream work queue that every node consumes, decides by the policies
// who is notified and how, claims each (message, device) in the store and
// calls the provider: APNs, FCM or a webhook.
//
// Its surface is small on purpose: Service.Deliver (the committer's
// consumer of committed events: a nudge), Service.Acked (the PUBACK of an
// inbox delivery, from mqtt.DeliveryAcks), Service.Register/Unregister/List (the
// RPCs) and Service.Connected (a CONNECT taking a client id over).
package push

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/mqim/mqim/internal/webhookclient"
	"github.com/mqim/mqim/store"
)

// Notification is one request to a provider: one message to one device.
type Notification struct {
	Device store.PushDevice
	Title  string // the sender, or the conversation
	Body   string // the text; empty when bodies are hidden
	// CollapseID folds the notifications of a conversation into one on the
	// phone: the conversation id, hashed when too long for APNs.
	CollapseID string
	Conv       string
	Seq        int64 // the message's conversation seq
	Unread     int64 // unread messages in the conversation ("5 new messages")
	Badge      int64 // the user's total unread count
	Kind       string
	Expires    time.Time // after this the provider drops it
}

// Provider sends notifications to one platform.
type Provider interface {
	// Send delivers n. It returns nil once the provider accepted it, or a
	// *SendError.
	Send(ctx context.Context, n *Notification) error
}

// Outcome says what to do after a failed send.
type Outcome int

const (
	Retry  Outcome = iota // the provider is down or throttles: try again later
	Remove                // the token is not valid (any more): remove the registration
	Drop                  // the request cannot succeed: give up on it
)

// SendError is a failed send: the outcome, the provider's reason (a
// bounded word, used as a metrics label) and, for Retry, how long the
// provider asked to wait (0: not said).
type SendError struct {
	Outcome    Outcome
	Reason     string
	RetryAfter time.Duration
	Err        error
}

func (e *SendError) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}

func (e *SendError) Unwrap() error { return e.Err }

// httpOutcome classifies a provider's HTTP status: 429 and 5xx are
// retried, the rest (4xx) dropped unless the provider said the token is
// gone (the callers check that first).
func httpOutcome(status int) Outcome {
	if status == http.StatusTooManyRequests || status >= 500 {
		return Retry
	}
	return Drop
}

// transportError is a request that got no answer: retried.
func transportError(err error) *SendError {
	reason := "transport"
	if errors.Is(err, context.DeadlineExceeded) {
		reason = "timeout"
	}
	return &SendError{Outcome: Retry, Reason: reason, Err: webhookclient.Redact(err)}
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// statusError is a SendError for an HTTP status with the provider's
// reason word.
func statusError(status int, reason string, h http.Header) *SendError {
	if reason == "" {
		reason = strconv.Itoa(status)
	}
	return &SendError{Outcome: httpOutcome(status), Reason: reason, RetryAfter: retryAfter(h, time.Now()),
		Err: fmt.Errorf("HTTP %d", status)}
}
