package protocol

import "time"

// CodeRateLimited refuses a send or an RPC request over the sender's rate
// limit [IM-1.3-6]: nothing was done; retry with the same cmid after
// Error.RetryAfterMs. reasonOf (codes.go) maps it to 0x97 Quota exceeded.
const CodeRateLimited = "rate_limited"

// RateLimited is the refusal of a request over a rate limit, retryable
// after wait (rounded up to whole milliseconds, at least 1).
func RateLimited(message string, wait time.Duration) *Error {
	ms := max(1, (wait+time.Millisecond-1)/time.Millisecond)
	return &Error{Code: CodeRateLimited, Message: message, RetryAfterMs: int64(ms)}
}
