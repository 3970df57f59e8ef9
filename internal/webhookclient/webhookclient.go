// Package webhookclient is the HTTP client of the webhooks mqimd posts to
// (push [IM-17.5-3], before-send [IM-18.2]): connections kept for
// concurrent calls, redirects not followed, URLs kept out of errors.
package webhookclient

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// New returns a client that keeps idle connections per host for calls
// made concurrently, and follows no redirect: a 307 or 308 would post the
// signed body — with a device token, for push — to wherever it points.
// timeout bounds a whole call; zero: none (the caller's context does).
func New(idle int, timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = idle
	return &http.Client{Transport: t, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Redact returns err without the request's URL, which the client's errors
// hold and which may carry a key in its query, for the logs.
func Redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
