package authtoken

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Clock skew tolerated on exp, nbf and iat [IM-3.1-2].
const (
	DefaultLeeway = 5 * time.Second
	MaxLeeway     = 5 * time.Minute
)

// The signature algorithms a Verifier accepts [IM-3.1-2]: HS256 with the
// shared secret, the others with public keys (PEM or JWKS).
const (
	AlgHS256 = "HS256"
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
)

// VerifierConfig configures a Verifier. At least one of Secret, Keys and
// KeySet is required.
type VerifierConfig struct {
	Secret []byte             // HS256 secret; nil: HS256 refused
	Keys   []crypto.PublicKey // RSA, ECDSA P-256 or Ed25519 public keys (ParsePublicKeys)
	// KeySet finds the key of a token (by its kid), e.g. from a JWKS URL;
	// tried when Keys has no key of the token's algorithm.
	KeySet jwt.Keyfunc
	// Issuer and Audience, when set, must match the iss claim and be one
	// of the aud claim's values.
	Issuer   string
	Audience string
	// Leeway is the tolerated clock skew; zero: DefaultLeeway; at most
	// MaxLeeway.
	Leeway time.Duration
}

// Verifier checks tokens [IM-3.1-2]. It is safe for concurrent use.
type Verifier struct {
	cfg     VerifierConfig
	methods []string
	parser  *jwt.Parser
}

// NewVerifier checks cfg and returns a Verifier.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.Leeway < 0 || cfg.Leeway > MaxLeeway {
		return nil, fmt.Errorf("token verifier: clock skew %v is outside 0..%v", cfg.Leeway, MaxLeeway)
	}
	var methods []string
	if len(cfg.Secret) > 0 {
		methods = append(methods, AlgHS256)
	}
	for _, k := range cfg.Keys {
		if _, err := algOf(k); err != nil {
			return nil, fmt.Errorf("token verifier: %w", err)
		}
	}
	if len(cfg.Keys) > 0 || cfg.KeySet != nil {
		methods = append(methods, AlgRS256, AlgES256, AlgEdDSA)
	}
	if len(methods) == 0 {
		return nil, errors.New("token verifier: no secret and no public key configured")
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway)}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	return &Verifier{cfg: cfg, methods: methods, parser: jwt.NewParser(opts...)}, nil
}

// Algorithms lists the accepted signature algorithms.
func (v *Verifier) Algorithms() []string { return v.methods }

// Verify checks a token's signature, exp (required), iat (required, not in
// the future), nbf, iss and aud, and that its subject is user; user ""
// accepts any subject.
func (v *Verifier) Verify(token, user string) (*Claims, error) {
	var c Claims
	if _, err := v.parser.ParseWithClaims(token, &c, v.key); err != nil {
		return nil, fmt.Errorf("verify token: %w", err)
	}
	if c.IssuedAt == nil {
		return nil, errors.New("verify token: no iat claim")
	}
	if user != "" && c.Subject != user {
		return nil, fmt.Errorf("verify token: subject %q is not user %q", c.Subject, user)
	}
	return &c, nil
}

// key picks the verification key of t by its algorithm. The parser has
// already refused algorithms outside v.methods.
func (v *Verifier) key(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if alg == AlgHS256 {
		return v.cfg.Secret, nil
	}
	var set jwt.VerificationKeySet
	for _, k := range v.cfg.Keys {
		if a, _ := algOf(k); a == alg {
			set.Keys = append(set.Keys, k)
		}
	}
	if len(set.Keys) > 0 {
		return set, nil
	}
	if v.cfg.KeySet != nil {
		return v.cfg.KeySet(t)
	}
	return nil, fmt.Errorf("no %s key configured", alg)
}

// algOf is the one algorithm a public key verifies.
func algOf(k crypto.PublicKey) (string, error) {
	switch k := k.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return "", fmt.Errorf("RSA key of %d bits: at least 2048 are required", k.N.BitLen())
		}
		return AlgRS256, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("ECDSA key on %s: ES256 needs P-256", k.Curve.Params().Name)
		}
		return AlgES256, nil
	case ed25519.PublicKey:
		return AlgEdDSA, nil
	default:
		return "", fmt.Errorf("unsupported public key type %T", k)
	}
}

// ParsePublicKeys reads every PEM block of data: PUBLIC KEY (PKIX), RSA
// PUBLIC KEY (PKCS #1) or CERTIFICATE (its public key). Data without a
// block, an undecodable block or a key of an unsupported type is an error.
func ParsePublicKeys(data []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for n := 1; ; n++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		var k any
		var err error
		switch b.Type {
		case "PUBLIC KEY":
			k, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "RSA PUBLIC KEY":
			k, err = x509.ParsePKCS1PublicKey(b.Bytes)
		case "CERTIFICATE":
			var c *x509.Certificate
			if c, err = x509.ParseCertificate(b.Bytes); err == nil {
				k = c.PublicKey
			}
		default:
			err = fmt.Errorf("type %q is not a public key (private keys do not belong here)", b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		if _, err := algOf(k); err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM public key found")
	}
	return keys, nil
}

// Verify checks an HS256 token with secret as a Verifier with the default
// skew does; for tools and tests.
func Verify(secret []byte, token, user string) (*Claims, error) {
	v, err := NewVerifier(VerifierConfig{Secret: secret})
	if err != nil {
		return nil, err
	}
	return v.Verify(token, user)
}
