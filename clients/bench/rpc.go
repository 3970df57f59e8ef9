package bench

import (
	"context"
	"fmt"
	"strconv"

	"github.com/eclipse/paho.golang/paho"

	"github.com/mqim/mqim/protocol"
)

// call makes one RPC on c (whose handler is r.reply) and decodes its result.
func (r *run) call(ctx context.Context, c *paho.Client, user, replyTopic, method string, req, result any) error {
	payload, err := protocol.Encode(protocol.MsgPack, req)
	if err != nil {
		return err
	}
	corr := method + "." + strconv.FormatInt(r.rpcSeq.Add(1), 36)
	ch := make(chan *paho.Publish, 1)
	r.rpcs.Store(corr, ch)
	defer r.rpcs.Delete(corr)
	cctx, cancel := context.WithTimeout(ctx, packetTimeout)
	defer cancel()
	if _, err := c.Publish(cctx, &paho.Publish{QoS: 1, Topic: protocol.RPCTopic(user, method), Payload: payload,
		Properties: &paho.PublishProperties{ContentType: protocol.ContentTypeMsgPack, ResponseTopic: replyTopic, CorrelationData: []byte(corr)}}); err != nil {
		return fmt.Errorf("%s: %s: %w", user, method, err)
	}
	var reply *paho.Publish
	select {
	case reply = <-ch:
	case <-cctx.Done():
		return fmt.Errorf("%s: no %s response: %w", user, method, cctx.Err())
	}
	var resp struct {
		OK     bool            `msgpack:"ok" json:"ok"`
		Result any             `msgpack:"result" json:"result"`
		Error  *protocol.Error `msgpack:"error" json:"error"`
	}
	resp.Result = result
	if err := protocol.Decode(protocol.Detect(reply.Payload, contentTypeOf(reply)), reply.Payload, &resp); err != nil {
		return fmt.Errorf("%s: %s response: %w", user, method, err)
	}
	if !resp.OK {
		return fmt.Errorf("%s: %s: %v", user, method, resp.Error)
	}
	return nil
}

// reply handles what c (whose handler is r.reply) receives: RPC responses.
func (r *run) reply(pr paho.PublishReceived) (bool, error) {
	if p := pr.Packet.Properties; p != nil {
		if ch, ok := r.rpcs.Load(string(p.CorrelationData)); ok {
			select {
			case ch.(chan *paho.Publish) <- pr.Packet:
			default:
			}
		}
	}
	return true, nil
}
