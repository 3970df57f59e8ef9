package sdk

import (
	"context"

	"github.com/mqim/mqim/protocol"
)

// ConvSettings are the user's own settings of a conversation [IM-16].
type ConvSettings = protocol.ConvSettings

// UpdateSettings changes the user's settings of a conversation; nil fields
// stay. Every device of the user gets a settings event [IM-16.2].
func (c *Client) UpdateSettings(ctx context.Context, req protocol.SettingsRequest) (ConvSettings, error) {
	res, err := call[protocol.SettingsResult](ctx, c, protocol.MethodSettings, req)
	if err != nil || res.Settings == nil {
		return ConvSettings{}, err
	}
	return *res.Settings, nil
}
