// Package protocol is the wire contract of mqim in Go: topics, payload types,
// encodings and error codes. spec.md beside it is normative; rule numbers such
// as [IM-2.1-3] in comments and tests refer to it.
//
// protocol imports nothing from the rest of the module, so servers, clients and
// tests share it. Everything here is safe for concurrent use.
package protocol
