package bench

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// A stamp is the text of every benchmark message:
//
//	"{run} {pair} {seq} {sent} " + padding to the configured size
//
// run identifies the invocation (messages of another run are ignored), pair
// is the sender's index, seq the sender's message number (from 0), and sent
// the send time in nanoseconds since the run's base time. The clock is the
// process's monotonic clock: senders and receivers live in one process.
type stamp struct {
	run  string
	pair int
	seq  int
	sent time.Duration
}

const pad = "mqim-bench-padding-"

// appendText appends the stamp's text, padded with filler up to size bytes
// (or left longer when the stamp itself does not fit).
func (s stamp) appendText(b []byte, size int) []byte {
	start := len(b)
	b = append(b, s.run...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(s.pair), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(s.seq), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(s.sent), 10)
	b = append(b, ' ')
	for i := 0; len(b)-start < size; i++ {
		b = append(b, pad[i%len(pad)])
	}
	return b
}

var errNotStamp = errors.New("not a benchmark message")

// parseStamp reads the stamp at the start of text.
func parseStamp(text string) (stamp, error) {
	var f [4]string
	rest := text
	for i := range f {
		var ok bool
		if f[i], rest, ok = strings.Cut(rest, " "); !ok {
			return stamp{}, errNotStamp
		}
	}
	pair, err1 := strconv.Atoi(f[1])
	seq, err2 := strconv.Atoi(f[2])
	sent, err3 := strconv.ParseInt(f[3], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil || pair < 0 || seq < 0 {
		return stamp{}, errNotStamp
	}
	return stamp{run: f[0], pair: pair, seq: seq, sent: time.Duration(sent)}, nil
}
