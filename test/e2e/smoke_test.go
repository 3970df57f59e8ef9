package e2e

import (
	"testing"

	"github.com/mqim/mqim/protocol"
)

func TestSmokeV5(t *testing.T) {
	n := startNode(t)
	alice := dialV5(t, n.MQTTAddr(), "alice", "alice-1")
	bob := dialV5(t, n.MQTTAddr(), "bob", "bob-1")
	if c := bob.subscribe(protocol.InboxTopic("bob")); c != 1 {
		t.Fatalf("suback %#x", c)
	}
	pr := alice.publish(protocol.SendTopic("alice"), mustEncode(t, protocol.MsgPack, &protocol.Send{Cmid: "c1", To: "bob", Type: "text", Body: map[string]any{"text": "hi"}}))
	if pr.ReasonCode != 0 {
		t.Fatalf("puback %#x %v", pr.ReasonCode, pr.Properties)
	}
	ev := bob.nextEvent()
	if ev.Kind != "message" || ev.Seq != 1 || ev.Msg.Body["text"] != "hi" || ev.ConvSeq != 1 {
		t.Fatalf("event %+v", ev)
	}
}
