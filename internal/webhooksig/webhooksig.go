// Package webhooksig signs the requests mqimd posts to webhooks (push
// [IM-17.5-3], before-send [IM-18.2-2]): an HMAC-SHA256 over the timestamp
// and the body, which receivers compute again, refusing old timestamps.
package webhooksig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"
)

// The signature headers.
const (
	HeaderTimestamp = "X-Mqim-Timestamp"
	HeaderSignature = "X-Mqim-Signature"
)

// Sign returns the signature of body at ts (unix seconds): hex
// HMAC-SHA256 over "ts.body", prefixed "v1=".
func Sign(secret []byte, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// SetHeaders signs body, about to be posted with h, as of now.
func SetHeaders(h http.Header, secret, body []byte, now time.Time) {
	ts := now.Unix()
	h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(HeaderSignature, Sign(secret, ts, body))
}

// Verify checks the signature of body in h, and that its timestamp is
// within skew of now.
func Verify(h http.Header, secret, body []byte, now time.Time, skew time.Duration) bool {
	ts, err := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64)
	if err != nil {
		return false
	}
	if d := now.Sub(time.Unix(ts, 0)); d > skew || d < -skew {
		return false
	}
	return hmac.Equal([]byte(h.Get(HeaderSignature)), []byte(Sign(secret, ts, body)))
}
