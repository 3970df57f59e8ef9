package sdk

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/mqim/mqim/protocol"
)

// Wire types of the RPC results, as the protocol package defines them.
type (
	Event               = protocol.Event
	Message             = protocol.Message
	SyncResult          = protocol.SyncResult
	HistoryRequest      = protocol.HistoryRequest
	HistoryResult       = protocol.HistoryResult
	Conversation        = protocol.Conversation
	ConversationsResult = protocol.ConversationsResult
	ReadResult          = protocol.ReadResult
)

// Sync returns up to limit (0–1000) inbox events after seq after [IM-7.3].
// It is the raw RPC: it does not touch the client's cursor or the Events
// stream, which sync by themselves.
func (c *Client) Sync(ctx context.Context, after int64, limit int) (SyncResult, error) {
	return call[SyncResult](ctx, c, protocol.MethodSync, protocol.SyncRequest{After: after, Limit: limit})
}

// History returns a page of a conversation's messages [IM-7.4]: set Conv
// or With (the peer of a direct conversation), and Before/After/Limit to
// page.
func (c *Client) History(ctx context.Context, req HistoryRequest) (HistoryResult, error) {
	return call[HistoryResult](ctx, c, protocol.MethodHistory, req)
}

// Conversations returns the user's conversations, most recent first, at
// most limit (0: the server's default) [IM-7.5].
func (c *Client) Conversations(ctx context.Context, limit int) (ConversationsResult, error) {
	return call[ConversationsResult](ctx, c, protocol.MethodConversations, protocol.ConversationsRequest{Limit: limit})
}

// Read moves the user's read position in conv forward to seq [IM-7.6].
func (c *Client) Read(ctx context.Context, conv string, seq int64) (ReadResult, error) {
	return call[ReadResult](ctx, c, protocol.MethodRead, protocol.ReadRequest{Conv: conv, Seq: seq})
}

// ReadMany reports several read positions in one request [IM-7.6-4]; the
// server coalesces entries of one conversation. One result per
// conversation, in the order of first appearance.
func (c *Client) ReadMany(ctx context.Context, reads ...protocol.ReadItem) ([]ReadResult, error) {
	res, err := call[protocol.ReadBatchResult](ctx, c, protocol.MethodRead, protocol.ReadRequest{Reads: reads})
	return res.Reads, err
}

// response is an RPC response with its result decoded as T [IM-7.2-1].
type response[T any] struct {
	ID     string          `json:"id" msgpack:"id"`
	OK     bool            `json:"ok" msgpack:"ok"`
	Result T               `json:"result" msgpack:"result"`
	Error  *protocol.Error `json:"error" msgpack:"error"`
}

// call performs an RPC: the request goes out QoS 1 with the Response Topic
// (the client's reply topic, subscribed on every connect) and a fresh
// Correlation Data [IM-7.1-2]; the waiter is registered before the publish,
// so a response that overtakes the PUBACK is not lost. An attempt that gets
// no response within RequestTimeout, or whose connection drops, is repeated
// (every v1 method is safe to repeat [IM-7.1-6]) until ctx ends.
func call[T any](ctx context.Context, c *Client, method string, params any) (T, error) {
	var zero T
	payload, err := protocol.Encode(protocol.MsgPack, params)
	if err != nil {
		return zero, fmt.Errorf("mqim: %s: %w", method, err)
	}
	var last error
	for attempt := 0; ; attempt++ {
		cn, err := c.awaitConn(ctx)
		if err != nil {
			return zero, c.stopErr(method, err, last)
		}
		p, err := c.roundTrip(ctx, cn, method, payload)
		if err == nil {
			var r response[T]
			if err := protocol.Decode(protocol.Detect(p.Payload, contentType(p)), p.Payload, &r); err != nil {
				return zero, fmt.Errorf("mqim: %s: bad response: %w", method, err)
			}
			if !r.OK {
				e := &Error{Code: protocol.CodeInternal, Message: "response without error"}
				if r.Error != nil {
					e = &Error{Code: r.Error.Code, Message: r.Error.Message, RetryAfter: time.Duration(r.Error.RetryAfterMs) * time.Millisecond}
				}
				if !e.Retryable() || attempt >= maxInternalRetries && e.Code == protocol.CodeInternal {
					return zero, e
				}
				err = e
			} else {
				return r.Result, nil
			}
		}
		var refused *Error
		if errors.As(err, &refused) && !refused.Retryable() {
			return zero, refused
		}
		last = err
		c.log.Debug("mqim: RPC attempt failed; retrying", "method", method, "error", err)
		delay := retryDelay(attempt)
		if refused != nil {
			delay = max(delay, refused.RetryAfter) // rate_limited [IM-1.3-6]
		}
		if !sleep(ctx, delay) {
			return zero, c.stopErr(method, ctx.Err(), last)
		}
	}
}

// roundTrip publishes one request on cn and waits for its response.
func (c *Client) roundTrip(ctx context.Context, cn *conn, method string, payload []byte) (*paho.Publish, error) {
	ch := make(chan *paho.Publish, 1)
	c.rpcMu.Lock()
	c.corr++
	corr := strconv.FormatUint(c.corr, 36)
	c.waiters[corr] = ch
	c.rpcMu.Unlock()
	defer func() {
		c.rpcMu.Lock()
		delete(c.waiters, corr)
		c.rpcMu.Unlock()
	}()

	actx, cancel := c.attempt(ctx, cn)
	defer cancel()
	resp, err := c.cm.Publish(actx, &paho.Publish{
		QoS:     1,
		Topic:   protocol.RPCTopic(c.cfg.User, method),
		Payload: payload,
		Properties: &paho.PublishProperties{
			ContentType:     protocol.ContentTypeMsgPack,
			ResponseTopic:   c.replyTopic,
			CorrelationData: []byte(corr),
		},
	})
	if resp != nil && resp.ReasonCode >= 0x80 {
		return nil, pubackError(resp) // refused [IM-7.1-3]
	}
	if err != nil {
		return nil, err
	}
	select {
	case p := <-ch:
		return p, nil
	case <-actx.Done():
		return nil, fmt.Errorf("no response: %w", actx.Err())
	}
}

// onReply hands a response to the call waiting for its Correlation Data;
// responses nobody waits for (late, duplicate) are dropped [IM-7.1-6].
func (c *Client) onReply(p *paho.Publish) {
	if p.Properties == nil || len(p.Properties.CorrelationData) == 0 {
		return
	}
	c.rpcMu.Lock()
	ch := c.waiters[string(p.Properties.CorrelationData)]
	c.rpcMu.Unlock()
	if ch != nil {
		select {
		case ch <- p:
		default: // a duplicate
		}
	}
}

func contentType(p *paho.Publish) string {
	if p.Properties == nil {
		return ""
	}
	return p.Properties.ContentType
}
