package mqtt

import (
	"testing"

	mochi "github.com/mochi-mqtt/server/v2"
)

// The per-address limits count an IPv4 address, or an IPv6 /64; an
// address they cannot read is not limited [IM-3.1-9].
func TestAddrKey(t *testing.T) {
	for remote, want := range map[string]string{
		"198.51.100.7:40001":              "198.51.100.7",
		"[::ffff:198.51.100.7]:1":         "198.51.100.7",
		"[2001:db8:1:2:3:4:5:6]:443":      "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1%eth0]:443": "2001:db8:1:2::/64",
		"127.0.0.2":                       "127.0.0.2",
		"":                                "",
		"pipe":                            "",
	} {
		got, ok := addrKey(&mochi.Client{Net: mochi.ClientConnection{Remote: remote}})
		if got != want || ok != (want != "") {
			t.Errorf("addrKey(%q) = %q, %v; want %q", remote, got, ok, want)
		}
	}
}
