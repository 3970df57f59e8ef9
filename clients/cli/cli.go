// Package cli is the chat part of the mqim command line: send, listen, sync,
// history and conversations, on top of the Go SDK (clients/sdk). cmd/mqim
// is a thin main around it.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mqim/mqim/clients/sdk"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
)

// Commands are the subcommands this package runs.
var Commands = []string{"send", "listen", "sync", "history", "conversations", "group", "read", "typing", "download", "user",
	"contact", "recall", "presence", "push"}

// Exit codes besides 0 and 1 (any other failure).
const (
	ExitUsage   = 2 // bad flags or arguments
	ExitTimeout = 3 // listen: not enough events before --timeout
)

// ExitError carries the exit code a failure should end the process with.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Usage describes the commands of this package, for the main usage text.
const Usage = `  send           send a message:          mqim send --to USER TEXT… | --group GID TEXT… | --to USER --file PATH [CAPTION…]
  listen         print inbox events:      mqim listen [--count N] [--timeout D] [--group GID]
  sync           print inbox events after a seq: mqim sync [--since SEQ]
  history        print a conversation:    mqim history --with USER | --group GID
  read           mark as read:            mqim read --with USER | --group GID [--seq N]   (default: up to the latest)
  typing         tell a user you type:    mqim typing [--stop] USER
  group          manage groups:           mqim group create --name NAME --members U1,U2,…  (prints the group id)
                                          mqim group add|remove GID USER;  mqim group leave|info GID
  conversations  list conversations with unread counts
  contact        contacts and blocking:   mqim contact add|remove|block|unblock USER, mqim contact list
  recall         recall a sent message:   mqim recall MSGID
  presence       who is online:           mqim presence USER…
  push           offline push devices:    mqim push register --client-id ID --platform apns --device-token T --app BUNDLE [--env sandbox]
                                          mqim push unregister|list --client-id ID
  download       fetch an attachment:     mqim download URL|MEDIA-ID [-o FILE|-]
  user           create users (admin):    mqim user create USER…   (an admin --token, or --secret/--secret-file)
`

// GlobalUsage describes the flags every command takes and the exit status.
const GlobalUsage = `Global flags (before or after the command):
  --server URL       mqtt://host:port or ws://host:port/mqtt (env MQIM_SERVER; default mqtt://localhost:1883)
  --user U           user id (env MQIM_USER); default: the subject of --token
  --token T          token of the user (env MQIM_TOKEN), or
  --secret S         the server's secret (env MQIM_JWT_SECRET) or --secret-file F, to mint a token for --user
  --json             print one JSON object per line
  --connect-timeout  how long to wait for the server to answer (default 10s; a refused connection fails at once)

Exit status: 0 ok, 1 error, 2 bad usage, 3 listen timed out.
`

// globals are the flags every command takes.
type globals struct {
	server, user, token, secret, secretFile string
	json                                    bool
	connectTimeout                          time.Duration
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.server, "server", g.server, "server URL: mqtt://host:port or ws://host:port/mqtt")
	fs.StringVar(&g.user, "user", g.user, "user id (default: the subject of --token)")
	fs.StringVar(&g.token, "token", g.token, "token of the user (or env MQIM_TOKEN)")
	fs.StringVar(&g.secret, "secret", g.secret, "server secret, to mint a token for --user (development)")
	fs.StringVar(&g.secretFile, "secret-file", g.secretFile, "file holding the server secret (mqimd's <data-dir>/jwt-secret)")
	fs.BoolVar(&g.json, "json", g.json, "one JSON object per line")
	fs.DurationVar(&g.connectTimeout, "connect-timeout", g.connectTimeout, "how long to wait for the server to answer (a refused connection fails at once)")
}

func defaultGlobals() globals {
	g := globals{
		server:         os.Getenv("MQIM_SERVER"),
		user:           os.Getenv("MQIM_USER"),
		token:          os.Getenv("MQIM_TOKEN"),
		secret:         os.Getenv("MQIM_JWT_SECRET"),
		connectTimeout: 10 * time.Second,
	}
	if g.server == "" {
		g.server = "mqtt://localhost:1883"
	}
	return g
}

// env is what a command runs with.
type env struct {
	g      globals
	stdout io.Writer
	stderr io.Writer
}

// Run runs a command line: global flags, then one of Commands and its
// flags and arguments (global flags may also follow the command). ctx
// cancels it (e.g. on SIGINT).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	g := defaultGlobals()
	pre := flag.NewFlagSet("mqim", flag.ContinueOnError)
	pre.SetOutput(stderr)
	g.register(pre)
	if err := pre.Parse(args); err != nil {
		return usageErr(err)
	}
	args = pre.Args()
	if len(args) == 0 {
		return usageErr(errors.New("no command given"))
	}
	e := &env{g: g, stdout: stdout, stderr: stderr}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "send":
		return e.send(ctx, rest)
	case "listen":
		return e.listen(ctx, rest)
	case "sync":
		return e.sync(ctx, rest)
	case "history":
		return e.history(ctx, rest)
	case "conversations":
		return e.conversations(ctx, rest)
	case "group":
		return e.group(ctx, rest)
	case "read":
		return e.read(ctx, rest)
	case "typing":
		return e.typing(ctx, rest)
	case "download":
		return e.download(ctx, rest)
	case "user":
		return e.user(ctx, rest)
	case "contact":
		return e.contact(ctx, rest)
	case "recall":
		return e.recall(ctx, rest)
	case "presence":
		return e.presence(ctx, rest)
	case "push":
		return e.push(ctx, rest)
	}
	return usageErr(fmt.Errorf("unknown command %q", cmd))
}

// Message is err as the command prints it after its one "mqim: ". The SDK
// prefixes each of its errors with "mqim: " (Go's habit for a package's
// errors), and the prefixes pile up as the commands wrap them.
func Message(err error) string { return strings.ReplaceAll(err.Error(), "mqim: ", "") }

func usageErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &ExitError{Code: ExitUsage, Err: err}
}

// flags makes the flag set of a command, with the global flags.
func (e *env) flags(name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet("mqim "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	e.g.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: mqim %s [flags] %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags anywhere among the arguments and returns the others.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageErr(err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// dial connects as the global flags say. It fails at once when the server
// cannot be reached (FailFast): a person is waiting.
func (e *env) dial(ctx context.Context, cfg sdk.Config) (*sdk.Client, error) {
	g := e.g
	user, tok, err := e.credentials(authtoken.RoleUser)
	if err != nil {
		return nil, err
	}
	cfg.Server, cfg.User, cfg.Token, cfg.FailFast = g.server, user, tok, true
	if _, err := sdk.ParseServer(cfg.Server); err != nil {
		return nil, usageErr(err)
	}
	dctx, cancel := context.WithTimeout(ctx, g.connectTimeout)
	defer cancel()
	c, err := sdk.Dial(dctx, cfg)
	switch {
	case errors.Is(err, sdk.ErrBadCredentials):
		return nil, fmt.Errorf("the server refused the token of user %q (bad, expired, or minted with another secret): get a new one with 'mqim token' or pass --secret", user)
	case err != nil && !errors.Is(err, sdk.ErrClientIDInUse) && ctx.Err() == nil:
		return nil, fmt.Errorf("%w; is mqimd running at %s? (check --server)", err, g.server)
	case err != nil:
		return nil, err
	}
	return c, nil
}

// credentials returns the user and its token: --token (the user, when
// --user is not given, is its subject), or one minted with role from
// --secret or --secret-file for --user.
func (e *env) credentials(role string) (user, tok string, err error) {
	g := e.g
	if g.token != "" {
		if g.user != "" {
			return g.user, g.token, nil
		}
		// Unverified: only the server can check the token; this only
		// saves typing the user it is for.
		var c jwt.RegisteredClaims
		if _, _, err := jwt.NewParser().ParseUnverified(g.token, &c); err != nil || c.Subject == "" {
			return "", "", usageErr(errors.New("give --user (or set MQIM_USER): the token names no user"))
		}
		return c.Subject, g.token, nil
	}
	if g.user == "" {
		return "", "", usageErr(errors.New("give --user (or set MQIM_USER) with --secret/--secret-file, or a --token"))
	}
	secret := g.secret
	if g.secretFile != "" {
		b, err := os.ReadFile(g.secretFile)
		if err != nil {
			return "", "", fmt.Errorf("read secret: %w", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	if secret == "" {
		return "", "", usageErr(errors.New("give --token (or set MQIM_TOKEN), or --secret/--secret-file to mint one"))
	}
	if tok, err = authtoken.Mint([]byte(secret), g.user, role, time.Hour); err != nil {
		return "", "", err
	}
	return g.user, tok, nil
}

// out prints v as JSON, or line as text.
func (e *env) out(v any, line string) error {
	if e.g.json {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "%s\n", b)
		return err
	}
	_, err := fmt.Fprintln(e.stdout, line)
	return err
}

func (e *env) send(ctx context.Context, args []string) error {
	fs := e.flags("send", "--to USER TEXT… | --group GID TEXT… | --to USER --file PATH [CAPTION…]")
	to := fs.String("to", "", "recipient user id")
	group := fs.String("group", "", "group id (g:…), instead of --to")
	mentions := fs.String("mentions", "", "group messages: comma-separated members to mention, or * for everyone")
	typ := fs.String("type", protocol.TypeText, `message type: "text", or "custom" with TEXT a JSON object body`)
	cmid := fs.String("cmid", "", "client message id (default: a new ULID); repeat one to resend idempotently")
	timeout := fs.Duration("timeout", 30*time.Second, "give up if the server has not acknowledged by then")
	file := fs.String("file", "", "send this file as an attachment (uploaded first; TEXT, if any, is its caption)")
	httpBase := httpFlag(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	switch {
	case (*to == "") == (*group == ""):
		return usageErr(errors.New("send: give --to USER or --group GID"))
	case *mentions != "" && *group == "":
		return usageErr(errors.New("send: --mentions is for --group messages"))
	case len(pos) == 0 && *file == "":
		return usageErr(errors.New("send: give the text to send"))
	}
	text := strings.Join(pos, " ")
	var body map[string]any
	switch {
	case *file != "":
		// Built after dialling, once the file is uploaded: media.go.
	case *typ == protocol.TypeText:
		body = map[string]any{"text": text}
	default:
		if err := json.Unmarshal([]byte(text), &body); err != nil || body == nil {
			return usageErr(fmt.Errorf("send: --type %s needs a JSON object body: %v", *typ, err))
		}
	}
	c, err := e.dial(ctx, sdk.Config{NoEvents: true})
	if err != nil {
		return err
	}
	defer c.Close()
	sctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if *file != "" {
		if *typ, body, err = e.attachment(sctx, c, *file, *httpBase, text); err != nil {
			return err
		}
	}
	var opts []sdk.SendOption
	if *cmid != "" {
		opts = append(opts, sdk.WithCmid(*cmid))
	}
	if *mentions != "" {
		opts = append(opts, sdk.WithMentions(splitList(*mentions)...))
	}
	var sent sdk.Sent
	if *group != "" {
		sent, err = c.SendGroup(sctx, *group, *typ, body, opts...)
	} else {
		sent, err = c.Send(sctx, *to, *typ, body, opts...)
	}
	if err != nil {
		return fmt.Errorf("send to %s: %w%s", *to+*group, err, hint(err))
	}
	return e.out(struct {
		ID   string `json:"id"`
		Conv string `json:"conv"`
		Seq  int64  `json:"seq"`
		Cmid string `json:"cmid"`
	}{fmt.Sprint(sent.ID), sent.Conv, sent.Seq, sent.Cmid},
		fmt.Sprintf("sent id=%d conv=%s seq=%d", sent.ID, sent.Conv, sent.Seq))
}

// hint says what to do about a refusal.
func hint(err error) string {
	switch {
	case errors.Is(err, sdk.ErrUnknownUser):
		return " (that user has never connected: it exists once it connects, or once an admin creates it: mqim user create)"
	case errors.Is(err, sdk.ErrCmidConflict):
		return " (that --cmid was used for another message)"
	case errors.Is(err, sdk.ErrNotMember):
		return " (you are not in that conversation)"
	case errors.Is(err, sdk.ErrUnknownGroup):
		return " (no such group: group ids look like g:123…)"
	case errors.Is(err, sdk.ErrForbidden):
		return " (only the group's admins and owner may do that)"
	case errors.Is(err, sdk.ErrMuted):
		return " (an admin muted you in that group)"
	case errors.Is(err, sdk.ErrBlocked):
		return " (the recipient blocked you)"
	case errors.Is(err, sdk.ErrNotAllowed):
		return " (only the sender may, within the recall window, or an admin of the group)"
	case errors.Is(err, sdk.ErrNotFound):
		return " (no such message in your conversations)"
	}
	return ""
}

func (e *env) listen(ctx context.Context, args []string) error {
	fs := e.flags("listen", "")
	count := fs.Int("count", 0, "exit after this many events (0: never)")
	timeout := fs.Duration("timeout", 0, "exit with status 3 if --count events have not arrived by then (0: wait forever)")
	since := fs.Int64("since", -1, "print stored events after this inbox seq first (default: only new events)")
	cursor := fs.String("cursor", "", "keep the cursor in this file and continue from it")
	group := fs.String("group", "", "also follow this group's topic (a group that fans out on read)")
	groupAfter := fs.Int64("group-after", -1, "with --group: print the group's events after this conv seq (default: only new ones)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *groupAfter >= 0 && *group == "" {
		return usageErr(errors.New("listen: --group-after needs --group"))
	}
	cfg := sdk.Config{SkipBacklog: true}
	switch {
	case *cursor != "":
		cfg.Cursor, cfg.SkipBacklog = sdk.FileCursor{Path: *cursor}, false
	case *since >= 0:
		cfg.Cursor, cfg.SkipBacklog = sdk.NewMemoryCursor(*since), false
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	c, err := e.dial(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil && *timeout > 0 {
			return &ExitError{Code: ExitTimeout, Err: err}
		}
		return err
	}
	defer c.Close()
	var groupEvents <-chan sdk.Event
	if *group != "" {
		after := *groupAfter
		if after < 0 {
			info, err := c.Group(ctx, *group)
			if err != nil {
				return fmt.Errorf("listen: group %s: %w%s", *group, err, hint(err))
			}
			after = info.LastSeq
		}
		if groupEvents, err = c.FollowGroup(ctx, *group, after); err != nil {
			return fmt.Errorf("listen: follow %s: %w%s", *group, err, hint(err))
		}
	}
	n := 0
	caughtUp := c.CaughtUp()
	for *count == 0 || n < *count {
		select {
		case <-caughtUp:
			caughtUp = nil
			fmt.Fprintf(e.stderr, "listening as %s on %s (inbox seq %d)\n", c.User(), e.g.server, c.Cursor())
		case ev, ok := <-c.Events():
			if !ok {
				return fmt.Errorf("listen: %w", c.Err())
			}
			if err := e.event(ev); err != nil {
				return err
			}
			n++
		case ev, ok := <-groupEvents:
			if !ok {
				if ctx.Err() == nil {
					return fmt.Errorf("listen: the group stream of %s ended", *group)
				}
				groupEvents = nil
				continue
			}
			if ev.Kind == sdk.KindError {
				return fmt.Errorf("listen: group %s: %v", *group, ev.Error)
			}
			if err := e.event(ev); err != nil {
				return err
			}
			n++
		case <-ctx.Done():
			if *timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return &ExitError{Code: ExitTimeout, Err: fmt.Errorf("listen: %d of %d events within %v", n, *count, *timeout)}
			}
			if *count > 0 {
				return fmt.Errorf("listen: interrupted after %d of %d events", n, *count)
			}
			return nil // interrupted: the normal end of listening
		}
	}
	return nil
}

func (e *env) sync(ctx context.Context, args []string) error {
	fs := e.flags("sync", "")
	since := fs.Int64("since", 0, "print events after this inbox seq")
	limit := fs.Int("limit", 0, "print at most this many events (0: all)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	c, err := e.dial(ctx, sdk.Config{NoEvents: true})
	if err != nil {
		return err
	}
	defer c.Close()
	after, n := *since, 0
	for {
		page := 1000
		if *limit > 0 {
			page = min(page, *limit-n)
		}
		res, err := c.Sync(ctx, after, page)
		if err != nil {
			return fmt.Errorf("sync: %w", err)
		}
		for _, ev := range res.Events {
			if err := e.event(ev); err != nil {
				return err
			}
			after = ev.Seq
			n++
		}
		if !res.HasMore || len(res.Events) == 0 || (*limit > 0 && n >= *limit) {
			if !e.g.json {
				fmt.Fprintf(e.stdout, "latest seq %d\n", res.Latest)
			}
			return nil
		}
	}
}

func (e *env) history(ctx context.Context, args []string) error {
	fs := e.flags("history", "--with USER | --group GID")
	with := fs.String("with", "", "the other user of the direct conversation")
	conv := fs.String("conv", "", "conversation id (instead of --with)")
	group := fs.String("group", "", "group id (g:…), instead of --with")
	before := fs.Int64("before", 0, "only messages with a seq below this")
	after := fs.Int64("after", 0, "only messages with a seq above this")
	limit := fs.Int("limit", 50, "at most this many messages (1–200)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *group != "" {
		if *conv != "" {
			return usageErr(errors.New("history: give --group or --conv, not both"))
		}
		*conv = *group
	}
	if (*with == "") == (*conv == "") {
		return usageErr(errors.New("history: give --with USER, --group GID or --conv ID"))
	}
	c, err := e.dial(ctx, sdk.Config{NoEvents: true})
	if err != nil {
		return err
	}
	defer c.Close()
	res, err := c.History(ctx, sdk.HistoryRequest{With: *with, Conv: *conv, Before: *before, After: *after, Limit: *limit})
	if err != nil {
		return fmt.Errorf("history: %w%s", err, hint(err))
	}
	for _, m := range res.Messages {
		if err := e.out(m, "#"+fmt.Sprint(m.Seq)+" "+formatMessage(&m)); err != nil {
			return err
		}
	}
	if res.HasMore && !e.g.json {
		fmt.Fprintln(e.stderr, "(more: page with --before/--after)")
	}
	return nil
}

func (e *env) conversations(ctx context.Context, args []string) error {
	fs := e.flags("conversations", "")
	limit := fs.Int("limit", 0, "at most this many conversations (0: the server's default)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	c, err := e.dial(ctx, sdk.Config{NoEvents: true})
	if err != nil {
		return err
	}
	defer c.Close()
	res, err := c.Conversations(ctx, *limit)
	if err != nil {
		return fmt.Errorf("conversations: %w", err)
	}
	for _, cv := range res.Conversations {
		who := cv.Peer
		if cv.Kind == "group" {
			who = fmt.Sprintf("group %q", cv.Name)
		}
		line := fmt.Sprintf("%s  %s  %d unread  last #%d", cv.Conv, who, cv.Unread, cv.LastSeq)
		if cv.Last != nil {
			line += "  " + formatMessage(cv.Last)
		}
		if err := e.out(cv, line); err != nil {
			return err
		}
	}
	if !e.g.json {
		fmt.Fprintf(e.stdout, "%d unread\n", res.TotalUnread)
	}
	return nil
}

// event prints one inbox event.
func (e *env) event(ev sdk.Event) error { return e.out(ev, eventLine(ev)) }

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// group runs "mqim group create|add|remove|leave|info".
func (e *env) group(ctx context.Context, args []string) error {
	const use = "create --name NAME --members U1,U2,… | add GID USER | remove GID USER | leave GID | info GID"
	fs := e.flags("group", use)
	name := fs.String("name", "", "create: the group's name")
	members := fs.String("members", "", "create: comma-separated user ids of the other members")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErr(errors.New("group: give create, add, remove, leave or info"))
	}
	want := map[string]int{"create": 1, "add": 3, "remove": 3, "leave": 2, "info": 2}
	n, ok := want[pos[0]]
	switch {
	case !ok:
		return usageErr(fmt.Errorf("group: unknown subcommand %q (want create, add, remove, leave or info)", pos[0]))
	case len(pos) != n:
		return usageErr(fmt.Errorf("group %s: usage: mqim group %s", pos[0], use))
	case pos[0] != "create" && (*name != "" || *members != ""):
		return usageErr(fmt.Errorf("group %s: --name and --members are for create", pos[0]))
	}
	c, err := e.dial(ctx, sdk.Config{NoEvents: true})
	if err != nil {
		return err
	}
	defer c.Close()
	var res sdk.GroupChangeResult
	switch pos[0] {
	case "create":
		res, err = c.CreateGroup(ctx, *name, splitList(*members))
		if err == nil {
			// The id alone on stdout, for scripts: GID=$(mqim group create …).
			return e.out(res, res.Group)
		}
	case "add":
		res, err = c.AddToGroup(ctx, pos[1], pos[2])
	case "remove":
		res, err = c.RemoveFromGroup(ctx, pos[1], pos[2])
	case "leave":
		res, err = c.LeaveGroup(ctx, pos[1])
	case "info":
		var info sdk.GroupInfo
		if info, err = c.Group(ctx, pos[1]); err != nil {
			break
		}
		line := fmt.Sprintf("%s %q  %d members  fan-out %s  last #%d", info.Group, info.Name, info.MemberCount, info.Fanout, info.LastSeq)
		for _, m := range info.Members {
			line += fmt.Sprintf("\n  %s %s read #%d", m.User, m.Role, m.ReadSeq)
			if m.Muted {
				line += " (muted)"
			}
		}
		return e.out(info, line)
	}
	if err != nil {
		return fmt.Errorf("group %s: %w%s", pos[0], err, hint(err))
	}
	return e.out(res, fmt.Sprintf("%s %s: event #%d (fan-out %s)", pos[0], res.Group, res.ConvSeq, res.Fanout))
}
