package sdk

import (
	"context"

	"github.com/eclipse/paho.golang/paho"

	"github.com/mqim/mqim/protocol"
)

// Typing tells peer that the user is typing (state "typing") or stopped
// ("paused") [IM-15.1]. It is fire and forget (QoS 0).
func (c *Client) Typing(ctx context.Context, peer, state string) error {
	payload, err := protocol.Encode(protocol.MsgPack, protocol.Typing{To: peer, State: state})
	if err != nil {
		return err
	}
	if _, err := c.awaitConn(ctx); err != nil {
		return err
	}
	_, err = c.cm.Publish(ctx, &paho.Publish{Topic: protocol.TypingTopic(c.cfg.User), QoS: 0, Payload: payload,
		Properties: &paho.PublishProperties{ContentType: protocol.ContentTypeMsgPack}})
	return err
}
