// SPDX-License-Identifier: MIT
// SPDX-FileCopyrightText: 2023 mochi-mqtt, mochi-co
// SPDX-FileContributor: mochi-co

package mqtt

import (
	"sort"
	"sync"
	"sync/atomic"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Inflight is a map of InflightMessage keyed on packet id.
type Inflight struct {
	sync.RWMutex
	internal            map[uint16]packets.Packet // internal contains the inflight packets
	receiveQuota        int32                     // remaining inbound qos quota for flow control
	sendQuota           int32                     // remaining outbound qos quota for flow control
	maximumReceiveQuota int32                     // maximum allowed receive quota
	maximumSendQuota    int32                     // maximum allowed send quota
	held                []uint16                  // mqim patch: ids held for send quota, oldest first
}

// NewInflights returns a new instance of an Inflight packets map.
func NewInflights() *Inflight {
	return &Inflight{
		internal: map[uint16]packets.Packet{},
	}
}

// Set adds or updates an inflight packet by packet id.
func (i *Inflight) Set(m packets.Packet) bool {
	i.Lock()
	defer i.Unlock()

	_, ok := i.internal[m.PacketID]
	i.internal[m.PacketID] = m
	return !ok
}

// Get returns an inflight packet by packet id.
func (i *Inflight) Get(id uint16) (packets.Packet, bool) {
	i.RLock()
	defer i.RUnlock()

	if m, ok := i.internal[id]; ok {
		return m, true
	}

	return packets.Packet{}, false
}

// Len returns the size of the inflight messages map.
func (i *Inflight) Len() int {
	i.RLock()
	defer i.RUnlock()
	return len(i.internal)
}

// Clone returns a new instance of Inflight with the same message data.
// This is used when transferring inflights from a taken-over session.
func (i *Inflight) Clone() *Inflight {
	c := NewInflights()
	i.RLock()
	defer i.RUnlock()
	for k, v := range i.internal {
		c.internal[k] = v
	}
	c.held = append([]uint16(nil), i.held...) // mqim patch
	return c
}

// GetAll returns all the inflight messages.
func (i *Inflight) GetAll(immediate bool) []packets.Packet {
	i.RLock()
	defer i.RUnlock()

	m := []packets.Packet{}
	for _, v := range i.internal {
		if !immediate || (immediate && v.Expiry < 0) {
			m = append(m, v)
		}
	}

	sort.Slice(m, func(i, j int) bool {
		return uint16(m[i].Created) < uint16(m[j].Created)
	})

	return m
}

// Hold adds an inflight packet that waits for send quota (mqim patch: held
// packets are sent in the order they were held).
func (i *Inflight) Hold(m packets.Packet) {
	i.Lock()
	defer i.Unlock()
	m.Expiry = -1
	i.internal[m.PacketID] = m
	i.held = append(i.held, m.PacketID)
}

// Reissue moves the in-flight packet with id old to id next, keeping its
// place among the held packets if it waits for send quota (mqim patch: for
// a hook that frees a packet id the client reuses, see BROKER-NOTES). held
// says whether it still waits: only a packet that was sent may be written
// again now, or the client's Receive Maximum would be exceeded.
func (i *Inflight) Reissue(old, next uint16) (pk packets.Packet, held, ok bool) {
	i.Lock()
	defer i.Unlock()
	pk, ok = i.internal[old]
	if !ok || pk.FixedHeader.Type != packets.Publish {
		return packets.Packet{}, false, false
	}
	delete(i.internal, old)
	pk.PacketID = next
	pk.FixedHeader.Dup = false
	i.internal[next] = pk
	held = pk.Expiry < 0
	if held {
		for j, id := range i.held {
			if id == old {
				i.held[j] = next
			}
		}
	}
	return pk, held, true
}

// Holding reports whether any packet waits for send quota (mqim patch).
func (i *Inflight) Holding() bool {
	i.RLock()
	defer i.RUnlock()
	return len(i.held) > 0
}

// NextImmediate returns the oldest held packet and marks it sent; it stays
// in flight until acknowledged.
//
// mqim patch: v2.7.9 took the read lock here and again in GetAll (a writer
// queued between the two deadlocked the client), picked the packet by whole
// seconds with an unstable sort, and its caller deleted the packet from the
// in-flight map once written, so the client's PUBACK never returned the
// send quota: after Receive Maximum held packets the client got nothing more.
func (i *Inflight) NextImmediate() (packets.Packet, bool) {
	i.Lock()
	defer i.Unlock()
	for len(i.held) > 0 {
		id := i.held[0]
		i.held = i.held[1:]
		if pk, ok := i.internal[id]; ok && pk.Expiry < 0 {
			pk.Expiry = 0
			i.internal[id] = pk
			return pk, true
		}
	}
	return packets.Packet{}, false
}

// Delete removes an in-flight message from the map. Returns true if the message existed.
func (i *Inflight) Delete(id uint16) bool {
	i.Lock()
	defer i.Unlock()

	_, ok := i.internal[id]
	delete(i.internal, id)

	return ok
}

// TakeRecieveQuota reduces the receive quota by 1.
func (i *Inflight) DecreaseReceiveQuota() {
	if atomic.LoadInt32(&i.receiveQuota) > 0 {
		atomic.AddInt32(&i.receiveQuota, -1)
	}
}

// TakeRecieveQuota increases the receive quota by 1.
func (i *Inflight) IncreaseReceiveQuota() {
	if atomic.LoadInt32(&i.receiveQuota) < atomic.LoadInt32(&i.maximumReceiveQuota) {
		atomic.AddInt32(&i.receiveQuota, 1)
	}
}

// ResetReceiveQuota resets the receive quota to the maximum allowed value.
func (i *Inflight) ResetReceiveQuota(n int32) {
	atomic.StoreInt32(&i.receiveQuota, n)
	atomic.StoreInt32(&i.maximumReceiveQuota, n)
}

// DecreaseSendQuota reduces the send quota by 1.
func (i *Inflight) DecreaseSendQuota() {
	if atomic.LoadInt32(&i.sendQuota) > 0 {
		atomic.AddInt32(&i.sendQuota, -1)
	}
}

// IncreaseSendQuota increases the send quota by 1.
func (i *Inflight) IncreaseSendQuota() {
	if atomic.LoadInt32(&i.sendQuota) < atomic.LoadInt32(&i.maximumSendQuota) {
		atomic.AddInt32(&i.sendQuota, 1)
	}
}

// ResetSendQuota resets the send quota to the maximum allowed value.
func (i *Inflight) ResetSendQuota(n int32) {
	atomic.StoreInt32(&i.sendQuota, n)
	atomic.StoreInt32(&i.maximumSendQuota, n)
}
