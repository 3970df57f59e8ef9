// Package mqtt is mqim's MQTT adapter around the embedded mochi broker
// (third_party/mochi), and the only package of mqim that imports mochi:
// Broker (broker.go) owns the mochi server — its options, the hooks in
// their order, the listeners, the publishes of delivery, RPC responses and
// presence, the drain — and the rest of the node talks to devices through
// it. Also here: the listeners (a CONNECT deadline, Accept errors that
// do not stop serving, MQTT over WebSocket), the session of each connection
// (sessions.go), the pipeline hook that turns publishes into commands of the
// core, package im, and writes their PUBACKs in arrival order with the
// workarounds mochi needs (pipeline.go, acks.go), the Maximum Packet Size
// enforcement with DISCONNECT 0x95, the outbound transcoding of events to
// each device's format, and the redaction of mochi's logs.
//
// The auth hook (auth.go, certs.go, members.go) authenticates CONNECTs and
// checks subscriptions; the presence hook (presence.go) reports connects and
// disconnects to the routing table. Concurrency: the hooks run on mochi's
// per-connection goroutines; work they hand off runs on goroutines of the
// core (im.Service.Spawn), which Shutdown waits for.
package mqtt
