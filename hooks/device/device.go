// Package device keeps what the node knows about each connected device
// (MQTT client): its user and the payload format it reads. The auth hook
// fills it on connect; the send pipeline and delivery read it.
package device

import (
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/mqim/mqim/protocol"
)

// Device is a connected, authenticated MQTT client.
type Device struct {
	User   string
	Format protocol.Format // what the server writes to it [IM-1.2-3]
	Role   string          // the token's role claim: "" (user), "admin" or "bridge" [IM-3.1-3]
	// IssuedAt is the token's iat (unix seconds): a revocation of the
	// user's tokens ends the session if it is earlier [IM-3.1-8].
	IssuedAt int64
}

// Registry maps live clients to their Device. Safe for concurrent use.
type Registry struct {
	m sync.Map // *mqtt.Client → *Device
}

// Set records cl as dev.
func (r *Registry) Set(cl *mqtt.Client, dev *Device) { r.m.Store(cl, dev) }

// Get returns the device of cl, or nil if cl is not (or no longer) known.
func (r *Registry) Get(cl *mqtt.Client) *Device {
	if v, ok := r.m.Load(cl); ok {
		return v.(*Device)
	}
	return nil
}

// Delete forgets cl.
func (r *Registry) Delete(cl *mqtt.Client) { r.m.Delete(cl) }
