// Package jwks keeps the public keys of a JWKS URL for token verification
// [IM-3.1-2]: fetched at start-up (an unreachable or empty set is a
// start-up error), refreshed periodically, and fetched again when a token
// names an unknown kid (key rotation), at most once per RefreshUnknown.
// The fetching and caching are github.com/MicahParks/keyfunc/v3's.
package jwks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Defaults of Config.
const (
	DefaultRefresh        = 15 * time.Minute
	DefaultRefreshUnknown = 10 * time.Second
	DefaultTimeout        = 10 * time.Second
)

// Config configures a Set.
type Config struct {
	URL            string        // required
	Refresh        time.Duration // periodic refetch; zero: DefaultRefresh
	RefreshUnknown time.Duration // least time between fetches for unknown kids; zero: DefaultRefreshUnknown
	Timeout        time.Duration // per fetch; zero: DefaultTimeout
	Client         *http.Client  // zero: http.DefaultClient
	Log            *slog.Logger  // zero: slog.Default()
	Registerer     prometheus.Registerer
}

// Set is a JWKS kept up to date until its context ends.
type Set struct {
	kf keyfunc.Keyfunc
}

// New fetches the set once (failing if the URL does not answer with at
// least one key) and keeps it refreshed until ctx ends.
func New(ctx context.Context, cfg Config) (*Set, error) {
	if cfg.URL == "" {
		return nil, errors.New("jwks: no URL")
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.RefreshUnknown <= 0 {
		cfg.RefreshUnknown = DefaultRefreshUnknown
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	failures := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mqim_jwks_refresh_failures_total", Help: "Failed fetches of the JWKS URL (the keys fetched before stay in use).",
	})
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(failures); err != nil {
			return nil, fmt.Errorf("jwks: register metric: %w", err)
		}
	}
	fail := false
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.URL}, keyfunc.Override{
		Client:                    cfg.Client,
		HTTPTimeout:               cfg.Timeout,
		NoErrorReturnFirstHTTPReq: &fail,
		RefreshInterval:           cfg.Refresh,
		RefreshUnknownKID:         rate.NewLimiter(rate.Every(cfg.RefreshUnknown), 1),
		RateLimitWaitMax:          time.Second, // a CONNECT with an unknown kid waits at most this for the limiter
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(_ context.Context, err error) {
				failures.Inc()
				cfg.Log.Warn("JWKS refresh failed; keeping the keys fetched before", "url", u, "error", err)
			}
		},
	})
	if err != nil {
		// keyfunc joins errors with newlines; a start-up error is one line.
		return nil, fmt.Errorf("jwks: fetch %s: %s", cfg.URL, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	keys, err := kf.Storage().KeyReadAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("jwks: read %s: %w", cfg.URL, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("jwks: %s holds no usable key", cfg.URL)
	}
	return &Set{kf: kf}, nil
}

// Keyfunc finds a token's key by its kid, for authtoken.VerifierConfig.
func (s *Set) Keyfunc(t *jwt.Token) (any, error) { return s.kf.Keyfunc(t) }
