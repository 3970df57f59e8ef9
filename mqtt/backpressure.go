package mqtt

import (
	"bytes"
	"errors"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"
)

// NewBackpressure returns the hook that counts what a device that stops
// reading costs [IM-5.2-8]: deliveries dropped because its bounded outbound
// queue was full (it sees the seq gap and syncs), and connections closed
// because their socket took nothing for the write timeout. mochi does the
// dropping and the closing (third_party/mochi: a write deadline on every
// socket write; packet ids allocated off the write lock, so that publishing
// to a stuck device never waits for it).
func NewBackpressure(reg prometheus.Registerer) mochi.Hook {
	h := &backpressure{
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mqim_delivery_dropped_total", Help: "Deliveries dropped because the device's outbound queue was full (the device syncs).",
			ConstLabels: prometheus.Labels{"reason": "device_queue_full"}}),
		stuck: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mqim_delivery_stuck_disconnects_total", Help: "Device connections closed because their socket accepted nothing for the write timeout."}),
	}
	if reg != nil {
		reg.MustRegister(h.dropped, h.stuck)
	}
	return h
}

type backpressure struct {
	mochi.HookBase
	dropped, stuck prometheus.Counter
}

func (h *backpressure) ID() string { return "mqim-backpressure" }

func (h *backpressure) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnPublishDropped, mochi.OnDisconnect}, []byte{b})
}

func (h *backpressure) OnPublishDropped(*mochi.Client, packets.Packet) { h.dropped.Inc() }

func (h *backpressure) OnDisconnect(cl *mochi.Client, _ error, _ bool) {
	if errors.Is(cl.StopCause(), mochi.ErrClientWriteTimeout) {
		h.stuck.Inc()
	}
}
