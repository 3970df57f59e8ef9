package moderation

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqim/mqim/internal/filewatch"
)

// Defaults of WordsConfig.
const (
	DefaultPoll     = 10 * time.Second
	DefaultMaxWords = 100_000 // over all lists
	DefaultMask     = "*"
	// MaxWordRunes bounds one entry; a longer line is an error, not a word.
	MaxWordRunes = 64
	// maxFileBytes bounds one list file, read before it is parsed.
	maxFileBytes = 16 << 20
)

// WordsConfig names the word lists: each file of Reject refuses a text in
// which one of its words occurs, each of Mask replaces the words' runes by
// MaskWith (per original rune). A file has one word per line, UTF-8;
// blank lines and lines starting with # are skipped.
type WordsConfig struct {
	Reject, Mask []string
	MaskWith     string        // zero: "*"
	MaxWords     int           // words over all lists; zero: DefaultMaxWords
	Poll         time.Duration // how often the files are checked for changes; zero: DefaultPoll
	Log          *slog.Logger
	Registerer   prometheus.Registerer
}

// Words is the sensitive-word filter. Check is safe for concurrent use;
// a reload swaps the lists whole.
type Words struct {
	cfg WordsConfig
	cur atomic.Pointer[lists]

	watch filewatch.Watcher

	reloads *prometheus.CounterVec
	hits    *prometheus.CounterVec
	count   *prometheus.GaugeVec
}

// lists is one loaded version of the files.
type lists struct {
	reject, mask *automaton
}

// NewWords loads the lists. A missing or unreadable file, a line that is
// not UTF-8 or longer than MaxWordRunes, or more than MaxWords words in
// all is an error naming the file and line.
func NewWords(cfg WordsConfig) (*Words, error) {
	if cfg.MaskWith == "" {
		cfg.MaskWith = DefaultMask
	}
	if !utf8.ValidString(cfg.MaskWith) || strings.ContainsAny(cfg.MaskWith, "\r\n") {
		return nil, errors.New("moderation: the mask must be valid UTF-8 without line breaks")
	}
	if cfg.MaxWords <= 0 {
		cfg.MaxWords = DefaultMaxWords
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	w := &Words{cfg: cfg,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mqim_moderation_word_list_reloads_total",
			Help: "Reloads of the word lists, by result (ok, error: the previous lists stay)."}, []string{"result"}),
		hits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mqim_moderation_word_hits_total",
			Help: "Texts in which the word filter found a word, by policy (reject, mask)."}, []string{"policy"}),
		count: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mqim_moderation_words",
			Help: "Words in the loaded lists, by policy (reject, mask)."}, []string{"policy"}),
	}
	for _, l := range []string{"ok", "error"} {
		w.reloads.WithLabelValues(l) // served from the start, at 0
	}
	for _, l := range []string{"reject", "mask"} {
		w.hits.WithLabelValues(l)
	}
	// A list truncated and being rewritten is a valid, shorter list: a
	// change is loaded once it stayed the same for one check.
	w.watch = filewatch.Watcher{Name: "moderation: word list", Files: w.files(), Load: w.load, Settle: true, Result: filewatch.Counter(w.reloads),
		Failed: func(err error) {
			w.cfg.Log.Warn("word lists changed but cannot be loaded; filtering with the previous lists", "error", err)
		}}
	if err := w.watch.Init(); err != nil {
		return nil, err
	}
	if cfg.Registerer != nil {
		if err := errors.Join(cfg.Registerer.Register(w.reloads), cfg.Registerer.Register(w.hits), cfg.Registerer.Register(w.count)); err != nil {
			return nil, fmt.Errorf("moderation: register metrics: %w", err)
		}
	}
	return w, nil
}

func (w *Words) files() []string {
	return append(append([]string(nil), w.cfg.Reject...), w.cfg.Mask...)
}

func (w *Words) load() error {
	total := 0
	read := func(files []string) (*automaton, int, error) {
		var words [][]rune
		for _, f := range files {
			ws, err := readList(f, w.cfg.MaxWords-total)
			if err != nil {
				return nil, 0, err
			}
			total += len(ws)
			words = append(words, ws...)
		}
		a := build(words)
		return a, a.words, nil
	}
	rej, nrej, err := read(w.cfg.Reject)
	if err != nil {
		return err
	}
	mask, nmask, err := read(w.cfg.Mask)
	if err != nil {
		return err
	}
	w.cur.Store(&lists{reject: rej, mask: mask})
	w.count.WithLabelValues("reject").Set(float64(nrej))
	w.count.WithLabelValues("mask").Set(float64(nmask))
	w.cfg.Log.Info("word lists loaded", "reject_words", nrej, "mask_words", nmask, "files", len(w.files()))
	return nil
}

// readList reads one file of at most max words.
func readList(file string, max int) ([][]rune, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("moderation: word list: %w", err)
	}
	if fi.Size() > maxFileBytes {
		return nil, fmt.Errorf("moderation: word list %s is %d bytes, more than %d", file, fi.Size(), maxFileBytes)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("moderation: word list: %w", err)
	}
	var words [][]rune
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxFileBytes)
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\uFEFF"))
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if !utf8.ValidString(t) {
			return nil, fmt.Errorf("moderation: word list %s line %d: not UTF-8", file, line)
		}
		r := foldWord(t)
		if len(r) > MaxWordRunes {
			return nil, fmt.Errorf("moderation: word list %s line %d: a word of %d characters, the limit is %d", file, line, len(r), MaxWordRunes)
		}
		if len(r) == 0 {
			continue
		}
		if len(words) >= max {
			return nil, fmt.Errorf("moderation: word list %s: more than %d words in all lists (line %d)", file, max, line)
		}
		words = append(words, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("moderation: word list %s: %w", file, err)
	}
	return words, nil
}

// Reload reads the files again (SIGHUP). On an error the loaded lists stay.
func (w *Words) Reload() error { return w.watch.Reload() }

// Run checks the files for changes until ctx ends.
func (w *Words) Run(ctx context.Context) { w.watch.Run(ctx, w.cfg.Poll) }

// Check filters text: refused when a word of a reject list occurs in it,
// else text with the words of the mask lists replaced — every original
// rune a match covers, overlapping matches merged, becomes MaskWith — or
// text itself when there is none.
func (w *Words) Check(text string) (masked string, refused bool) {
	l := w.cur.Load()
	if l.reject.words == 0 && l.mask.words == 0 {
		return text, false
	}
	f := fold(text)
	if l.reject.any(f.runes) {
		w.hits.WithLabelValues("reject").Inc()
		return text, true
	}
	// Original byte ranges to mask, merged: matches come by end position,
	// and a later one may start inside (or before) the previous range.
	var cover []span
	l.mask.match(f.runes, func(start, end int) bool {
		sp := span{f.from[start].start, f.from[end-1].end}
		for len(cover) > 0 && sp.start <= cover[len(cover)-1].end {
			sp.start = min(sp.start, cover[len(cover)-1].start)
			sp.end = max(sp.end, cover[len(cover)-1].end)
			cover = cover[:len(cover)-1]
		}
		cover = append(cover, sp)
		return true
	})
	if len(cover) == 0 {
		return text, false
	}
	w.hits.WithLabelValues("mask").Inc()
	var b strings.Builder
	b.Grow(len(text))
	at := 0
	for _, sp := range cover {
		b.WriteString(text[at:sp.start])
		for range utf8.RuneCountInString(text[sp.start:sp.end]) {
			b.WriteString(w.cfg.MaskWith)
		}
		at = sp.end
	}
	b.WriteString(text[at:])
	return b.String(), false
}
