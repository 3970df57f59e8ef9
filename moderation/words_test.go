package moderation

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// writeList writes a list file whole (renamed into place, as the poller
// may look at any moment).
func writeList(t *testing.T, dir, name string, words ...string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p+".new", []byte(strings.Join(words, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".new", p); err != nil {
		t.Fatal(err)
	}
	return p
}

func newWords(t *testing.T, reject, mask []string) *Words {
	t.Helper()
	dir := t.TempDir()
	cfg := WordsConfig{Log: quiet()}
	if reject != nil {
		cfg.Reject = []string{writeList(t, dir, "reject.txt", reject...)}
	}
	if mask != nil {
		cfg.Mask = []string{writeList(t, dir, "mask.txt", mask...)}
	}
	w, err := NewWords(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// Matching is by substring after NFKC and case folding: Chinese without
// word boundaries, full-width and half-width forms, any case.
func TestWordsMatchAfterNormalisation(t *testing.T) {
	w := newWords(t, []string{"法轮功", "Spam", "ｶﾀｶﾅ", "# a comment, not a word", ""}, nil)
	for text, want := range map[string]bool{
		"我们来谈谈法轮功的事":      true,  // inside a Chinese sentence
		"法轮 功":            false, // a space splits the word
		"buy SPAM now":    true,
		"ｓｐａｍ":            true, // full-width Latin
		"ＳＰＡＭ":            true,
		"sPaM":            true,
		"カタカナ":            true, // the half-width list entry folds to full-width katakana
		"spa m":           false,
		"a comment":       false,
		"hello 你好":        false,
		"":                false,
		"\xff\xfe broken": false, // not UTF-8: no crash, no match
	} {
		if _, refused := w.Check(text); refused != want {
			t.Errorf("Check(%q) refused = %v, want %v", text, refused, want)
		}
	}
}

// Masking replaces each original rune a match covers, whatever the
// normalisation did to lengths, and merges overlapping matches.
func TestWordsMask(t *testing.T) {
	w := newWords(t, nil, []string{"坏蛋", "abc", "bcd", "ﬁx", "é", "他妈的"})
	for text, want := range map[string]string{
		"你是坏蛋吗":        "你是**吗",
		"ＡＢＣ and abc":  "*** and ***", // full-width: three 3-byte runes, three masks
		"xAbCdx":       "x****x",      // abc and bcd overlap: one range
		"abcbcd":       "******",
		"fix it":       "*** it",  // the word's ligature folds to "fix"
		"ﬁx it":        "** it",   // the text's ligature is one rune
		"cafe\u0301 é": "caf** *", // e + combining accent is é: both runes masked
		"他妈的他妈的!":      "******!", // adjacent repeats
		"clean text":   "clean text",
		"ａｂ":           "ａｂ",
	} {
		got, refused := w.Check(text)
		if refused || got != want {
			t.Errorf("Check(%q) = %q, %v; want %q", text, got, refused, want)
		}
	}
}

// A reject list wins over a mask list.
func TestWordsRejectBeforeMask(t *testing.T) {
	w := newWords(t, []string{"毒品"}, []string{"垃圾"})
	if _, refused := w.Check("垃圾和毒品"); !refused {
		t.Fatal("a text with a reject word was not refused")
	}
	if got, refused := w.Check("垃圾"); refused || got != "**" {
		t.Fatalf("mask only: %q, %v", got, refused)
	}
}

// The automaton against a naive search, on random words and texts over a
// small alphabet (so that matches overlap a lot).
func TestAutomatonAgainstNaive(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	alpha := []rune("ab中文")
	word := func(max int) []rune {
		w := make([]rune, 1+r.Intn(max))
		for i := range w {
			w[i] = alpha[r.Intn(len(alpha))]
		}
		return w
	}
	for round := 0; round < 200; round++ {
		var words [][]rune
		for range 1 + r.Intn(8) {
			words = append(words, word(4))
		}
		a := build(words)
		text := word(30)
		// For each end position, the longest word ending there.
		want := map[int]int{}
		for end := 1; end <= len(text); end++ {
			for _, w := range words {
				if len(w) <= end && string(text[end-len(w):end]) == string(w) && len(w) > want[end] {
					want[end] = len(w)
				}
			}
		}
		got := map[int]int{}
		a.match(text, func(start, end int) bool { got[end] = end - start; return true })
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("words %q text %q: got %v, want %v", words, string(text), got, want)
		}
	}
}

func TestWordsBadLists(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("长", MaxWordRunes+1)
	for name, cfg := range map[string]WordsConfig{
		"missing file": {Reject: []string{filepath.Join(dir, "nope.txt")}},
		"too many":     {Reject: []string{writeList(t, dir, "many.txt", "a", "b", "c")}, MaxWords: 2},
		"too many over lists": {Reject: []string{writeList(t, dir, "r.txt", "a", "b")},
			Mask: []string{writeList(t, dir, "m.txt", "c")}, MaxWords: 2},
		"long word":   {Mask: []string{writeList(t, dir, "long.txt", long)}},
		"not utf-8":   {Mask: []string{writeList(t, dir, "bad.txt", "ok", "\xff\xfe")}},
		"bad mask":    {MaskWith: "\n"},
		"a directory": {Reject: []string{dir}},
	} {
		cfg.Log = quiet()
		if _, err := NewWords(cfg); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.Contains(err.Error(), "moderation") {
			t.Errorf("%s: %v does not say where it comes from", name, err)
		}
	}
	big := filepath.Join(dir, "big.txt")
	f, _ := os.Create(big)
	_ = f.Truncate(maxFileBytes + 1)
	_ = f.Close()
	if _, err := NewWords(WordsConfig{Reject: []string{big}, Log: quiet()}); err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Errorf("an oversized file: %v", err)
	}
}

// A changed file is picked up by the poller; a bad new version keeps the
// previous lists and is counted; Reload (SIGHUP) reads at once.
func TestWordsReload(t *testing.T) {
	dir := t.TempDir()
	file := writeList(t, dir, "r.txt", "old")
	reg := prometheus.NewRegistry()
	w, err := NewWords(WordsConfig{Reject: []string{file}, Poll: 10 * time.Millisecond, Log: quiet(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	refused := func(s string) bool { _, r := w.Check(s); return r }

	writeList(t, dir, "r.txt", "new", "second")
	waitFor(t, func() bool { return refused("new") && !refused("old") })

	// A bad version: the previous list stays, the error is counted.
	writeList(t, dir, "r.txt", "fine", strings.Repeat("x", MaxWordRunes+1))
	waitFor(t, func() bool { return testutil.ToFloat64(w.reloads.WithLabelValues("error")) == 1 })
	if !refused("new") || refused("fine") {
		t.Fatal("a bad list replaced the loaded one")
	}
	if err := w.Reload(); err == nil {
		t.Fatal("Reload of a bad list: no error")
	}
	writeList(t, dir, "r.txt", "third")
	if err := w.Reload(); err != nil || !refused("third") || refused("new") {
		t.Fatalf("Reload: %v", err)
	}
	if got := testutil.ToFloat64(w.count.WithLabelValues("reject")); got != 1 {
		t.Fatalf("words gauge %v, want 1", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func FuzzWordsCheck(f *testing.F) {
	dir := f.TempDir()
	p := filepath.Join(dir, "m.txt")
	if err := os.WriteFile(p, []byte("坏蛋\nabc\nﬁ\né\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	w, err := NewWords(WordsConfig{Mask: []string{p}, Log: quiet()})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"坏蛋", "ＡＢＣ", "ﬁx", "e\u0301", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, refused := w.Check(s)
		if refused {
			t.Fatal("no reject list, refused")
		}
		// Masking keeps what lies outside the matches and never grows a text
		// of one-byte masks by more than its rune count.
		if len(out) > len(s)+strings.Count(out, "*") {
			t.Fatalf("%q → %q", s, out)
		}
		if again, _ := w.Check(out); again != out && !strings.Contains(s, "\xff") {
			t.Fatalf("masking %q twice differs: %q, %q", s, out, again)
		}
	})
}

// A changed file is loaded once it stayed the same for one check, so
// that a list written in place is not loaded half written.
func TestWordsReloadWaitsForTheFileToSettle(t *testing.T) {
	dir := t.TempDir()
	file := writeList(t, dir, "r.txt", "old")
	w, err := NewWords(WordsConfig{Reject: []string{file}, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	refused := func(s string) bool { _, r := w.Check(s); return r }
	w.watch.Check()                                        // first look: as loaded
	if err := os.WriteFile(file, nil, 0o600); err != nil { // truncated, not yet written
		t.Fatal(err)
	}
	w.watch.Check()
	if !refused("old") {
		t.Fatal("a file seen changed once was loaded")
	}
	if err := os.WriteFile(file, []byte("old\nnew\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.watch.Check()
	w.watch.Check()
	if !refused("old") || !refused("new") {
		t.Fatal("the settled file was not loaded")
	}
}

// BenchmarkWordsCheck: a 140-character chat message, mixed Chinese and
// full-width Latin, against 50,000 Chinese words and a few Latin ones.
func BenchmarkWordsCheck(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	var words []string
	for range 50_000 {
		w := make([]rune, 2+r.Intn(3))
		for i := range w {
			w[i] = rune(0x4e00 + r.Intn(3000))
		}
		words = append(words, string(w))
	}
	words = append(words, "darn", "spam")
	p := filepath.Join(b.TempDir(), "m.txt")
	if err := os.WriteFile(p, []byte(strings.Join(words, "\n")), 0o600); err != nil {
		b.Fatal(err)
	}
	w, err := NewWords(WordsConfig{Mask: []string{p}, Log: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	msg := strings.Repeat("今天天气很好，我们去公园ＳＰＡＭ吧 Darn it! ", 5)
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for range b.N {
		w.Check(msg)
	}
}
