// Package bare is the reference the load generator measures mqimd
// against: mochi with default options and no mqim hooks. It is the only
// package of the clients that links mochi, and cmd/mqim-bare its only
// command, so that the chat CLI does not.
package bare

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqim/mqim/clients/bench"
)

// Bare is an in-process mochi broker with default options and no mqim
// hooks (only an allow-all auth hook, without which mochi refuses every
// connection): the ceiling that mqimd is measured against.
type Bare struct {
	srv  *mqtt.Server
	addr string
}

// Start starts a bare broker listening on addr ("127.0.0.1:0" for a
// free loopback port).
func Start(addr string) (*Bare, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("bare broker: %w", err)
	}
	srv := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := srv.AddHook(new(allowAll), nil); err != nil {
		ln.Close()
		return nil, fmt.Errorf("bare broker: %w", err)
	}
	if err := srv.AddListener(listeners.NewNet("bench", ln)); err != nil {
		ln.Close()
		return nil, fmt.Errorf("bare broker: %w", err)
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return nil, fmt.Errorf("bare broker: %w", err)
	}
	return &Bare{srv: srv, addr: ln.Addr().String()}, nil
}

// Addr is the broker's listening address.
func (b *Bare) Addr() string { return b.addr }

// Target is the benchmark target for this broker. Its memory is this
// process's: the generator's included (bench.StartBareProcess keeps them apart).
func (b *Bare) Target() bench.Target {
	t := bench.BareTarget(b.addr)
	t.Memory = bench.ProcMemory(os.Getpid())
	return t
}

// closeTimeout bounds Close: mochi's Close waits for every client
// goroutine, and a client deadlocked inside mochi never ends.
const closeTimeout = 5 * time.Second

// Close disconnects every client and stops the broker. If mochi does not
// stop within a few seconds, Close gives up, leaving its goroutines behind.
func (b *Bare) Close() error {
	done := make(chan error, 1)
	go func() { done <- b.srv.Close() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("bare broker: %w", err)
		}
		return nil
	case <-time.After(closeTimeout):
		return fmt.Errorf("bare broker: not stopped after %v (a client goroutine is stuck in mochi)", closeTimeout)
	}
}

// allowAll lets every client connect, publish and subscribe (mochi's own
// AllowHook lives in a package that needs a module this one does not).
type allowAll struct{ mqtt.HookBase }

func (*allowAll) ID() string { return "bench-allow-all" }

func (*allowAll) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (*allowAll) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }
func (*allowAll) OnACLCheck(*mqtt.Client, string, bool) bool              { return true }

// Serve runs a bare broker on addr until ctx ends, after writing its
// address as the first line to w (bench.StartBareProcess reads it).
func Serve(ctx context.Context, addr string, w io.Writer) error {
	b, err := Start(addr)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, b.Addr())
	<-ctx.Done()
	return b.Close()
}
