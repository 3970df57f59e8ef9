package protocol

import (
	"testing"
	"time"
)

func TestRateLimitedRoundsUp(t *testing.T) {
	for wait, ms := range map[time.Duration]int64{0: 1, time.Microsecond: 1, 1500 * time.Microsecond: 2, 2 * time.Second: 2000} {
		e := RateLimited("sends: too many", wait)
		if e.Code != CodeRateLimited || e.RetryAfterMs != ms || e.Reason() != ReasonQuotaExceeded {
			t.Errorf("RateLimited(%v) = %+v (reason %#x), want retry after %d ms, 0x97", wait, e, e.Reason(), ms)
		}
	}
	// The field travels in both encodings, and only when set.
	for _, f := range []Format{JSON, MsgPack} {
		b, err := Encode(f, RateLimited("send", time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var back Error
		if err := Decode(f, b, &back); err != nil || back.RetryAfterMs != 1000 {
			t.Errorf("%v: %+v, %v", f, back, err)
		}
	}
	if b, _ := Encode(JSON, Errorf(CodeBadRequest, "x")); string(b) != `{"code":"bad_request","message":"x"}` {
		t.Errorf("other errors: %s", b)
	}
}
