package main

import (
	"strings"
	"testing"
)

// A bad limit is a one-line start-up error naming its flags, before
// anything is opened [IM-1.3-6], [IM-3.1-9].
func TestLimitFlagErrors(t *testing.T) {
	bin := build(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--limit-user-send-burst", "0"}, "--limit-user-send-burst"},
		{[]string{"--limit-conn-rpc-rate", "-1"}, "--limit-conn-rpc-rate"},
		{[]string{"--limit-connect-rate", "NaN"}, "--limit-connect-rate"},
		{[]string{"--limit-auth-max-delay", "10ms"}, "--limit-auth-max-delay"},
		{[]string{"--limit-auth-free-failures", "-3"}, "--limit-auth-free-failures"},
		{[]string{"--limit-user-connections", "-1"}, "--limit-user-connections"},
		{[]string{"--limit-user-send-rate", "fast"}, "limit-user-send-rate"},
	} {
		if msg := runFail(t, bin, c.args...); !strings.Contains(msg, c.want) {
			t.Errorf("mqimd %v: %q does not name %s", c.args, msg, c.want)
		}
	}
}
