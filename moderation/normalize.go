package moderation

import (
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// folded is a text after NFKC normalisation and case folding, rune by rune,
// each with the span of the original text (byte offsets) it came from.
// Normalisation changes lengths — full-width "ＡＢＣ" is three 3-byte runes
// that become "abc", a ligature one rune that becomes two, a letter and a
// combining accent two runes that become one — so a match found in the
// folded runes is mapped back to the original through these spans.
type folded struct {
	runes []rune
	from  []span
}

type span struct{ start, end int }

// fold normalises s the way word-list entries are. The unit is NFKC's
// segment (a starter and the combining marks after it), which both the
// normalisation and the folding keep together.
func fold(s string) folded {
	f := folded{runes: make([]rune, 0, len(s)), from: make([]span, 0, len(s))}
	caser := cases.Fold() // not safe for concurrent use: one per call
	var it norm.Iter
	it.InitString(norm.NFKC, s)
	start := 0
	for !it.Done() {
		seg := it.Next()
		end := it.Pos()
		// Folding may undo a composition (NFKC_Casefold is NFKC, fold, NFKC).
		out := norm.NFKC.Bytes(caser.Bytes(seg))
		for len(out) > 0 {
			r, n := utf8.DecodeRune(out)
			out = out[n:]
			f.runes = append(f.runes, r)
			f.from = append(f.from, span{start, end})
		}
		start = end
	}
	return f
}

// foldWord is a word-list entry as the automaton holds it.
func foldWord(w string) []rune { return fold(w).runes }
