package mqtt

import (
	"context"
	"log/slog"
)

// Redact wraps the handler of mochi's logger: it drops packet and will
// attributes (mochi logs whole packets, message bodies included) and keeps
// only warnings and errors (the node logs its own start-up). mochi's
// messageless lines become debug lines with a message.
func Redact(h slog.Handler) slog.Handler { return redact{h} }

// redact is a slog handler for mochi's logger that drops packet and will
// attributes (mochi logs whole packets, message bodies included) and keeps
// only warnings and errors: the node logs its own start-up.
type redact struct{ slog.Handler }

func (r redact) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && r.Handler.Enabled(ctx, l)
}

func (r redact) Handle(ctx context.Context, rec slog.Record) error {
	msg, level := rec.Message, rec.Level
	if msg == "" {
		// mochi's listeners log a connection that ended in an error with
		// no message, at WARN: a refused CONNECT (which auth already logs),
		// a socket closed or timed out before CONNECT. A client's doing,
		// not the operator's: debug, with a message.
		msg, level = "mqtt connection ended with an error", slog.LevelDebug
		if !r.Handler.Enabled(ctx, level) {
			return nil
		}
	}
	out := slog.NewRecord(rec.Time, level, msg, rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "pk", "packet", "will":
		default:
			out.AddAttrs(a)
		}
		return true
	})
	return r.Handler.Handle(ctx, out)
}

func (r redact) WithAttrs(as []slog.Attr) slog.Handler { return redact{r.Handler.WithAttrs(as)} }
func (r redact) WithGroup(g string) slog.Handler       { return redact{r.Handler.WithGroup(g)} }
