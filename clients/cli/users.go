package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
)

// user runs "mqim user create USER…": POST /v1/users with an admin token
// [IM-8.1-2], so that others can send to users who never connected.
func (e *env) user(ctx context.Context, args []string) error {
	fs := e.flags("user", "create USER…")
	httpBase := httpFlag(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 || pos[0] != "create" {
		return usageErr(errors.New("user: usage: mqim user create USER… (with an admin --token, or --secret/--secret-file)"))
	}
	for _, u := range pos[1:] {
		if !protocol.ValidID(u) {
			return usageErr(fmt.Errorf("user create: %q is not a valid user id", u))
		}
	}
	base, err := e.httpBase(*httpBase)
	if err != nil {
		return err
	}
	if e.g.user == "" && e.g.token == "" {
		e.g.user = "admin" // the subject of the minted admin token
	}
	_, tok, err := e.credentials(authtoken.RoleAdmin)
	if err != nil {
		return err
	}
	for _, u := range pos[1:] {
		resp, err := httpDo(ctx, http.MethodPost, base+"/v1/users", tok, map[string]string{"id": u})
		if err != nil {
			return fmt.Errorf("user create %s: %w%s", u, err, adminHint(err))
		}
		resp.Body.Close()
		state := "created"
		if resp.StatusCode == http.StatusOK {
			state = "already existed"
		}
		if err := e.out(struct {
			ID      string `json:"id"`
			Created bool   `json:"created"`
		}{u, resp.StatusCode == http.StatusCreated}, u+" "+state); err != nil {
			return err
		}
	}
	return nil
}

func adminHint(err error) string {
	if errors.Is(err, &protocol.Error{Code: protocol.CodeNotAuthorized}) {
		return " (mint one with mqim token --role admin, or pass --secret/--secret-file)"
	}
	return ""
}
