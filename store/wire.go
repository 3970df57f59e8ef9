package store

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mqim/mqim/protocol"
)

// Wire returns the message as devices see it [IM-4.3].
func (m *Message) Wire() (protocol.Message, error) {
	var body map[string]any
	if len(m.Body) > 0 {
		if err := msgpack.Unmarshal(m.Body, &body); err != nil {
			return protocol.Message{}, fmt.Errorf("decode body of message %d: %w", m.ID, err)
		}
	}
	cmid := m.Cmid
	if m.Type == TypeGroup {
		cmid = "" // the server's, not a device's [IM-11.4-2]
	}
	return protocol.Message{ID: m.ID, Conv: m.Conv, Seq: m.Seq, From: m.From, Cmid: cmid, Type: m.Type, Body: body, TS: m.TS,
		Mentions: m.Mentions, ReadBy: m.ReadBy}, nil
}

// Wire returns the inbox event as devices see it [IM-5.1].
func (e *InboxEvent) Wire() (protocol.Event, error) {
	ev := protocol.Event{Kind: e.Kind, Seq: e.Seq, Conv: e.Conv, ConvSeq: e.ConvSeq, TS: e.TS}
	switch e.Kind {
	case KindMessage:
		if e.Msg == nil {
			return ev, fmt.Errorf("inbox event %s/%d: message missing", e.User, e.Seq)
		}
		m, err := e.Msg.Wire()
		if err != nil {
			return ev, err
		}
		ev.Msg = &m
	case KindRead:
		ev.User = e.Actor
	case KindSettings: // settings.go
		if e.Settings != nil {
			ev.Settings = e.Settings.Wire()
		}
	case KindRecall, KindEdit, KindDelete: // edits.go
		ev.User = e.Actor
		if e.Msg != nil {
			m, err := e.Msg.Wire()
			if err != nil {
				return ev, err
			}
			ev.Msg = &m
		}
	}
	return ev, nil
}
