// mqim patch: regression test for Packet.Shared (README.md).

package packets

import "testing"

// Every copy of a packet (one per subscriber) keeps the publisher's
// Shared value; v2.7.9 had no such field, so a hook could not reuse work
// done once per publish.
func TestCopyKeepsShared(t *testing.T) {
	shared := new(int)
	pk := Packet{FixedHeader: FixedHeader{Type: Publish}, TopicName: "a", Payload: []byte("x"), Shared: shared}
	for _, transfer := range []bool{false, true} {
		if c := pk.Copy(transfer); c.Shared != shared {
			t.Fatalf("Copy(%v) dropped Shared", transfer)
		}
	}
}
