// mqim: test helpers added by the fork (not upstream). Upstream's tests slept
// a fixed time for a listener to start and used the fixed port 22222; they
// poll for it with these instead, on a port nothing else uses (see
// ../README.md).

package listeners

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// waitTimeout bounds every wait; a loaded machine meets a condition within
// milliseconds, so reaching it means the condition will not hold.
const waitTimeout = 10 * time.Second

// waitFor polls cond until it holds and reports whether it did; on timeout it
// fails the test with t.Errorf, which may be called from any goroutine.
func waitFor(t testing.TB, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("condition not met within %v", waitTimeout)
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// ephemeralConfig is basicConfig on a port the kernel picks at Init.
func ephemeralConfig(c Config) Config {
	c.Address = "127.0.0.1:0"
	return c
}

// freeConfig is c on a free loopback port, for the listeners that bind in
// Serve (the http.Server ones), whose bound address cannot be read back.
func freeConfig(t testing.TB, c Config) Config {
	t.Helper()
	n, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c.Address = n.Addr().String()
	require.NoError(t, n.Close())
	return c
}

// dialable reports whether something accepts TCP connections on addr.
func dialable(addr string) func() bool {
	return func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	}
}

// acceptedOnce dials addr and waits until the listener's establish function
// has been called with the connection, which proves Serve is accepting.
func acceptedOnce(t testing.TB, network, addr string, accepted <-chan struct{}) {
	t.Helper()
	c, err := net.Dial(network, addr)
	require.NoError(t, err)
	defer c.Close()
	select {
	case <-accepted:
	case <-time.After(waitTimeout):
		t.Fatalf("connection to %s not accepted within %v", addr, waitTimeout)
	}
}

// signalEstablisher is an EstablishFn that reports each connection on ch.
func signalEstablisher(ch chan<- struct{}) EstablishFn {
	return func(id string, c net.Conn) error {
		select {
		case ch <- struct{}{}:
		default:
		}
		return nil
	}
}
