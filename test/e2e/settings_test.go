package e2e

import (
	"strings"
	"testing"

	"github.com/mqim/mqim/protocol"
)

// TestConversationSettings: settings follow the user to every device as a
// settings event, a device that syncs later converges, conversations
// returns them; the peer sees nothing; bad requests change nothing [IM-16].
func TestConversationSettings(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		a1 := dl.dial(t, n, "alice")
		a2 := dl.dial(t, n, "alice")
		bob := dl.dial(t, n, "bob")
		m := a1.sendOK(text("s-1", "bob", "hi"))
		for _, d := range []*device{a1, a2, bob} {
			d.nextMessage()
		}

		res := call[protocol.SettingsResult](a1, protocol.MethodSettings, protocol.SettingsRequest{Conv: m.Conv, Pinned: ptr(true), Draft: ptr("see you at")})
		if res.Conv != m.Conv || res.Settings == nil || !res.Settings.Pinned || res.Settings.Draft != "see you at" || res.Settings.Muted || res.Settings.TS == 0 {
			t.Fatalf("settings result %+v", res)
		}
		for _, d := range []*device{a1, a2} {
			ev := d.next()
			if ev.Kind != protocol.KindSettings || ev.Conv != m.Conv || ev.Seq == 0 || ev.Settings == nil || !ev.Settings.Pinned || ev.Settings.Draft != "see you at" {
				t.Fatalf("%s: settings event %v (%q)", d.id, ev, ev.In.Payload)
			}
		}
		call[protocol.SettingsResult](a2, protocol.MethodSettings, protocol.SettingsRequest{Conv: m.Conv, Muted: ptr(true), Archived: ptr(true), Draft: ptr("")})
		if ev := a1.next(); ev.Kind != protocol.KindSettings || !ev.Settings.Muted || !ev.Settings.Archived || !ev.Settings.Pinned || ev.Settings.Draft != "" {
			t.Fatalf("second settings event %v", ev)
		}

		// Bad requests.
		a1.rpcErr(protocol.MethodSettings, protocol.SettingsRequest{Conv: "d:bob:carol", Pinned: ptr(true)}, protocol.CodeNotMember)
		a1.rpcErr(protocol.MethodSettings, protocol.SettingsRequest{Conv: "bob", Pinned: ptr(true)}, protocol.CodeBadRequest)
		a1.rpcErr(protocol.MethodSettings, protocol.SettingsRequest{Conv: m.Conv}, protocol.CodeBadRequest)
		a1.rpcErr(protocol.MethodSettings, protocol.SettingsRequest{Conv: m.Conv, Draft: ptr(strings.Repeat("x", protocol.MaxDraft+1))}, protocol.CodeBadRequest)
		a1.rpcErr(protocol.MethodSettings, map[string]any{"conv": m.Conv, "pinned": "yes"}, protocol.CodeBadPayload)

		// A device that syncs later converges on the current settings.
		late := dl.dial(t, n, "alice")
		var last protocol.Event
		for _, ev := range late.syncAll(0) {
			if ev.Kind == protocol.KindSettings {
				last = ev
			}
		}
		want := protocol.ConvSettings{Pinned: true, Muted: true, Archived: true}
		if last.Settings == nil || last.Settings.Pinned != want.Pinned || last.Settings.Muted != want.Muted || last.Settings.Archived != want.Archived || last.Settings.Draft != "" {
			t.Fatalf("synced settings event %v", last)
		}
		convs := call[protocol.ConversationsResult](late, protocol.MethodConversations, protocol.ConversationsRequest{})
		if len(convs.Conversations) != 1 || convs.Conversations[0].Settings == nil || !convs.Conversations[0].Settings.Archived {
			t.Fatalf("alice's conversations %+v", convs)
		}
		// Bob: no event, no settings.
		if res := call[protocol.SyncResult](bob, protocol.MethodSync, protocol.SyncRequest{Limit: 0}); res.Latest != 1 {
			t.Fatalf("bob's inbox has %d events", res.Latest)
		}
		if c := call[protocol.ConversationsResult](bob, protocol.MethodConversations, protocol.ConversationsRequest{}); c.Conversations[0].Settings != nil {
			t.Fatalf("bob's conversation shows settings %+v", c.Conversations[0].Settings)
		}
	})
}

// §16 applies to group conversations too: a member sets them, a
// non-member gets not_member, and the settings show in conversations.
func TestGroupSettings(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		alice := dl.dial(t, n, "alice")
		dl.dial(t, n, "bob")
		carol := dl.dial(t, n, "carol")
		g := call[protocol.GroupChangeResult](alice, protocol.MethodGroupCreate, protocol.GroupRequest{Members: []string{"bob"}, Name: ptr("team")}).Group
		res := call[protocol.SettingsResult](alice, protocol.MethodSettings, protocol.SettingsRequest{Conv: g, Muted: ptr(true)})
		if res.Conv != g || !res.Settings.Muted {
			t.Fatalf("settings of a group: %+v", res)
		}
		carol.rpcErr(protocol.MethodSettings, protocol.SettingsRequest{Conv: g, Muted: ptr(true)}, protocol.CodeNotMember)
		carol.rpcErr(protocol.MethodSettings, protocol.SettingsRequest{Conv: "g:nosuchgroup", Muted: ptr(true)}, protocol.CodeNotMember)
		convs := call[protocol.ConversationsResult](alice, protocol.MethodConversations, protocol.ConversationsRequest{})
		for _, c := range convs.Conversations {
			if c.Conv == g {
				if c.Settings == nil || !c.Settings.Muted {
					t.Fatalf("group conversation settings %+v", c.Settings)
				}
				return
			}
		}
		t.Fatalf("group %s not in alice's conversations %+v", g, convs)
	})
}
