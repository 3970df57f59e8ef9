package moderation

import (
	"slices"
)

// automaton is an Aho–Corasick automaton over runes. It is written here
// rather than taken from a library: the byte-level libraries served keep a
// dense transition table per state (a Chinese word is 3 bytes a rune, and
// a list of 50,000 such words took 126 MB in github.com/coregx/ahocorasick
// against 2 MB here, docs/ARCHITECTURE.md), and matching runes
// makes mapping a match back to the original text direct.
//
// States are numbered in breadth-first order; the edges of state s are
// edgeRune[first[s]:first[s+1]] (sorted) and edgeNext alike. Every state
// knows the length, in runes, of the longest word that ends there (its own
// or one on its failure chain): enough to mask, since every shorter word
// ending at the same place lies inside it, and to refuse.
type automaton struct {
	first    []int32
	edgeRune []rune
	edgeNext []int32
	fail     []int32
	longest  []int32 // runes of the longest word ending in the state; 0: none
	words    int
}

// build makes the automaton of words (already folded; empty ones are
// skipped).
func build(words [][]rune) *automaton {
	// The trie, with map edges while it grows.
	type node struct {
		next  map[rune]int32
		depth int32
		word  bool
	}
	nodes := []node{{}}
	a := &automaton{}
	for _, w := range words {
		if len(w) == 0 {
			continue
		}
		s := int32(0)
		for _, r := range w {
			n, ok := nodes[s].next[r]
			if !ok {
				if nodes[s].next == nil {
					nodes[s].next = map[rune]int32{}
				}
				n = int32(len(nodes))
				nodes[s].next[r] = n
				nodes = append(nodes, node{depth: nodes[s].depth + 1})
			}
			s = n
		}
		if !nodes[s].word {
			nodes[s].word = true
			a.words++
		}
	}
	// Renumber breadth-first, laying out each state's edges sorted.
	sorted := func(n node) []rune {
		keys := make([]rune, 0, len(n.next))
		for r := range n.next {
			keys = append(keys, r)
		}
		slices.Sort(keys)
		return keys
	}
	order := []int32{0}
	id := make([]int32, len(nodes))
	a.first = make([]int32, len(nodes)+1)
	a.edgeRune = make([]rune, 0, len(nodes)-1)
	a.edgeNext = make([]int32, 0, len(nodes)-1)
	for i := 0; i < len(order); i++ {
		n := nodes[order[i]]
		a.first[i] = int32(len(a.edgeRune))
		for _, r := range sorted(n) {
			child := n.next[r]
			id[child] = int32(len(order))
			order = append(order, child)
			a.edgeRune = append(a.edgeRune, r)
			a.edgeNext = append(a.edgeNext, id[child])
		}
	}
	a.first[len(nodes)] = int32(len(a.edgeRune))
	// Failure links and longest words, breadth-first: a state's failure
	// state is shallower, so it is done before it.
	a.fail = make([]int32, len(nodes))
	a.longest = make([]int32, len(nodes))
	for s := int32(0); s < int32(len(order)); s++ {
		if n := nodes[order[s]]; n.word {
			a.longest[s] = n.depth
		} else if s != 0 {
			a.longest[s] = a.longest[a.fail[s]]
		}
		for e := a.first[s]; e < a.first[s+1]; e++ {
			r, child := a.edgeRune[e], a.edgeNext[e]
			f := int32(0)
			if s != 0 {
				f = a.step(a.fail[s], r)
			}
			a.fail[child] = f
		}
	}
	return a
}

// edge returns the state s goes to on r, or -1.
func (a *automaton) edge(s int32, r rune) int32 {
	lo, hi := a.first[s], a.first[s+1]
	if i, ok := slices.BinarySearch(a.edgeRune[lo:hi], r); ok {
		return a.edgeNext[lo+int32(i)]
	}
	return -1
}

// step is the transition on r from s, following failure links.
func (a *automaton) step(s int32, r rune) int32 {
	for {
		if n := a.edge(s, r); n >= 0 {
			return n
		}
		if s == 0 {
			return 0
		}
		s = a.fail[s]
	}
}

// match calls found with the rune range [start, end) of the longest word
// ending at each position of text where one ends, left to right; matches
// may overlap. It stops when found returns false.
func (a *automaton) match(text []rune, found func(start, end int) bool) {
	if a == nil || a.words == 0 {
		return
	}
	s := int32(0)
	for i, r := range text {
		s = a.step(s, r)
		if n := a.longest[s]; n > 0 && !found(i+1-int(n), i+1) {
			return
		}
	}
}

// any reports whether a word occurs in text.
func (a *automaton) any(text []rune) bool {
	hit := false
	a.match(text, func(int, int) bool { hit = true; return false })
	return hit
}
