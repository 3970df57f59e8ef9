package sdk_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/mqim/mqim/clients/sdk"
	"github.com/mqim/mqim/internal/testnode"
	"github.com/mqim/mqim/protocol"
)

// The SDK helpers of spec §12–§16 against a node: contacts and blocking,
// typing, presence, upload, edit, recall, delete, settings.
func TestFeatureHelpers(t *testing.T) {
	testnode.ForEachBackend(t, testFeatureHelpers)
}

func testFeatureHelpers(t *testing.T, be testnode.Backend) {
	n := startNode(t, be)
	alice := dial(t, n.MQTTAddr(), "alice")
	bob := dial(t, n.MQTTAddr(), "bob")

	if c, err := bob.Block(ctx(t), "alice"); err != nil || !c.Blocked {
		t.Fatalf("block: %+v %v", c, err)
	}
	if _, err := alice.SendText(ctx(t), "bob", "hi"); !errors.Is(err, sdk.ErrBlocked) {
		t.Fatalf("send while blocked: %v", err)
	}
	if _, err := bob.Unblock(ctx(t), "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.AddContact(ctx(t), "alice"); err != nil {
		t.Fatal(err)
	}
	if list, err := bob.Contacts(ctx(t)); err != nil || len(list) != 1 || !list[0].Contact {
		t.Fatalf("contacts %+v %v", list, err)
	}
	p, err := alice.Presence(ctx(t), "bob", "carol")
	if err != nil || !p[0].Online || p[1].Error == nil || p[1].Error.Code != protocol.CodeNotAllowed {
		t.Fatalf("presence %+v %v", p, err)
	}

	if err := alice.Typing(ctx(t), "bob", protocol.StateTyping); err != nil {
		t.Fatal(err)
	}
	if ev := collect(t, bob, 1)[0]; ev.Kind != sdk.KindTyping || ev.Seq != 0 || ev.User != "alice" {
		t.Fatalf("typing event %+v", ev)
	}

	up, err := alice.Upload(ctx(t), "http://"+n.HTTPAddr(), "a.txt", "text/plain", bytes.NewReader([]byte("hello")))
	if err != nil || up.Size != 5 || up.Mime != "text/plain" {
		t.Fatalf("upload %+v %v", up, err)
	}
	if _, err := alice.Upload(ctx(t), "http://"+n.HTTPAddr(), "a.html", "text/html", bytes.NewReader([]byte("<p>"))); !errors.Is(err, &sdk.Error{Code: protocol.CodeUnsupportedMedia}) {
		t.Fatalf("upload of html: %v", err)
	}
	sent, err := alice.Send(ctx(t), "bob", protocol.TypeFile, map[string]any{"url": up.URL, "name": "a.txt", "size": up.Size})
	if err != nil {
		t.Fatal(err)
	}
	collect(t, bob, 1)

	if _, err := bob.Recall(ctx(t), sent.ID); !errors.Is(err, sdk.ErrNotAllowed) {
		t.Fatalf("recall by bob: %v", err)
	}
	if m, err := alice.Edit(ctx(t), sent.ID, map[string]any{"url": up.URL, "name": "b.txt"}); err != nil || m.Body["name"] != "b.txt" {
		t.Fatalf("edit %+v %v", m, err)
	}
	if m, err := alice.Recall(ctx(t), sent.ID); err != nil || m.Type != protocol.TypeRecalled {
		t.Fatalf("recall %+v %v", m, err)
	}
	if _, err := bob.DeleteForMe(ctx(t), sent.ID+999); !errors.Is(err, sdk.ErrNotFound) {
		t.Fatalf("delete of an unknown id: %v", err)
	}
	evs := collect(t, bob, 2)
	if evs[0].Kind != sdk.KindEdit || evs[1].Kind != sdk.KindRecall {
		t.Fatalf("bob's events %+v", evs)
	}
	yes := true
	if s, err := bob.UpdateSettings(ctx(t), protocol.SettingsRequest{Conv: sent.Conv, Muted: &yes}); err != nil || !s.Muted {
		t.Fatalf("settings %+v %v", s, err)
	}
	if ev := collect(t, bob, 1)[0]; ev.Kind != sdk.KindSettings || ev.Settings == nil || !ev.Settings.Muted {
		t.Fatalf("settings event %+v", ev)
	}
}
