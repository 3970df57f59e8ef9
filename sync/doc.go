// Package sync is only a folder: it holds catchup, the pull RPCs, until
// they move into the core. Push lives in delivery/. Nothing imports this
// package, so it never shadows the standard library's sync.
package sync
