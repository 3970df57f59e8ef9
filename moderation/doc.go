// Package moderation owns content moderation of sends and edits: the
// sensitive-word filter (word lists loaded from files, reloaded when they
// change, matched after NFKC normalisation and case folding with an
// Aho–Corasick automaton over runes, so that Chinese, which has no word
// boundaries, matches as well as Latin) and the client of the before-send
// webhook. It knows no transport: the core (im) calls it through its
// WordFilter and BeforeSend interfaces; protocol/spec.md §18 says what
// clients and webhook receivers see.
package moderation
