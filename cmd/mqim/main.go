// Command mqim is the mqim command line: a chat client (send, listen, sync,
// history, conversations; see clients/cli), tokens and load tests.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mqim/mqim/clients/cli"
	"github.com/mqim/mqim/protocol/authtoken"
)

const usage = `Usage: mqim [global flags] COMMAND [flags]

Commands:
` + cli.Usage + `  token          print a token for a user (development and tests)
  bench          load-test a server (mqim bench 1to1 --help)

` + cli.GlobalUsage + `
Run "mqim COMMAND --help" for a command's flags.
`

func main() {
	if err := run(os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "mqim:", cli.Message(err))
		}
		var ee *cli.ExitError
		if errors.As(err, &ee) {
			os.Exit(ee.Code)
		}
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return &cli.ExitError{Code: cli.ExitUsage, Err: errors.New("no command given")}
	}
	if slices.Contains(cli.Commands, args[0]) || strings.HasPrefix(args[0], "-") && !slices.Contains([]string{"-h", "--help", "-help"}, args[0]) {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return cli.Run(ctx, args, os.Stdout, os.Stderr)
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
	return &cli.ExitError{Code: cli.ExitUsage, Err: fmt.Errorf("unknown command %q (mqim --help lists them)", args[0])}
}

func token(args []string) error {
	fs := flag.NewFlagSet("mqim token", flag.ContinueOnError)
	secret := fs.String("secret", os.Getenv("MQIM_JWT_SECRET"), "HS256 secret of the server (or MQIM_JWT_SECRET)")
	secretFile := fs.String("secret-file", "", "read the secret from this file (mqimd's <data-dir>/jwt-secret)")
	user := fs.String("user", "", "user id the token is for (required)")
	role := fs.String("role", "", `role: "" for a user, "admin" for the HTTP admin API, "bridge" for system notifications`)
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
	tok, err := authtoken.Mint([]byte(*secret), *user, *role, *ttl)
	if err != nil {
		return err
	}
	fmt.Println(tok)
	return nil
}
