package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"strconv"

	"github.com/mqim/mqim/clients/sdk"
	"github.com/mqim/mqim/protocol"
)

// convFlags are the ways a command names a conversation.
type convFlags struct{ with, group, conv *string }

func (e *env) convFlags(fs *flag.FlagSet) convFlags {
	return convFlags{
		with:  fs.String("with", "", "the other user of the direct conversation"),
		group: fs.String("group", "", "group id (g:…)"),
		conv:  fs.String("conv", "", "conversation id"),
	}
}

// check refuses anything but exactly one of the flags; it runs before
// connecting.
func (f convFlags) check(cmd string) error {
	n := 0
	for _, v := range []string{*f.with, *f.group, *f.conv} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return usageErr(fmt.Errorf("%s: give one of --with USER, --group GID or --conv ID", cmd))
	}
	return nil
}

// resolve returns the conversation id the flags name, for user.
func (f convFlags) resolve(cmd, user string) (string, error) {
	switch {
	case *f.with != "":
		if !protocol.ValidID(*f.with) || *f.with == user {
			return "", usageErr(fmt.Errorf("%s: --with %q is not another user", cmd, *f.with))
		}
		return protocol.DirectConv(user, *f.with), nil
	case *f.group != "":
		return *f.group, nil
	}
	return *f.conv, nil
}

// read runs "mqim read": moves the user's read position [IM-7.6-1], up to
// the latest message unless --seq says where.
func (e *env) read(ctx context.Context, args []string) error {
	fs := e.flags("read", "--with USER | --group GID | --conv ID [--seq N]")
	cf := e.convFlags(fs)
	seq := fs.Int64("seq", -1, "read up to this conv seq (default: the latest message)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if err := cf.check("read"); err != nil {
		return err
	}
	c, err := e.dial(ctx, sdk.Config{NoEvents: true})
	if err != nil {
		return err
	}
	defer c.Close()
	conv, err := cf.resolve("read", c.User())
	if err != nil {
		return err
	}
	if *seq < 0 {
		*seq = math.MaxInt64 // the server clamps to the last seq [IM-7.6-1]
	}
	res, err := c.Read(ctx, conv, *seq)
	if err != nil {
		return fmt.Errorf("read %s: %w%s", conv, err, hint(err))
	}
	return e.out(res, fmt.Sprintf("%s read up to #%d, %d unread", res.Conv, res.ReadSeq, res.Unread))
}

// typing runs "mqim typing USER": a typing (or, with --stop, paused)
// signal to a peer [IM-15.1-1], best effort.
func (e *env) typing(ctx context.Context, args []string) error {
	fs := e.flags("typing", "[--stop] USER")
	stop := fs.Bool("stop", false, `send "paused" (stopped typing) instead of "typing"`)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || !protocol.ValidID(pos[0]) {
		return usageErr(errors.New("typing: give the user you are typing to"))
	}
	state := protocol.StateTyping
	if *stop {
		state = protocol.StatePaused
	}
	c, err := e.dial(ctx, sdk.Config{NoEvents: true})
	if err != nil {
		return err
	}
	defer c.Close()
	if pos[0] == c.User() {
		return usageErr(errors.New("typing: give another user than yourself"))
	}
	if err := c.Typing(ctx, pos[0], state); err != nil {
		return fmt.Errorf("typing: %w", err)
	}
	return e.out(struct {
		To    string `json:"to"`
		State string `json:"state"`
	}{pos[0], state}, fmt.Sprintf("told %s: %s", pos[0], state))
}

func (e *env) recall(ctx context.Context, args []string) error {
	fs := e.flags("recall", "MSGID")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErr(errors.New("recall: give one message id"))
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || id <= 0 {
		return usageErr(fmt.Errorf("recall: %q is not a message id", pos[0]))
	}
	c, err := e.dial(ctx, sdk.Config{NoEvents: true})
	if err != nil {
		return err
	}
	defer c.Close()
	m, err := c.Recall(ctx, id)
	if err != nil {
		return fmt.Errorf("recall %d: %w%s", id, err, hint(err))
	}
	return e.out(struct {
		ID   string `json:"id"`
		Conv string `json:"conv"`
		Seq  int64  `json:"seq"`
	}{strconv.FormatInt(m.ID, 10), m.Conv, m.Seq}, fmt.Sprintf("recalled id=%d conv=%s seq=%d", m.ID, m.Conv, m.Seq))
}
