// Package sync is only a folder: it holds the packages that get events to
// devices (fanout: push to connected devices; catchup: the pull RPCs).
// Nothing imports it, so it never shadows the standard library's sync.
package sync
