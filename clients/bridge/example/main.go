// Command example is a minimal bridge: it reads lines "USER TEXT" from
// standard input and posts each as a system notification to USER from
// the bridge account, over MQTT [IM-4.6]. For instance, to tell alice
// that a build passed:
//
//	echo "alice build 42 passed" | go run ./clients/bridge/example \
//	    --server 127.0.0.1:1883 --user ci.bot --secret-file data/jwt-secret
//
// With --group GID every line is TEXT, posted to the group g:GID instead
// (the bridge need not be a member), for instance a deploy notice:
//
//	echo "v1.7 deployed" | go run ./clients/bridge/example \
//	    --server 127.0.0.1:1883 --user ci.bot --secret-file data/jwt-secret --group 362388381503488
//
// With --secret it mints its own bridge token (development); otherwise give
// --token (or MQIM_TOKEN) with role "bridge" (mqim token --role bridge).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/mqim/mqim/clients/bridge"
	"github.com/mqim/mqim/protocol/authtoken"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bridge:", err)
		os.Exit(1)
	}
}

func run() error {
	server := flag.String("server", "127.0.0.1:1883", "mqimd's MQTT address")
	user := flag.String("user", "bridge", "the bridge account")
	token := flag.String("token", os.Getenv("MQIM_TOKEN"), "a token with role bridge (or MQIM_TOKEN)")
	secret := flag.String("secret", "", "mint the token with this secret instead")
	secretFile := flag.String("secret-file", "", "mint the token with the secret in this file (mqimd's <data-dir>/jwt-secret)")
	group := flag.String("group", "", "post every line (TEXT) to this group (GID or g:GID) instead of to users")
	flag.Parse()
	if *group != "" && !strings.HasPrefix(*group, "g:") {
		*group = "g:" + *group
	}
	if *secretFile != "" {
		b, err := os.ReadFile(*secretFile)
		if err != nil {
			return err
		}
		*secret = strings.TrimSpace(string(b))
	}
	if *secret != "" {
		t, err := authtoken.Mint([]byte(*secret), *user, authtoken.RoleBridge, time.Hour)
		if err != nil {
			return err
		}
		*token = t
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	b, err := bridge.Dial(ctx, bridge.Config{Server: *server, User: *user, Token: *token})
	if err != nil {
		return err
	}
	defer b.Close()
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	sc := bufio.NewScanner(os.Stdin)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		var (
			sent bridge.Sent
			err  error
			to   = *group
			cmid = run + "-" + strconv.Itoa(n)
		)
		if *group != "" {
			if line == "" {
				continue
			}
			sent, err = b.NotifyGroup(ctx, *group, cmid, map[string]any{"text": line})
		} else {
			var text string
			var ok bool
			if to, text, ok = strings.Cut(line, " "); !ok || text == "" {
				fmt.Fprintf(os.Stderr, "line %d: want USER TEXT\n", n)
				continue
			}
			sent, err = b.Notify(ctx, to, cmid, map[string]any{"text": text})
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		fmt.Printf("%s %s seq %d\n", to, sent.Conv, sent.Seq)
	}
	return sc.Err()
}
