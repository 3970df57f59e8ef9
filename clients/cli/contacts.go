package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mqim/mqim/clients/sdk"
	"github.com/mqim/mqim/protocol"
)

func (e *env) contact(ctx context.Context, args []string) error {
	fs := e.flags("contact", "add|remove|block|unblock USER | list")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErr(errors.New("contact: give add, remove, block, unblock or list"))
	}
	op := pos[0]
	switch {
	case op == "list" && len(pos) == 1:
	case (op == "add" || op == "remove" || op == "block" || op == "unblock") && len(pos) == 2:
	default:
		return usageErr(fmt.Errorf("contact: want add|remove|block|unblock USER or list, got %q", strings.Join(pos, " ")))
	}
	c, err := e.dial(ctx, sdk.Config{NoEvents: true})
	if err != nil {
		return err
	}
	defer c.Close()
	if op == "list" {
		list, err := c.Contacts(ctx)
		if err != nil {
			return fmt.Errorf("contact list: %w", err)
		}
		for _, ct := range list {
			if err := e.out(ct, contactLine(ct)); err != nil {
				return err
			}
		}
		return nil
	}
	f := map[string]func(context.Context, string) (sdk.Contact, error){
		"add": c.AddContact, "remove": c.RemoveContact, "block": c.Block, "unblock": c.Unblock,
	}[op]
	ct, err := f(ctx, pos[1])
	if err != nil {
		return fmt.Errorf("contact %s %s: %w%s", op, pos[1], err, hint(err))
	}
	return e.out(ct, contactLine(ct))
}

func contactLine(c sdk.Contact) string {
	var state []string
	if c.Contact {
		state = append(state, "contact")
	}
	if c.Blocked {
		state = append(state, "blocked")
	}
	if len(state) == 0 {
		state = append(state, "none")
	}
	return c.User + " " + strings.Join(state, ",")
}

func (e *env) presence(ctx context.Context, args []string) error {
	fs := e.flags("presence", "USER…")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || len(pos) > protocol.MaxPresenceUser {
		return usageErr(fmt.Errorf("presence: give 1 to %d users", protocol.MaxPresenceUser))
	}
	c, err := e.dial(ctx, sdk.Config{NoEvents: true})
	if err != nil {
		return err
	}
	defer c.Close()
	list, err := c.Presence(ctx, pos...)
	if err != nil {
		return fmt.Errorf("presence: %w", err)
	}
	hidden := 0
	for _, p := range list {
		var line string
		switch {
		case p.Error != nil:
			hidden++
			line = fmt.Sprintf("%s unknown (%s: not shared with you)", p.User, p.Error.Code)
		case p.Online:
			line = p.User + " online"
		case p.LastSeen > 0:
			line = fmt.Sprintf("%s offline (last seen %s)", p.User, time.UnixMilli(p.LastSeen).UTC().Format(time.RFC3339))
		default:
			line = p.User + " offline (never seen)"
		}
		if err := e.out(p, line); err != nil {
			return err
		}
	}
	if hidden > 0 {
		return fmt.Errorf("presence of %d of %d users is not visible to you", hidden, len(list))
	}
	return nil
}
