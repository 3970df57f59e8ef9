// Package im is the transport-free core of mqim: every command of an
// authenticated session — a send, a notification, an RPC, a typing signal —
// goes through one Service, whatever carried it (MQTT in package mqtt, HTTP
// in server). The stages of the pipeline, in order, each in one place:
//
//  1. decode and validate (send.go, and each method's handler: methods.go);
//  2. authorize: the session's user and role, membership and blocks (the
//     store checks membership and blocks inside the commit transaction);
//  3. policy (policy.go): an empty slot today, for rate limits and
//     moderation;
//  4. sequence and commit: one committer goroutine (commit.go) writes what
//     has queued up as one batch (group commit);
//  5. acknowledge: the caller's done or reply function, in commit order;
//  6. hand the committed events to every consumer (Config.Consumers: local
//     delivery, the cluster bus, and later push and search), and to the
//     group dispatcher (Config.Groups).
//
// The core imports neither mochi nor net/http nor NATS (imports_test.go):
// it is tested with a real store and fake sessions.
package im
