package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"testing"

	"github.com/mqim/mqim/clients/sdk"
)

func TestParseInterleaved(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	to := fs.String("to", "", "")
	js := fs.Bool("json", false, "")
	pos, err := parse(fs, []string{"hello", "--to", "bob", "big", "--json", "world", "--", "--not-a-flag"})
	if err != nil {
		t.Fatal(err)
	}
	if *to != "bob" || !*js || !slices.Equal(pos, []string{"hello", "big", "world", "--not-a-flag"}) {
		t.Fatalf("to=%q json=%v pos=%q", *to, *js, pos)
	}
}

// Usage errors exit with ExitUsage before anything is dialled.
func TestUsageErrors(t *testing.T) {
	for _, v := range []string{"MQIM_SERVER", "MQIM_USER", "MQIM_TOKEN", "MQIM_JWT_SECRET"} {
		t.Setenv(v, "")
	}
	for _, args := range [][]string{
		{},
		{"nope"},
		{"--bogus", "send"},
		{"send", "--user", "a", "--token", "t", "hi"},                                   // no --to
		{"send", "--user", "a", "--token", "t", "--to", "b"},                            // no text
		{"send", "--token", "t", "--to", "b", "hi"},                                     // no --user
		{"send", "--user", "a", "--to", "b", "hi"},                                      // no token or secret
		{"history", "--user", "a", "--token", "t"},                                      // neither --with nor --conv
		{"send", "--user", "a", "--token", "t", "--type", "custom", "--to", "b", "[1]"}, // not an object
		{"sync", "--user", "a", "--token", "t", "--server", "http://x:1"},
		{"group", "--user", "a", "--token", "t"},                                      // no subcommand
		{"group", "frob", "--user", "a", "--token", "t"},                              // unknown subcommand
		{"group", "remove", "g:1", "--user", "a", "--token", "t"},                     // no user
		{"group", "add", "g:1", "b", "--name", "x", "--user", "a", "--token", "t"},    // --name is for create
		{"send", "--user", "a", "--token", "t", "--to", "b", "--mentions", "c", "hi"}, // mentions without --group
	} {
		var out, errOut bytes.Buffer
		err := Run(context.Background(), args, &out, &errOut)
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != ExitUsage {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}

// TestEventLines: the human line of each kind of event and message type
// says what happened, in words.
func TestEventLines(t *testing.T) {
	ts := int64(1767312000123)
	msg := func(typ string, body map[string]any) *sdk.Message {
		return &sdk.Message{ID: 42, Conv: "g:7", Seq: 3, From: "alice", Type: typ, Body: body, TS: ts}
	}
	settings := sdk.ConvSettings{Pinned: true, Draft: "hel"}
	for _, tc := range []struct {
		ev   sdk.Event
		want string
	}{
		{sdk.Event{Kind: sdk.KindMessage, Seq: 5, Conv: "g:7", ConvSeq: 3, Msg: msg("group", map[string]any{"op": "create", "name": "team", "users": []any{"bob", "carol"}})},
			`[5] g:7 #3 2026-01-02 00:00:00 alice [group] created the group "team" with bob, carol`},
		{sdk.Event{Kind: sdk.KindMessage, Seq: 5, Conv: "g:7", ConvSeq: 3, Msg: msg("group", map[string]any{"op": "add", "users": []any{"dave"}, "fanout": "read", "read_from": int64(3)})},
			`[5] g:7 #3 2026-01-02 00:00:00 alice [group] added dave (the group fans out on read from #3)`},
		{sdk.Event{Kind: sdk.KindMessage, ConvSeq: 3, Conv: "g:7", Msg: msg("group", map[string]any{"op": "role", "users": []any{"bob"}, "role": "admin"})},
			`[group] g:7 #3 2026-01-02 00:00:00 alice [group] made bob admin`},
		{sdk.Event{Kind: sdk.KindMessage, Seq: 1, Conv: "g:7", ConvSeq: 3, Msg: msg("group", map[string]any{"op": "mute", "users": []any{"bob"}, "muted": false})},
			`[1] g:7 #3 2026-01-02 00:00:00 alice [group] unmuted bob`},
		{sdk.Event{Kind: sdk.KindMessage, Seq: 1, Conv: "g:7", ConvSeq: 3, Msg: msg("image", map[string]any{"url": "/v1/media/x", "mime": "image/png", "size": uint16(2048), "name": "cat.png", "caption": "my cat"})},
			`[1] g:7 #3 2026-01-02 00:00:00 alice: [image cat.png image/png 2.0 KiB] my cat </v1/media/x>`},
		{sdk.Event{Kind: sdk.KindMessage, Seq: 1, Conv: "g:7", ConvSeq: 3, Msg: msg("location", map[string]any{"lat": 48.85, "lon": 2.35, "name": "Paris"})},
			`[1] g:7 #3 2026-01-02 00:00:00 alice: [location 48.85,2.35] Paris`},
		{sdk.Event{Kind: sdk.KindMessage, Seq: 1, Conv: "g:7", ConvSeq: 3, Msg: msg("system", map[string]any{"text": "build 42 passed"})},
			`[1] g:7 #3 2026-01-02 00:00:00 alice: [system] build 42 passed`},
		{sdk.Event{Kind: sdk.KindMessage, Seq: 1, Conv: "g:7", ConvSeq: 3, Msg: msg("recalled", map[string]any{})},
			`[1] g:7 #3 2026-01-02 00:00:00 alice recalled this message`},
		{sdk.Event{Kind: sdk.KindMessage, ConvSeq: 9, Conv: "g:7", Msg: msg("recall", map[string]any{"msg_id": "42", "conv_seq": int64(3)})},
			`[group] g:7 #9 2026-01-02 00:00:00 alice recalled #3 (id 42)`},
		{sdk.Event{Kind: sdk.KindMessage, ConvSeq: 9, Conv: "g:7", Msg: msg("edit", map[string]any{"msg_id": "42", "conv_seq": float64(3), "body": map[string]any{"text": "fixed"}})},
			`[group] g:7 #9 2026-01-02 00:00:00 alice edited #3 (id 42): fixed`},
		{sdk.Event{Kind: sdk.KindMessage, Seq: 1, Conv: "g:7", ConvSeq: 3, Msg: msg("custom", map[string]any{"k": 1})},
			`[1] g:7 #3 2026-01-02 00:00:00 alice: [custom] {"k":1}`},
		{sdk.Event{Kind: sdk.KindRecall, Seq: 8, Conv: "d:alice:bob", ConvSeq: 3, User: "alice", Msg: msg("recalled", nil)},
			`[8] d:alice:bob alice recalled #3 (id 42)`},
		{sdk.Event{Kind: sdk.KindEdit, Seq: 8, Conv: "d:alice:bob", ConvSeq: 3, User: "alice", Msg: msg("text", map[string]any{"text": "new"})},
			`[8] d:alice:bob alice edited #3 (id 42): new`},
		{sdk.Event{Kind: sdk.KindDelete, Seq: 8, Conv: "d:alice:bob", ConvSeq: 3, User: "bob", Msg: msg("text", nil)},
			`[8] d:alice:bob #3 deleted for you (id 42)`},
		{sdk.Event{Kind: sdk.KindMention, Seq: 8, Conv: "g:7", ConvSeq: 3, User: "alice", Msg: msg("text", map[string]any{"text": "hi @bob"})},
			`[8] g:7 #3 alice mentioned you: 2026-01-02 00:00:00 alice: hi @bob`},
		{sdk.Event{Kind: sdk.KindSettings, Seq: 8, Conv: "g:7", Settings: &settings},
			`[8] g:7 settings: pinned, draft "hel"`},
		{sdk.Event{Kind: sdk.KindTyping, Conv: "d:alice:bob", User: "alice", State: "paused"},
			`d:alice:bob alice stopped typing`},
		{sdk.Event{Kind: sdk.KindRead, Seq: 8, Conv: "d:alice:bob", User: "bob", ConvSeq: 3},
			`[8] d:alice:bob bob read up to #3`},
	} {
		if got := eventLine(tc.ev); got != tc.want {
			t.Errorf("%s %v:\n got %s\nwant %s", tc.ev.Kind, tc.ev.Msg, got, tc.want)
		}
	}
}

func TestMessageStripsRepeatedPrefixes(t *testing.T) {
	err := fmt.Errorf("mqim: send to bob: %w", &sdk.Error{Code: "unknown_user"})
	if got := Message(fmt.Errorf("send: %w", err)); got != "send: send to bob: unknown_user" {
		t.Fatalf("Message = %q", got)
	}
}
