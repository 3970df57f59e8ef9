package cli

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mqim/mqim/clients/sdk"
	"github.com/mqim/mqim/protocol"
)

// extCommands are the commands of spec §12–§16.
var extCommands = map[string]func(e *env, ctx context.Context, args []string) error{
	"contact":  (*env).contact,
	"recall":   (*env).recall,
	"presence": (*env).presence,
	"push":     (*env).push, // push.go
}

func init() {
	for name := range extCommands {
		Commands = append(Commands, name)
	}
}

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

// attachment uploads path and returns the message to send for it
// [IM-12.1]: image or video by its media type, else file.
func (e *env) attachment(ctx context.Context, c *sdk.Client, path, base, caption string) (string, map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, fmt.Errorf("send --file: %w", err)
	}
	defer f.Close()
	if base == "" {
		u, err := sdk.ParseServer(e.g.server)
		if err != nil {
			return "", nil, usageErr(err)
		}
		base = "http://" + net.JoinHostPort(u.Hostname(), "8080")
	}
	name := filepath.Base(path)
	mt := mime.TypeByExtension(filepath.Ext(name))
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i] // the charset parameter of text types
	}
	up, err := c.Upload(ctx, base, name, mt, f)
	if err != nil {
		return "", nil, fmt.Errorf("upload %s to %s: %w", path, base, err)
	}
	typ := protocol.TypeFile
	switch major, _, _ := strings.Cut(up.Mime, "/"); major {
	case "image":
		typ = protocol.TypeImage
	case "video":
		typ = protocol.TypeVideo
	}
	body := map[string]any{"url": up.URL, "mime": up.Mime, "size": up.Size, "sha256": up.SHA256, "name": name}
	if caption != "" {
		body["caption"] = caption
	}
	return typ, body, nil
}
