package sdk_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mqim/mqim/clients/sdk"
	"github.com/mqim/mqim/internal/ratelimit"
	"github.com/mqim/mqim/internal/testnode"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/server"
)

// Send retries a rate_limited refusal with the same cmid once the server's
// retry_after_ms has passed, and stores every message once [IM-1.3-6].
func TestSendWaitsOutTheRateLimit(t *testing.T) {
	const rate = 10
	n := testnode.Start(t, testnode.NewDB(t, testnode.SQLite), secret, nodeLog(), func(c *server.Config) {
		c.Limits = &server.Limits{ConnSends: ratelimit.Limit{Rate: rate, Burst: 2}}
	})
	dial(t, n.MQTTAddr(), "bob")
	alice := dial(t, n.MQTTAddr(), "alice")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	t0 := time.Now()
	const sends = 6
	for range sends {
		if _, err := alice.SendText(ctx, "bob", "hi"); err != nil {
			t.Fatal(err)
		}
	}
	// Two at once, then one per 1/rate.
	if d, least := time.Since(t0), (sends-2)*time.Second/rate; d < least {
		t.Fatalf("%d sends in %v, faster than the limit allows (%v)", sends, d, least)
	}
	if !sdk.ErrRateLimited.Retryable() || !errors.Is(&sdk.Error{Code: protocol.CodeRateLimited}, sdk.ErrRateLimited) {
		t.Fatal("rate_limited is not retryable")
	}
}
