package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"slices"
	"testing"
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
