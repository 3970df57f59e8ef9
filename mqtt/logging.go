package mqtt

import (
	"context"
	"log/slog"
)

// Redact wraps the handler of mochi's logger: it drops packet and will
// attributes (mochi logs whole packets, message bodies included) and keeps
// only warnings and errors (the node logs its own start-up).
func Redact(h slog.Handler) slog.Handler { return redact{h} }

// redact is a slog handler for mochi's logger that drops packet and will
// attributes (mochi logs whole packets, message bodies included) and keeps
// only warnings and errors: the node logs its own start-up.
type redact struct{ slog.Handler }

func (r redact) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && r.Handler.Enabled(ctx, l)
}

func (r redact) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, rec.Message, rec.PC)
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
