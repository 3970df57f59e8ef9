package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mqim/mqim/clients/bench"
)

const benchUsage = `Usage: mqim bench SCENARIO [flags]

Scenarios:
  1to1   N senders, each sending to its own receiver (users bs{i} → br{i})

Run "mqim bench 1to1 --help" for the flags.
`

// benchCmd runs a load scenario against mqimd and/or a bare broker.
func benchCmd(args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(os.Stderr, benchUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return errors.New("bench: no scenario given")
	}
	if args[0] != "1to1" {
		fmt.Fprint(os.Stderr, benchUsage)
		return fmt.Errorf("bench: unknown scenario %q", args[0])
	}
	return bench1to1(args[1:])
}

func bench1to1(args []string) error {
	fs := flag.NewFlagSet("mqim bench 1to1", flag.ContinueOnError)
	server := fs.String("server", "mqtt://127.0.0.1:1883", "mqimd's MQTT address; several, comma-separated, for a cluster (connections spread over them)")
	cross := fs.Bool("cross", false, "with several --server: connect each receiver to another node than its sender")
	secret := fs.String("secret", os.Getenv("MQIM_JWT_SECRET"), "mqimd's HS256 secret, to mint tokens (or MQIM_JWT_SECRET)")
	secretFile := fs.String("secret-file", "", "read the secret from this file (mqimd's <data-dir>/jwt-secret)")
	var cfg bench.Config
	fs.IntVar(&cfg.Senders, "senders", bench.DefaultSenders, "sending connections, each with its own receiver connection")
	fs.IntVar(&cfg.Inflight, "inflight", bench.DefaultInflight, "QoS 1 publishes in flight per sender connection")
	fs.Float64Var(&cfg.Rate, "rate", 0, "total messages per second, paced; 0: as fast as possible")
	fs.DurationVar(&cfg.Duration, "duration", bench.DefaultDuration, "how long to send")
	fs.IntVar(&cfg.Size, "size", bench.DefaultSize, "message text bytes")
	fs.DurationVar(&cfg.Drain, "drain", bench.DefaultDrain, "after sending, wait at most this long for PUBACKs and deliveries still outstanding")
	fs.IntVar(&cfg.ReceiveMaximum, "receive-max", 0, "Receive Maximum to announce in CONNECT; 0: none (MQTT's default, 65535). Non-zero values can deadlock mochi v2.7.9 (docs/BENCHMARKS.md)")
	asJSON := fs.Bool("json", false, "print one JSON summary per target, one per line")
	ref := fs.String("ref", "", `"bare": also run the load against a bare mochi broker started in-process on a free loopback port`)
	refOnly := fs.Bool("ref-only", false, "run only against the bare broker (no mqimd needed)")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: mqim bench 1to1 [flags]

Sender i (user bs{i}) publishes QoS 1 sends to receiver i (user br{i}), whose
connection is subscribed to its inbox. Prints messages acknowledged and
delivered per second, send-to-deliver latency, errors, lost and duplicate
messages. With --ref bare the same load also runs against a bare mochi broker
in this process, the ceiling. Progress goes to stderr once per second.

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))
	}
	if *ref != "" && *ref != "bare" {
		return fmt.Errorf(`bench: --ref %q: the only reference is "bare"`, *ref)
	}
	if *secretFile != "" {
		b, err := os.ReadFile(*secretFile)
		if err != nil {
			return fmt.Errorf("read secret: %w", err)
		}
		*secret = strings.TrimSpace(string(b))
	}
	var nodes []string
	for _, sv := range strings.Split(*server, ",") {
		addr, err := bench.ParseServer(strings.TrimSpace(sv))
		if err != nil {
			return fmt.Errorf("bench: --server: %w", err)
		}
		nodes = append(nodes, addr)
	}
	if *cross && len(nodes) < 2 {
		return errors.New("bench: --cross needs at least two --server addresses")
	}
	if !*refOnly && *secret == "" {
		return errors.New("bench: give --secret or --secret-file (or --ref-only)")
	}
	if !*quiet {
		cfg.Progress = os.Stderr
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var sums []*bench.Summary
	report := func(s *bench.Summary) error {
		sums = append(sums, s)
		if *asJSON {
			return bench.WriteJSON(os.Stdout, s)
		}
		return nil
	}
	if !*refOnly {
		t := bench.MQIMD(nodes[0], []byte(*secret))
		t.Nodes, t.Cross = nodes, *cross
		s, err := bench.Run1to1(ctx, t, cfg)
		if err != nil {
			return err
		}
		if err := report(s); err != nil {
			return err
		}
	}
	if (*ref == "bare" || *refOnly) && ctx.Err() == nil {
		s, err := runBare(ctx, cfg)
		if err != nil {
			return err
		}
		if err := report(s); err != nil {
			return err
		}
	}
	if *asJSON {
		return nil
	}
	return bench.WriteTable(os.Stdout, sums)
}

// runBare runs the load against a bare broker that lives only for the run.
func runBare(ctx context.Context, cfg bench.Config) (*bench.Summary, error) {
	b, err := bench.StartBare("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := b.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "mqim:", err)
		}
	}()
	if cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, "bare mochi broker on %s\n", b.Addr())
	}
	// Let a previous run's connections and garbage settle first.
	select {
	case <-ctx.Done():
	case <-time.After(500 * time.Millisecond):
	}
	return bench.Run1to1(ctx, b.Target(), cfg)
}
