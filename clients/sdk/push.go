package sdk

import (
	"context"

	"github.com/mqim/mqim/protocol"
)

// Push registration types [IM-17.1].
type (
	PushRegistration = protocol.PushRegisterRequest
	PushDevice       = protocol.PushDevice
)

// RegisterPush registers this connection's device (its client id) for
// offline push: platform "apns", "fcm" or "webhook", the provider's token,
// the app (the APNs topic), the APNs environment and a locale [IM-17.1].
func (c *Client) RegisterPush(ctx context.Context, r PushRegistration) (PushDevice, error) {
	return call[PushDevice](ctx, c, protocol.MethodPushRegister, r)
}

// UnregisterPush removes this device's registration; false if it had none.
func (c *Client) UnregisterPush(ctx context.Context) (bool, error) {
	res, err := call[protocol.PushUnregisterResult](ctx, c, protocol.MethodPushUnregister, struct{}{})
	return res.Removed, err
}

// PushDevices lists the user's registrations (tokens are not returned).
func (c *Client) PushDevices(ctx context.Context) ([]PushDevice, error) {
	res, err := call[protocol.PushListResult](ctx, c, protocol.MethodPushList, struct{}{})
	return res.Devices, err
}
