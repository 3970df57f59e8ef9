package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/mqim/mqim/im"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
	"github.com/mqim/mqim/store"
)

// notifyRequest is the body of POST /v1/notifications [IM-8.1-6].
type notifyRequest struct {
	To       string         `json:"to"`
	Group    string         `json:"group"` // instead of to: a group [IM-4.6-5]
	Cmid     string         `json:"cmid"`
	Type     string         `json:"type"`
	Body     map[string]any `json:"body"`
	Mentions []string       `json:"mentions"` // group notifications only
	From     string         `json:"from"`     // admin tokens only; zero: the token's subject
}

// notify stores a system notification and delivers it, like a bridge's
// publish on im/v1/sys/notify [IM-4.6], for an admin or bridge token
// [IM-8.1-6]. It goes through the send pipeline's committer (submit).
func (a *API) notify(w http.ResponseWriter, r *http.Request) {
	claims, ok := a.cfg.Auth.Authorize(w, r, authtoken.RoleAdmin, authtoken.RoleBridge)
	if !ok {
		return
	}
	var req notifyRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4*int64(a.cfg.MaxBody)+4096)).Decode(&req); err != nil {
		Error(w, http.StatusBadRequest, protocol.CodeBadPayload, `body must be JSON {"to": USER, "cmid": ID, "body": {…}}`)
		return
	}
	from := claims.Subject
	if req.From != "" {
		if claims.Role != authtoken.RoleAdmin && req.From != claims.Subject {
			Error(w, http.StatusForbidden, protocol.CodeNotAuthorized, "a bridge sends as itself: leave out from")
			return
		}
		from = req.From
	}
	if req.Cmid == "" {
		req.Cmid = randomCmid()
	}
	if !protocol.ValidID(from) {
		Error(w, http.StatusBadRequest, protocol.CodeBadRequest, "from must be a user id")
		return
	}
	// The same validation as a bridge's publish on im/v1/sys/notify.
	sreq, pe := a.cfg.Core.ValidateSend(from, protocol.Send{Cmid: req.Cmid, To: req.To, Group: req.Group, Type: req.Type,
		Body: req.Body, Mentions: req.Mentions}, true)
	if pe != nil {
		Error(w, Status(pe.Code), pe.Code, pe.Message)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := a.cfg.Users.EnsureUser(ctx, from, ""); err != nil {
		a.cfg.Log.Warn("notification: sender not created", "from", from, "error", err)
		Error(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "store unavailable, retry with the same cmid")
		return
	}
	// Through the committer, like an MQTT send: ordered with the sends
	// around it, block-checked, delivered here, to other nodes and on the
	// group topic.
	res := a.cfg.Core.Submit(ctx, &im.Session{User: from, Role: claims.Role}, sreq)
	if pe := res.Err; pe != nil {
		Error(w, Status(pe.Code), pe.Code, pe.Message)
		return
	}
	notified(w, req.Cmid, &res)
	if !res.Duplicate {
		// Ids only: never the body [IM-8.3-6].
		target, detail := req.To, fmt.Sprintf("id=%d cmid=%s type=%s from=%s", res.Msg.ID, req.Cmid, req.Type, from)
		if req.Group != "" {
			target = req.Group
		}
		_ = a.cfg.Accounts.Record(ctx, actor(claims, r), store.AuditNotificationSent, target, detail)
	}
}

// notified answers a stored notification [IM-8.1-6].
func notified(w http.ResponseWriter, cmid string, res *im.SendOutcome) {
	status := http.StatusCreated
	if res.Duplicate {
		status = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"id": strconv.FormatInt(res.Msg.ID, 10), "conv": res.Msg.Conv, "seq": res.Msg.Seq, "cmid": cmid, "duplicate": res.Duplicate,
	})
}

func randomCmid() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "n-" + hex.EncodeToString(b[:])
}
