package mqtt

import (
	"bytes"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// The presence hook reports the node's device connections to the cluster's
// routing table (delivery/routes), which is where online/offline comes from.

// Router records connected devices; owner tells connections with the same
// client id apart.
type Router interface {
	Online(user, client string, owner any)
	Offline(user, client string, owner any)
}

// Presence calls the Router when a device's session starts and ends.
type Presence struct {
	mochi.HookBase
	devices *Sessions
	router  Router
}

// New returns the hook. It must be added before the auth hook, whose
// OnDisconnect forgets the device.
func NewPresence(devices *Sessions, r Router) *Presence {
	return &Presence{devices: devices, router: r}
}

// ID names the hook.
func (h *Presence) ID() string { return "mqim-presence" }

// Provides says which events the hook handles.
func (h *Presence) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnSessionEstablished, mochi.OnDisconnect}, []byte{b})
}

// OnSessionEstablished records the device as connected here.
func (h *Presence) OnSessionEstablished(cl *mochi.Client, _ packets.Packet) {
	if d := h.devices.Get(cl); d != nil {
		h.router.Online(d.User, cl.ID, cl)
	}
}

// OnDisconnect removes the device's route.
func (h *Presence) OnDisconnect(cl *mochi.Client, _ error, _ bool) {
	if d := h.devices.Get(cl); d != nil {
		h.router.Offline(d.User, cl.ID, cl)
	}
}
