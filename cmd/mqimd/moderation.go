package main

import (
	"errors"
	"flag"
	"time"

	"github.com/mqim/mqim/server"
)

// moderationOptions are the flags of the word filter and the before-send
// webhook [IM-18].
type moderationOptions struct {
	reject, mask, maskWith string
	maxWords, calls        int
	poll, timeout          time.Duration
	url, secretFile        string
	failOpen               bool
}

func moderationFlags(fs *flag.FlagSet) *moderationOptions {
	o := &moderationOptions{}
	fs.StringVar(&o.reject, "moderation-reject-words", "", "word-list files (comma-separated; one word a line, # comments): a send or edit whose text or caption holds one of their words is refused with content_refused. Matched after NFKC and case folding, inside words too. Reloaded when they change and on SIGHUP")
	fs.StringVar(&o.mask, "moderation-mask-words", "", "word-list files (comma-separated) whose words are masked: stored and delivered with each of their characters replaced by --moderation-mask")
	fs.StringVar(&o.maskWith, "moderation-mask", server.DefaultModerationMask, "what replaces each character of a masked word")
	fs.IntVar(&o.maxWords, "moderation-max-words", server.DefaultModerationMaxWords, "most words in all word lists; more is a start-up error (at a reload: the previous lists stay)")
	fs.DurationVar(&o.poll, "moderation-poll", server.DefaultModerationPoll, "how often the word-list files are checked for changes (SIGHUP reloads at once)")
	fs.StringVar(&o.url, "moderation-webhook-url", "", "before-send webhook: every send, notification and edit is posted here before it is stored; its answer allows, denies or replaces the body")
	fs.StringVar(&o.secretFile, "moderation-webhook-secret-file", "", "file holding the before-send webhook's signing secret, at least 16 bytes (required with --moderation-webhook-url)")
	fs.DurationVar(&o.timeout, "moderation-webhook-timeout", server.DefaultWebhookTimeout, "longest wait for the before-send webhook's answer")
	fs.BoolVar(&o.failOpen, "moderation-webhook-fail-open", false, "without an answer from the before-send webhook (timeout, error, garbage), allow; default: refuse with unavailable, which devices retry")
	fs.IntVar(&o.calls, "moderation-webhook-calls", server.DefaultWebhookCalls, "before-send webhook calls in flight on the node; past it, connections wait")
	return o
}

// config is the node's Moderation of the flags.
func (o *moderationOptions) config() (server.Moderation, error) {
	m := server.Moderation{RejectLists: splitList(o.reject), MaskLists: splitList(o.mask), Mask: o.maskWith,
		MaxWords: o.maxWords, Poll: o.poll, WebhookURL: o.url, WebhookTimeout: o.timeout, WebhookFailOpen: o.failOpen,
		WebhookCalls: o.calls}
	if o.url == "" {
		if o.secretFile != "" {
			return m, errors.New("--moderation-webhook-secret-file needs --moderation-webhook-url")
		}
		return m, nil
	}
	if o.secretFile == "" {
		return m, errors.New("--moderation-webhook-url needs --moderation-webhook-secret-file")
	}
	secret, err := readSecretFile("moderation-webhook-secret-file", o.secretFile)
	if err != nil {
		return m, err
	}
	m.WebhookSecret = secret
	return m, nil
}
