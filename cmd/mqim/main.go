// Command mqim is the mqim command line: tokens now, a chat client later.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/mqim/mqim/hooks/auth"
)

const usage = `Usage: mqim COMMAND [flags]

Commands:
  token   print a token for a user (development and tests)
  bench   load-test a server (mqim bench 1to1 --help)

Run "mqim COMMAND --help" for a command's flags.
`

func main() {
	if err := run(os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "mqim:", err)
		}
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "token":
		return token(args[1:])
	case "bench":
		return benchCmd(args[1:])
	case "-h", "--help", "help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func token(args []string) error {
	fs := flag.NewFlagSet("mqim token", flag.ContinueOnError)
	secret := fs.String("secret", os.Getenv("MQIM_JWT_SECRET"), "HS256 secret of the server (or MQIM_JWT_SECRET)")
	secretFile := fs.String("secret-file", "", "read the secret from this file (mqimd's <data-dir>/jwt-secret)")
	user := fs.String("user", "", "user id the token is for (required)")
	role := fs.String("role", "", `role: "" for a user, "admin" for the HTTP admin API`)
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *secretFile != "" {
		b, err := os.ReadFile(*secretFile)
		if err != nil {
			return fmt.Errorf("read secret: %w", err)
		}
		*secret = strings.TrimSpace(string(b))
	}
	switch {
	case *secret == "":
		return errors.New("token: give --secret or --secret-file")
	case *user == "":
		return errors.New("token: give --user")
	case *ttl <= 0:
		return errors.New("token: --ttl must be positive")
	}
	tok, err := auth.Mint([]byte(*secret), *user, *role, *ttl)
	if err != nil {
		return err
	}
	fmt.Println(tok)
	return nil
}
