package server

import (
	"context"
	"errors"
	"time"

	"github.com/mqim/mqim/im"
	"github.com/mqim/mqim/moderation"
)

// Defaults of Moderation.
const (
	DefaultModerationMask     = moderation.DefaultMask
	DefaultModerationMaxWords = moderation.DefaultMaxWords
	DefaultModerationPoll     = moderation.DefaultPoll
	DefaultWebhookTimeout     = moderation.DefaultWebhookTimeout // [IM-18.2-4]
	DefaultWebhookCalls       = 256
)

// Moderation configures the sensitive-word filter and the before-send
// webhook [IM-18]; its zero value is off.
type Moderation struct {
	// RejectLists and MaskLists are word-list files (one word a line):
	// a send or edit whose text or caption holds a word of a reject list
	// is refused with content_refused; words of a mask list are replaced
	// by Mask (zero: "*") per character. Reloaded when they change
	// (polled every Poll; zero: 10 s) and on ReloadModeration; MaxWords
	// bounds the words of all lists (zero: 100,000).
	RejectLists, MaskLists []string
	Mask                   string
	MaxWords               int
	Poll                   time.Duration

	// WebhookURL, when set, is asked about every send, notification and
	// edit before it is stored, with requests signed with WebhookSecret;
	// WebhookTimeout bounds a call (zero: 1 s); without an answer the
	// content is refused with unavailable unless WebhookFailOpen.
	// WebhookCalls bounds the calls in flight on the node (zero: 256).
	WebhookURL      string
	WebhookSecret   []byte
	WebhookTimeout  time.Duration
	WebhookFailOpen bool
	WebhookCalls    int
}

// moderator is the node's part of moderation: the word lists' poller.
type moderator struct {
	words *moderation.Words // nil: no word lists
	stop  context.CancelFunc
	done  chan struct{}
}

// newModeration loads the word lists and checks the webhook's
// configuration: a bad file or URL is a start-up error. Nil interfaces for
// what is off.
func (n *Node) newModeration(cfg Config) (im.WordFilter, im.BeforeSend, error) {
	m := cfg.Moderation
	var (
		words im.WordFilter
		hook  im.BeforeSend
	)
	if len(m.RejectLists)+len(m.MaskLists) > 0 {
		w, err := moderation.NewWords(moderation.WordsConfig{Reject: m.RejectLists, Mask: m.MaskLists, MaskWith: m.Mask,
			MaxWords: m.MaxWords, Poll: m.Poll, Log: cfg.Log, Registerer: cfg.Registry})
		if err != nil {
			return nil, nil, err
		}
		n.mod.words, words = w, w
	}
	if m.WebhookURL != "" {
		h, err := moderation.NewWebhook(moderation.WebhookConfig{URL: m.WebhookURL, Secret: m.WebhookSecret,
			Timeout: m.WebhookTimeout, FailOpen: m.WebhookFailOpen, Log: cfg.Log, Registerer: cfg.Registry})
		if err != nil {
			return nil, nil, err
		}
		hook = h
	}
	return words, hook, nil
}

// startModeration starts polling the word lists.
func (n *Node) startModeration() {
	if n.mod.words == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.mod.stop, n.mod.done = cancel, make(chan struct{})
	done := n.mod.done
	if !n.goroutines.Go(func() { defer close(done); n.mod.words.Run(ctx) }) {
		close(done)
	}
}

// stopModeration stops the poller and waits for it.
func (n *Node) stopModeration() {
	if n.mod.stop != nil {
		n.mod.stop()
		<-n.mod.done
		n.mod.stop = nil
	}
}

// ErrNoWordLists is ReloadModeration's answer when no list is configured.
var ErrNoWordLists = errors.New("no word lists configured")

// ReloadModeration reads the word lists again (mqimd does on SIGHUP). On
// an error the previous lists stay in use.
func (n *Node) ReloadModeration() error {
	if n.mod.words == nil {
		return ErrNoWordLists
	}
	return n.mod.words.Reload()
}
