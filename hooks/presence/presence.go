// Package presence reports the node's device connections to the cluster's
// routing table (sync/routes), which is where online/offline comes from.
package presence

import (
	"bytes"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	imqtt "github.com/mqim/mqim/mqtt"
)

// Router records connected devices; owner tells connections with the same
// client id apart.
type Router interface {
	Online(user, client string, owner any)
	Offline(user, client string, owner any)
}

// Hook calls the Router when a device's session starts and ends.
type Hook struct {
	mqtt.HookBase
	devices *imqtt.Sessions
	router  Router
}

// New returns the hook. It must be added before the auth hook, whose
// OnDisconnect forgets the device.
func New(devices *imqtt.Sessions, r Router) *Hook {
	return &Hook{devices: devices, router: r}
}

// ID names the hook.
func (h *Hook) ID() string { return "mqim-presence" }

// Provides says which events the hook handles.
func (h *Hook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnSessionEstablished, mqtt.OnDisconnect}, []byte{b})
}

// OnSessionEstablished records the device as connected here.
func (h *Hook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	if d := h.devices.Get(cl); d != nil {
		h.router.Online(d.User, cl.ID, cl)
	}
}

// OnDisconnect removes the device's route.
func (h *Hook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	if d := h.devices.Get(cl); d != nil {
		h.router.Offline(d.User, cl.ID, cl)
	}
}
