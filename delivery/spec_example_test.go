package delivery

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// specExamples returns the bytes of the annotated MessagePack examples of
// protocol/spec.md §1.2, in order: in each block, the hex pairs that start
// a line (before its annotation).
func specExamples(t *testing.T) [][]byte {
	t.Helper()
	f, err := os.ReadFile("../protocol/spec.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(f)
	i := strings.Index(section, "#### Annotated MessagePack examples")
	j := strings.Index(section, "### 1.3 Limits")
	if i < 0 || j < i {
		t.Fatal("spec.md has no annotated MessagePack examples before §1.3")
	}
	var out [][]byte
	var cur []byte
	in := false
	sc := bufio.NewScanner(strings.NewReader(section[i:j]))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			if in {
				out = append(out, cur)
				cur = nil
			}
			in = !in
			continue
		}
		if !in {
			continue
		}
		for _, tok := range strings.Fields(line) {
			b, err := hex.DecodeString(tok)
			if err != nil {
				break // the annotation
			}
			cur = append(cur, b...)
		}
	}
	return out
}

// The annotated bytes in the spec are what the encoders write.
func TestSpecMessagePackExamples(t *testing.T) {
	ex := specExamples(t)
	if len(ex) != 2 {
		t.Fatalf("%d examples in spec §1.2, want 2", len(ex))
	}
	send, err := protocol.Encode(protocol.MsgPack, &protocol.Send{Cmid: "c1", To: "bob", Type: protocol.TypeText, Body: map[string]any{"text": "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	body, err := protocol.Encode(protocol.MsgPack, map[string]any{"text": "hi"})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := EncodeEvent(&store.InboxEvent{User: "bob", Seq: 7, Kind: protocol.KindMessage, Conv: "d:alice:bob", ConvSeq: 3, TS: 1767312000123,
		Msg: &store.Message{ID: 362388381503488, Conv: "d:alice:bob", Seq: 3, From: "alice", Cmid: "c1", Type: protocol.TypeText, Body: body, TS: 1767312000123}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]byte{send, ev} {
		if !bytes.Equal(ex[i], want) {
			t.Errorf("spec example %d (%d bytes):\n% x\nthe server writes (%d bytes):\n% x", i+1, len(ex[i]), ex[i], len(want), want)
		}
	}
}
