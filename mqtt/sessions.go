package mqtt

import (
	"fmt"
	"sync"

	mochi "github.com/mochi-mqtt/server/v2"

	"github.com/mqim/mqim/im"
	"github.com/mqim/mqim/protocol"
)

// Sessions maps live connections to their session: the one record of a
// connection's user, client id, role and output format, made by the auth
// hook at CONNECT and dropped at disconnect. The pipeline, delivery's
// transcoding and presence read it. Safe for concurrent use.
type Sessions struct {
	m sync.Map // *mochi.Client → *im.Session
}

// NewSession returns the session of cl for user: a panic while serving it
// closes cl.
func NewSession(cl *mochi.Client, user, role string, f protocol.Format) *im.Session {
	return &im.Session{User: user, Client: cl.ID, Role: role, Format: f, Abort: func(err error) {
		cl.Stop(fmt.Errorf("%w: %v", mochi.ErrConnectionPanic, err))
	}}
}

// Set records sess as cl's.
func (r *Sessions) Set(cl *mochi.Client, sess *im.Session) { r.m.Store(cl, sess) }

// Get returns the session of cl, or nil if cl is not (or no longer) known.
func (r *Sessions) Get(cl *mochi.Client) *im.Session {
	if v, ok := r.m.Load(cl); ok {
		return v.(*im.Session)
	}
	return nil
}

// Delete forgets cl.
func (r *Sessions) Delete(cl *mochi.Client) { r.m.Delete(cl) }
