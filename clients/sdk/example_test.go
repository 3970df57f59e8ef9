package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/mqim/mqim/clients/sdk"
	"github.com/mqim/mqim/protocol"
)

// A device connects, sends a message and prints its inbox events.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := sdk.Dial(ctx, sdk.Config{
		Server: "mqtt://localhost:1883",
		User:   "alice",
		Token:  os.Getenv("MQIM_TOKEN"), // mqim token --secret … --user alice
		Cursor: sdk.FileCursor{Path: "alice.cursor"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	sent, err := c.SendText(ctx, "bob", "hi bob")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored as", sent.Conv, "seq", sent.Seq)

	for ev := range c.Events() {
		switch ev.Kind {
		case sdk.KindMessage:
			fmt.Printf("%s: %v\n", ev.Msg.From, ev.Msg.Body["text"])
		case sdk.KindRead:
			fmt.Printf("%s read %s up to %d\n", ev.User, ev.Conv, ev.ConvSeq)
		}
	}
}

// Refusals carry the spec's error code.
func ExampleClient_Send() {
	var c *sdk.Client // from sdk.Dial
	ctx := context.Background()
	_, err := c.Send(ctx, "carol", protocol.TypeCustom, map[string]any{"kind": "location", "lat": 48.85, "lon": 2.35})
	switch {
	case errors.Is(err, sdk.ErrUnknownUser):
		fmt.Println("no such user")
	case err != nil:
		fmt.Println("failed:", err)
	}
}

// Paging backwards through a conversation.
func ExampleClient_History() {
	var c *sdk.Client // from sdk.Dial
	ctx := context.Background()
	req := sdk.HistoryRequest{With: "bob", Limit: 50}
	for {
		page, err := c.History(ctx, req)
		if err != nil {
			log.Fatal(err)
		}
		for i := len(page.Messages) - 1; i >= 0; i-- {
			m := page.Messages[i]
			fmt.Println(m.Seq, m.From, m.Body["text"])
		}
		if !page.HasMore || len(page.Messages) == 0 {
			break
		}
		req.Before = page.Messages[0].Seq
	}
}

// Unread counts and marking a conversation read.
func ExampleClient_Conversations() {
	var c *sdk.Client // from sdk.Dial
	ctx := context.Background()
	res, err := c.Conversations(ctx, 20)
	if err != nil {
		log.Fatal(err)
	}
	for _, cv := range res.Conversations {
		fmt.Println(cv.Peer, cv.Unread)
		if cv.Unread > 0 {
			if _, err := c.Read(ctx, cv.Conv, cv.LastSeq); err != nil {
				log.Fatal(err)
			}
		}
	}
}

func ExampleError() {
	err := error(&sdk.Error{Code: protocol.CodeUnknownUser, Message: "no user carol", Reason: 0x83})
	fmt.Println(errors.Is(err, sdk.ErrUnknownUser), errors.Is(err, sdk.ErrNotMember))
	var e *sdk.Error
	if errors.As(err, &e) {
		fmt.Printf("%s 0x%02x retry=%v\n", e.Code, e.Reason, e.Retryable())
	}
	// Output:
	// true false
	// unknown_user 0x83 retry=false
}

func ExampleFileCursor() {
	dir, _ := os.MkdirTemp("", "cursor")
	defer os.RemoveAll(dir)
	cur := sdk.FileCursor{Path: filepath.Join(dir, "bob.cursor")}
	ctx := context.Background()
	seq, _ := cur.Load(ctx)
	fmt.Println("new device:", seq)
	_ = cur.Save(ctx, 42)
	seq, _ = cur.Load(ctx)
	fmt.Println("after save:", seq)
	// Output:
	// new device: 0
	// after save: 42
}

func ExampleParseServer() {
	for _, s := range []string{"localhost:1883", "ws://localhost:8083", "wss://im.example.com:443/mqtt"} {
		u, err := sdk.ParseServer(s)
		fmt.Println(u, err)
	}
	// Output:
	// mqtt://localhost:1883 <nil>
	// ws://localhost:8083/mqtt <nil>
	// wss://im.example.com:443/mqtt <nil>
}
