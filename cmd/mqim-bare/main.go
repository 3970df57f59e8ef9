// Command mqim-bare is the bare-broker reference of `mqim bench --ref
// bare`: mochi with default options and no mqim hooks, serving on a
// loopback address until interrupted. It prints the address it listens on
// as its first line. `mqim bench` starts it from the folder of its own
// binary or from PATH (go build -o "$(dirname "$(which mqim)")" ./cmd/mqim-bare).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/mqim/mqim/clients/bench/bare"
)

func main() {
	addr := "127.0.0.1:0"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bare.Serve(ctx, addr, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mqim-bare:", err)
		os.Exit(1)
	}
}
