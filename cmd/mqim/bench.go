package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mqim/mqim/clients/bench"
)

const benchUsage = `Usage: mqim bench SCENARIO [flags]

Scenarios:
  1to1    N senders, each sending to its own receiver (users bs{i} → br{i})
  sync    offline sync pull: N events sent to an offline device, then pulled
  conns   idle connections: the server's memory per connection
  group   group fan-out: one sender, a group of --members members (users bg{i})
  push    offline push: 1:1 messages to --recipients offline users registered for
          webhook push, received here; the cost to the send rate, push on and off

  report  build the tables and SVG charts of docs/BENCHMARKS.md from a results file

Run "mqim bench SCENARIO --help" for the flags.
`

// benchCmd runs a load scenario against mqimd and/or reference brokers.
func benchCmd(args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(os.Stderr, benchUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return errors.New("bench: no scenario given")
	}
	switch args[0] {
	case "1to1", "sync", "conns", "group", "push":
		return benchScenario(args[0], args[1:])
	case "report":
		return benchReport(args[1:])
	}
	fmt.Fprint(os.Stderr, benchUsage)
	return fmt.Errorf("bench: unknown scenario %q", args[0])
}

const scenarioHelp = `Usage: mqim bench %s [flags]

%s
Every scenario runs against mqimd (--server) and, with --ref, against
reference brokers in the same invocation: "bare" (a mochi broker with no
hooks: the mqim-bare command, beside mqim or on PATH, started by this one) and "mosquitto" (started by this command
when the mosquitto binary is installed; skipped with a warning otherwise).
--ref-only runs the references alone. Progress goes to stderr once per
second; --json prints one JSON summary per target and line; --out appends
them to a results file for "mqim bench report".

`

var scenarioDoc = map[string]string{
	"1to1": `Sender i (user bs{i}) publishes QoS 1 sends to receiver i (user br{i}), whose
connection is subscribed to its inbox. Prints messages acknowledged and
delivered per second, send-to-deliver latency, errors, lost and duplicate
messages.
`,
	"sync": `A device of a fresh user connects once and goes offline; --senders
connections (--inflight publishes in flight each) send it --events messages;
the device reconnects and pulls them all: on mqimd with the sync RPC (pages
of 1,000), on the references by resuming its persistent MQTT session. The
pull is timed; p50/p99 are the times until half and 99 % of the events had
arrived. Every event is checked: lost, duplicates, contiguous seqs.
`,
	"group": `User bg0 creates a group of --members members (bg0…bg{M-1}; group.create and
group.add in chunks of 1,000), every member has one device subscribed to its
inbox and, when the group fans out on read, to the group topic. One sender
connection of bg0 sends QoS 1 messages into the group one at a time (paced
by --rate). msgs_per_sec is deliveries per second (a message times the
members that got it), from the first send to the last delivery; p50/p99 are
per message, from send to its delivery to the last member. Every member must
get every message once, in order: lost, duplicates, out_of_order. On the
references every member subscribes to one topic and the sender publishes there.
`,
	"push": `--recipients users bp{i} each register one device for webhook push and
disconnect; as many users bq{i} connect once and register nothing. mqimd must
run with --push-webhook-url pointing at --webhook-listen (http://ADDR/push) and
--push-webhook-secret-file = --webhook-secret-file; this command receives the
notifications and checks their signatures. First a run paced at --rate: sender
connections bs{i} send 1:1 messages round robin to the bp users (no device
online: each is pushed at once); p50/p99 are from the publish to the provider's
request, pushes/s from the first send to the last push. Then --rounds pairs of
runs as fast as possible (--cost-duration each), alternating push on (the bp
users) and push off (the bq users: nothing is queued or sent): the median send
rates give push's cost. The references do not push: --ref is refused.
`,
	"conns": `Opens --conns idle MQTT 5 connections (each subscribed to its inbox) from
several 127.0.0.x source addresses and reports the server's resident memory
per connection: read before and after (--settle later) from mqimd's
/metrics (--metrics) or /proc/PID (--pid). The references run as child
processes, so their memory is their own. Raise the open-file limit
(ulimit -n) of both processes above --conns.
`,
}

func benchScenario(scenario string, args []string) error {
	fs := flag.NewFlagSet("mqim bench "+scenario, flag.ContinueOnError)
	server := fs.String("server", "mqtt://127.0.0.1:1883", "mqimd's MQTT address; several, comma-separated, for a cluster (connections spread over them)")
	secret := fs.String("secret", os.Getenv("MQIM_JWT_SECRET"), "mqimd's HS256 secret, to mint tokens (or MQIM_JWT_SECRET)")
	secretFile := fs.String("secret-file", "", "read the secret from this file (mqimd's <data-dir>/jwt-secret)")
	asJSON := fs.Bool("json", false, "print one JSON summary per target, one per line")
	ref := fs.String("ref", "", `reference brokers to run the same load against, comma-separated: "bare", "mosquitto"`)
	refOnly := fs.Bool("ref-only", false, "run only against the references (no mqimd needed); --ref defaults to bare")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	out := fs.String("out", "", "append the summaries (JSON lines) to this results file")
	var cfg bench.Config
	var pc bench.PushConfig
	var listen, webhookSecret string
	var cc bench.ConnsConfig
	var cross bool
	var metrics string
	var pid int
	switch scenario {
	case "1to1":
		fs.BoolVar(&cross, "cross", false, "with several --server: connect each receiver to another node than its sender")
		fs.IntVar(&cfg.Senders, "senders", bench.DefaultSenders, "sending connections, each with its own receiver connection")
		fs.IntVar(&cfg.Inflight, "inflight", bench.DefaultInflight, "QoS 1 publishes in flight per sender connection")
		fs.Float64Var(&cfg.Rate, "rate", 0, "total messages per second, paced; 0: as fast as possible")
		fs.DurationVar(&cfg.Duration, "duration", bench.DefaultDuration, "how long to send")
		fs.IntVar(&cfg.Size, "size", bench.DefaultSize, "message text bytes")
		fs.DurationVar(&cfg.Drain, "drain", bench.DefaultDrain, "after sending, wait at most this long for PUBACKs and deliveries still outstanding")
		fs.IntVar(&cfg.ReceiveMaximum, "receive-max", 0, "Receive Maximum to announce in CONNECT; 0: none (MQTT's default, 65535)")
	case "sync":
		fs.IntVar(&cfg.Messages, "events", bench.DefaultSyncEvents, "events the offline device misses")
		fs.IntVar(&cfg.Senders, "senders", 4, "connections sending the events")
		fs.IntVar(&cfg.Inflight, "inflight", 32, "QoS 1 publishes in flight per sending connection")
		fs.IntVar(&cfg.Size, "size", bench.DefaultSize, "message text bytes")
		fs.DurationVar(&cfg.Drain, "drain", 30*time.Second, "references: wait at most this long for the replay")
	case "group":
		fs.IntVar(&cfg.Members, "members", bench.DefaultMembers, "members of the group, each with one device")
		fs.Float64Var(&cfg.Rate, "rate", 0, "messages per second, paced; 0: as fast as possible (one in flight)")
		fs.DurationVar(&cfg.Duration, "duration", bench.DefaultDuration, "how long to send")
		fs.IntVar(&cfg.Messages, "messages", 0, "send this many messages instead of running for --duration")
		fs.IntVar(&cfg.Size, "size", bench.DefaultSize, "message text bytes")
		fs.DurationVar(&cfg.Drain, "drain", 30*time.Second, "after sending, wait at most this long for deliveries still outstanding")
	case "push":
		fs.IntVar(&pc.Recipients, "recipients", bench.DefaultPushRecipients, "offline recipients registered for push (and as many without)")
		fs.IntVar(&cfg.Senders, "senders", bench.DefaultSenders, "sending connections")
		fs.IntVar(&cfg.Inflight, "inflight", 8, "QoS 1 publishes in flight per sender connection")
		fs.Float64Var(&cfg.Rate, "rate", bench.DefaultPushRate, "the paced run's total messages per second")
		fs.DurationVar(&cfg.Duration, "duration", bench.DefaultDuration, "how long the paced run sends")
		fs.DurationVar(&pc.CostDuration, "cost-duration", bench.DefaultDuration, "how long each unpaced run (push on, push off) sends")
		fs.IntVar(&pc.Rounds, "rounds", bench.DefaultPushRounds, "unpaced runs with push on and off, alternating; 0: none")
		fs.IntVar(&cfg.Size, "size", bench.DefaultSize, "message text bytes (at most 256 reach the notification)")
		fs.DurationVar(&cfg.Drain, "drain", 60*time.Second, "after sending, wait at most this long for pushes still outstanding")
		fs.StringVar(&listen, "webhook-listen", "127.0.0.1:18990", "address the webhook receiver listens on")
		fs.StringVar(&webhookSecret, "webhook-secret-file", "", "file with the webhook signing secret (mqimd's --push-webhook-secret-file)")
	case "conns":
		fs.IntVar(&cc.Conns, "conns", bench.DefaultConns, "idle connections to open")
		fs.DurationVar(&cc.Settle, "settle", bench.DefaultSettle, "wait this long after connecting before reading the memory")
		fs.IntVar(&cc.SourceAddrs, "sources", bench.DefaultSourceAddrs, "spread the connections over this many source addresses 127.0.0.2… (loopback targets)")
		fs.StringVar(&metrics, "metrics", "", "mqimd's metrics URL, e.g. http://127.0.0.1:8080/metrics (or --pid)")
		fs.IntVar(&pid, "pid", 0, "mqimd's process id, to read its memory from /proc (or --metrics)")
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), scenarioHelp, scenario, scenarioDoc[scenario])
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))
	}
	refs, err := parseRefs(*ref, *refOnly)
	if err != nil {
		return err
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
	if cross && len(nodes) < 2 {
		return errors.New("bench: --cross needs at least two --server addresses")
	}
	if !*refOnly && *secret == "" {
		return errors.New("bench: give --secret or --secret-file (or --ref-only)")
	}
	if scenario == "push" && (len(refs) > 0 || *refOnly) {
		return errors.New("bench push: the references do not push; run it without --ref")
	}
	if !*quiet {
		cfg.Progress = os.Stderr
		cc.Progress = os.Stderr
	}
	runOne := func(ctx context.Context, t bench.Target) (*bench.Summary, error) {
		switch scenario {
		case "sync":
			return bench.RunSync(ctx, t, cfg)
		case "conns":
			return bench.RunConns(ctx, t, cc)
		case "group":
			return bench.RunGroup(ctx, t, cfg)
		}
		return bench.Run1to1(ctx, t, cfg)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var sums []*bench.Summary
	var refErr error
	report := func(s *bench.Summary) error {
		sums = append(sums, s)
		if *asJSON {
			return bench.WriteJSON(os.Stdout, s)
		}
		return nil
	}
	if scenario == "push" {
		if webhookSecret == "" {
			return errors.New("bench push: give --webhook-secret-file (mqimd's --push-webhook-secret-file)")
		}
		b, err := os.ReadFile(webhookSecret)
		if err != nil {
			return fmt.Errorf("bench push: %w", err)
		}
		rx, err := bench.StartPushReceiver(listen, bytes.TrimSpace(b)) // as mqimd reads them
		if err != nil {
			return err
		}
		defer rx.Close()
		pc.Config, pc.Receiver = cfg, rx
		if pc.Rounds == 0 {
			pc.Rounds = -1
		}
		t := bench.MQIMD(nodes[0], []byte(*secret))
		t.Nodes = nodes
		ps, err := bench.RunPush(ctx, t, pc)
		for _, s := range ps {
			if err := report(s); err != nil {
				return err
			}
		}
		if err != nil {
			return err
		}
		if n := rx.Refused(); n > 0 {
			fmt.Fprintf(os.Stderr, "mqim bench: %d webhook posts refused (bad signature or body)\n", n)
		}
	} else if !*refOnly {
		t := bench.MQIMD(nodes[0], []byte(*secret))
		t.Nodes, t.Cross = nodes, cross
		switch {
		case metrics != "":
			t.Memory = bench.MetricsMemory(metrics)
		case pid != 0:
			t.Memory = bench.ProcMemory(pid)
		}
		s, err := runOne(ctx, t)
		if err != nil {
			return err
		}
		if err := report(s); err != nil {
			return err
		}
	}
	for _, r := range refs {
		if ctx.Err() != nil {
			break
		}
		s, err := runRef(ctx, r, cfg.Progress != nil, runOne)
		if errors.Is(err, bench.ErrNoMosquitto) {
			fmt.Fprintln(os.Stderr, "mqim bench: skipping the Mosquitto reference:", err)
			continue
		}
		if err != nil {
			// The other targets' results are still reported and kept.
			fmt.Fprintln(os.Stderr, "mqim bench:", err)
			refErr = errors.Join(refErr, err)
			continue
		}
		if err := report(s); err != nil {
			return err
		}
	}
	if *out != "" {
		if err := bench.AppendResults(*out, "mqim bench "+scenario+" "+strings.Join(redactSecret(args), " "), sums); err != nil {
			return err
		}
	}
	if !*asJSON {
		if err := bench.WriteTable(os.Stdout, sums); err != nil {
			return err
		}
	}
	return refErr
}

func parseRefs(s string, refOnly bool) ([]string, error) {
	if s == "" && refOnly {
		s = "bare"
	}
	var refs []string
	for _, r := range strings.Split(s, ",") {
		switch r = strings.TrimSpace(r); r {
		case "":
		case "bare", "mosquitto":
			if !slices.Contains(refs, r) {
				refs = append(refs, r)
			}
		default:
			return nil, fmt.Errorf(`bench: --ref %q: the references are "bare" and "mosquitto"`, r)
		}
	}
	return refs, nil
}

// redactSecret drops --secret's value from the command line kept in a
// results file, and the flags that do not change the load (--out, --quiet,
// --json).
func redactSecret(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--out" || a == "-out":
			i++
		case strings.HasPrefix(a, "--out=") || strings.HasPrefix(a, "-out=") ||
			a == "--quiet" || a == "-quiet" || a == "--json" || a == "-json":
		case a == "--secret" || a == "-secret":
			out = append(out, a, "…")
			i++
		case strings.HasPrefix(a, "--secret=") || strings.HasPrefix(a, "-secret="):
			out = append(out, a[:strings.Index(a, "=")+1]+"…")
		default:
			out = append(out, a)
		}
	}
	return out
}

// runRef runs the load against a reference broker that lives only for the
// run, in a child process: the bare broker (mqim-bare) or Mosquitto.
func runRef(ctx context.Context, ref string, progress bool,
	runOne func(context.Context, bench.Target) (*bench.Summary, error)) (*bench.Summary, error) {
	var (
		t     bench.Target
		close func() error
	)
	switch {
	case ref == "mosquitto":
		p, err := bench.StartMosquitto()
		if err != nil {
			return nil, err
		}
		t, close = p.Target(), p.Close
	default:
		exe, err := bareCommand()
		if err != nil {
			return nil, err
		}
		p, err := bench.StartBareProcess(exe)
		if err != nil {
			return nil, err
		}
		t, close = p.Target(), p.Close
	}
	defer func() {
		if err := close(); err != nil {
			fmt.Fprintln(os.Stderr, "mqim:", err)
		}
	}()
	if progress {
		fmt.Fprintf(os.Stderr, "%s broker on %s\n", t.Name, t.Addr)
	}
	// Let a previous run's connections and garbage settle first.
	select {
	case <-ctx.Done():
	case <-time.After(500 * time.Millisecond):
	}
	return runOne(ctx, t)
}

// benchReport builds the generated section of docs/BENCHMARKS.md.
func benchReport(args []string) error {
	fs := flag.NewFlagSet("mqim bench report", flag.ContinueOnError)
	in := fs.String("in", "docs/bench/results.jsonl", "results file written by mqim bench --out")
	doc := fs.String("doc", "docs/BENCHMARKS.md", "Markdown file whose section between "+bench.BeginMarker+" and "+bench.EndMarker+" is replaced; \"-\": print the section")
	charts := fs.String("charts", "docs/bench", "directory for the SVG charts")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: mqim bench report [flags]

Reads a results file (mqim bench SCENARIO --out FILE appends to it) and
writes, for the latest run of each scenario, load and target, Markdown tables
and one SVG bar chart per scenario.

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err := os.Open(*in)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	results, err := bench.ReadResults(f)
	f.Close()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*charts, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	link := *charts
	if *doc != "-" {
		if rel, err := filepath.Rel(filepath.Dir(*doc), *charts); err == nil {
			link = filepath.ToSlash(rel)
		}
	}
	var section strings.Builder
	if err := bench.Report(&section, results, *charts, link); err != nil {
		return err
	}
	if *doc == "-" {
		_, err := fmt.Print(section.String())
		return err
	}
	old, err := os.ReadFile(*doc)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	updated, err := bench.Replace(old, []byte(section.String()))
	if err != nil {
		return err
	}
	return os.WriteFile(*doc, updated, 0o644)
}

// bareCommand finds mqim-bare, the bare-broker reference: beside this
// binary, else on PATH. It is a command of its own so that mqim, the chat
// client, does not link the MQTT server.
func bareCommand() (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "mqim-bare")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("mqim-bare"); err == nil {
		return p, nil
	}
	return "", errors.New("bench: --ref bare needs the mqim-bare command beside mqim or on PATH: go build -o . ./cmd/mqim-bare")
}
