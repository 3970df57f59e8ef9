package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mqim/mqim/internal/jwks"
	"github.com/mqim/mqim/protocol/authtoken"
)

// tokenOptions are the flags of token verification [IM-3.1-2].
type tokenOptions struct {
	hs256            bool
	publicKeys       string // PEM file
	jwksURL          string
	issuer, audience string
	skew             time.Duration
}

func (t *tokenOptions) register(fs *flag.FlagSet) {
	fs.BoolVar(&t.hs256, "jwt-hs256", true, "accept HS256 tokens signed with the JWT secret (false: only --jwt-public-keys / --jwks-url)")
	fs.StringVar(&t.publicKeys, "jwt-public-keys", "", "PEM file of public keys (RSA ≥ 2048 bits, ECDSA P-256, Ed25519) verifying RS256/ES256/EdDSA tokens")
	fs.StringVar(&t.jwksURL, "jwks-url", "", "JWKS URL whose keys verify RS256/ES256/EdDSA tokens by kid (fetched at start, refreshed every 15 min and on an unknown kid)")
	fs.StringVar(&t.issuer, "jwt-issuer", "", "required iss claim; empty: not checked")
	fs.StringVar(&t.audience, "jwt-audience", "", "required aud claim (one of its values); empty: not checked")
	fs.DurationVar(&t.skew, "jwt-skew", authtoken.DefaultLeeway, "tolerated clock skew on exp, nbf and iat (at most 5m)")
}

// verifier builds the token verifier; a bad key file or an unreachable
// JWKS URL is a start-up error. The JWKS is refreshed until ctx ends.
func (t *tokenOptions) verifier(ctx context.Context, secret []byte, log *slog.Logger, reg prometheus.Registerer) (*authtoken.Verifier, string, error) {
	cfg := authtoken.VerifierConfig{Issuer: t.issuer, Audience: t.audience, Leeway: t.skew}
	var desc []string
	if t.hs256 {
		cfg.Secret = secret
		desc = append(desc, "HS256")
	}
	if t.publicKeys != "" {
		data, err := os.ReadFile(t.publicKeys)
		if err != nil {
			return nil, "", fmt.Errorf("--jwt-public-keys: %w", err)
		}
		if cfg.Keys, err = authtoken.ParsePublicKeys(data); err != nil {
			return nil, "", fmt.Errorf("--jwt-public-keys %s: %w", t.publicKeys, err)
		}
		desc = append(desc, fmt.Sprintf("%d PEM keys", len(cfg.Keys)))
	}
	if t.jwksURL != "" {
		set, err := jwks.New(ctx, jwks.Config{URL: t.jwksURL, Log: log, Registerer: reg})
		if err != nil {
			return nil, "", fmt.Errorf("--jwks-url: %w", err)
		}
		cfg.KeySet = set.Keyfunc
		desc = append(desc, "JWKS "+t.jwksURL)
	}
	if t.skew < 0 || t.skew > authtoken.MaxLeeway {
		return nil, "", fmt.Errorf("--jwt-skew %v: at most %v", t.skew, authtoken.MaxLeeway)
	}
	v, err := authtoken.NewVerifier(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("tokens: %w (set --jwt-hs256, --jwt-public-keys or --jwks-url)", err)
	}
	return v, strings.Join(desc, ", "), nil
}

// newRegistry is the node's metrics registry with the Go and process
// collectors, as server.New would make it.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
