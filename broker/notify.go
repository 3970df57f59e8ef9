package broker

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mqim/mqim/hooks/auth"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// notifyRequest is the body of POST /v1/notifications [IM-8.1-6].
type notifyRequest struct {
	To   string         `json:"to"`
	Cmid string         `json:"cmid"`
	Type string         `json:"type"`
	Body map[string]any `json:"body"`
	From string         `json:"from"` // admin tokens only; zero: the token's subject
}

// notify stores a system notification and delivers it, like a bridge's
// publish on im/v1/sys/notify [IM-4.6], for an admin or bridge token
// [IM-8.1-6]. It goes to the store directly, beside the send pipeline's
// committer: its events may reach a device out of order with the
// committer's, which the device repairs with sync like any gap [IM-5.2].
func (n *Node) notify(w http.ResponseWriter, r *http.Request) {
	claims, ok := n.token(w, r, auth.RoleAdmin, auth.RoleBridge)
	if !ok {
		return
	}
	var req notifyRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4*int64(n.maxBody())+4096)).Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, protocol.CodeBadPayload, `body must be JSON {"to": USER, "cmid": ID, "body": {…}}`)
		return
	}
	from := claims.Subject
	if req.From != "" {
		if claims.Role != auth.RoleAdmin && req.From != claims.Subject {
			httpError(w, http.StatusForbidden, protocol.CodeNotAuthorized, "a bridge sends as itself: leave out from")
			return
		}
		from = req.From
	}
	if req.Type == "" {
		req.Type = protocol.TypeSystem
	}
	if req.Cmid == "" {
		req.Cmid = randomCmid()
	}
	switch {
	case !protocol.ValidID(from):
		httpError(w, http.StatusBadRequest, protocol.CodeBadRequest, "from must be a user id")
		return
	case !protocol.ValidID(req.To) || req.To == from:
		httpError(w, http.StatusBadRequest, protocol.CodeBadRequest, "to must be a user id other than the sender")
		return
	case len(req.Cmid) > 64:
		httpError(w, http.StatusBadRequest, protocol.CodeBadRequest, "cmid must be 1 to 64 characters")
		return
	case req.Type != protocol.TypeSystem:
		httpError(w, http.StatusBadRequest, protocol.CodeBadRequest, `a notification has type "system"`)
		return
	case req.Body == nil:
		httpError(w, http.StatusBadRequest, protocol.CodeBadRequest, "body must be an object")
		return
	}
	body, err := protocol.Encode(protocol.MsgPack, req.Body)
	if err != nil {
		httpError(w, http.StatusBadRequest, protocol.CodeBadPayload, "body cannot be encoded")
		return
	}
	if len(body) > n.maxBody() {
		httpError(w, http.StatusRequestEntityTooLarge, protocol.CodeTooLarge, "body is "+strconv.Itoa(len(body))+" bytes, the limit is "+strconv.Itoa(n.maxBody()))
		return
	}
	d := sha256.New() // as the send pipeline computes it, for cmid conflicts
	for _, part := range [][]byte{[]byte(req.To), []byte(req.Type), body} {
		d.Write(part)
		d.Write([]byte{0})
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := n.cfg.Store.EnsureUser(ctx, from, ""); err != nil {
		n.log.Warn("notification: sender not created", "from", from, "error", err)
		httpError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "store unavailable, retry with the same cmid")
		return
	}
	results, err := n.cfg.Store.Append(ctx, []store.SendRequest{{
		ID: n.ids.Next(), From: from, Cmid: req.Cmid, To: req.To, Type: req.Type,
		Body: body, Digest: d.Sum(nil), TS: time.Now().UnixMilli(),
	}})
	if err == nil && len(results) != 1 {
		err = errors.New("store returned no result")
	}
	if err != nil {
		n.log.Warn("notification not stored", "from", from, "to", req.To, "error", err)
		httpError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "notification not stored, retry with the same cmid")
		return
	}
	res := results[0]
	switch {
	case errors.Is(res.Err, store.ErrUnknownUser):
		httpError(w, http.StatusNotFound, protocol.CodeUnknownUser, "the recipient does not exist")
		return
	case errors.Is(res.Err, store.ErrCmidConflict):
		httpError(w, http.StatusConflict, protocol.CodeCmidConflict, "this cmid was already used for a different notification")
		return
	case res.Err != nil:
		n.log.Error("store refused a notification", "from", from, "error", res.Err)
		httpError(w, http.StatusInternalServerError, protocol.CodeInternal, "notification not stored")
		return
	}
	if len(res.Events) > 0 {
		n.deliver.Deliver(res.Events)
	}
	status := http.StatusCreated
	if res.Duplicate {
		status = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"id": strconv.FormatInt(res.Msg.ID, 10), "conv": res.Msg.Conv, "seq": res.Msg.Seq, "cmid": req.Cmid, "duplicate": res.Duplicate,
	})
}

func (n *Node) maxBody() int {
	if n.cfg.MaxBody > 0 {
		return n.cfg.MaxBody
	}
	return 16 << 10
}

// token checks for a token with one of roles, answering the request if
// there is none.
func (n *Node) token(w http.ResponseWriter, r *http.Request, roles ...string) (*auth.Claims, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		httpError(w, http.StatusUnauthorized, protocol.CodeNotAuthorized, "send a token as Authorization: Bearer <token>")
		return nil, false
	}
	claims, err := auth.Verify(n.cfg.Secret, tok, "")
	if err != nil {
		httpError(w, http.StatusUnauthorized, protocol.CodeNotAuthorized, "invalid token")
		return nil, false
	}
	for _, role := range roles {
		if claims.Role == role {
			return claims, true
		}
	}
	httpError(w, http.StatusForbidden, protocol.CodeNotAuthorized, "a token with role "+strings.Join(roles, " or ")+" is required")
	return nil, false
}

func randomCmid() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "n-" + hex.EncodeToString(b[:])
}
