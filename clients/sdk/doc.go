// Package sdk is the Go client of mqim: one MQTT 5 device of a user, on
// paho.golang's autopaho.
//
// A Client connects with a token, reconnects by itself, and after every
// (re)connect subscribes to the user's inbox and its reply topic and syncs
// from its cursor [IM-5.2-4]. It offers
//
//   - Send, which publishes a message with a fresh cmid and retries it with
//     the same cmid across reconnects until the server acknowledges it, so a
//     message is stored exactly once [IM-4.5];
//   - Events, a channel of inbox events in inbox order, each exactly once:
//     duplicates are dropped by inbox seq, a jump in seqs is filled by the
//     sync RPC, and live events that arrive during a sync are held and merged
//     [IM-5.2-3];
//   - Sync, History, Conversations and Read, the RPCs of the spec over MQTT 5
//     Response Topic and Correlation Data [IM-7].
//
// Refusals are *Error values carrying the spec's error code; compare them
// with errors.Is (errors.Is(err, sdk.ErrUnknownUser)).
//
// Concurrency: every method of Client is safe for concurrent use. A Client
// owns its goroutines; Close stops all of them and closes the Events channel.
// The cursor is saved through the CursorStore after events are handed to the
// application, so an application that stops in between sees those events
// again after a restart (at-least-once towards the application, never a gap).
//
// Rule numbers such as [IM-5.2-3] refer to protocol/spec.md.
package sdk
