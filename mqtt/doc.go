// Package mqtt is mqim's MQTT adapter around the embedded mochi broker
// (third_party/mochi): the listeners (a CONNECT deadline, Accept errors that
// do not stop serving, MQTT over WebSocket), the Maximum Packet Size
// enforcement with DISCONNECT 0x95, the outbound transcoding of events to
// each device's format, and the redaction of mochi's logs.
//
// It is where the adapter of issue 11 grows: the session per connection,
// auth/ACL, topic → command, the PUBACK writer and every mochi workaround
// move here from hooks/ and server/, so that it becomes the only package
// besides the bench's bare broker that imports mochi. Concurrency: the hooks
// run on mochi's per-connection goroutines and keep no state of their own
// but the device registry they are given.
package mqtt
