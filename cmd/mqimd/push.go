package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/mqim/mqim/push"
	"github.com/mqim/mqim/store"
)

// pushOptions are the flags of offline push [IM-17].
type pushOptions struct {
	after, systemInterval                                time.Duration
	hideBodies, direct, groups, mentions, everyone, mute bool
	maxDevices                                           int
	maxQueued                                            int64
	apnsKey, apnsKeyID, apnsTeamID                       string
	fcmKey                                               string
	webhookURL, webhookSecretFile                        string
}

func pushFlags(fs *flag.FlagSet) *pushOptions {
	o := &pushOptions{}
	fs.DurationVar(&o.after, "push-after", 2*time.Second, "push: how long a device online elsewhere has to acknowledge a message before its user is pushed")
	fs.DurationVar(&o.systemInterval, "push-system-interval", 5*time.Minute, "push: bridges' system notifications after the first are folded into one per interval")
	fs.BoolVar(&o.hideBodies, "push-hide-bodies", false, "push: never put message text in notifications")
	fs.BoolVar(&o.direct, "push-direct", true, "push: notify direct messages")
	fs.BoolVar(&o.groups, "push-groups", true, "push: notify messages in groups that fan out on write")
	fs.BoolVar(&o.mentions, "push-mentions", true, "push: notify mentions in groups that fan out on read")
	fs.BoolVar(&o.everyone, "push-everyone", true, "push: notify every member of a group that fans out on read of a * mention by an owner or admin")
	fs.BoolVar(&o.mute, "push-honour-mute", true, "push: no notifications for conversations the user muted")
	fs.IntVar(&o.maxDevices, "push-max-devices", 10, "push: registrations per user")
	fs.Int64Var(&o.maxQueued, "push-max-queued", 100_000, "push: jobs in the work queue; past it candidates wait in the store's outbox")
	fs.StringVar(&o.apnsKey, "push-apns-key", "", "push: APNs token signing key (.p8 file); enables APNs")
	fs.StringVar(&o.apnsKeyID, "push-apns-key-id", "", "push: APNs key id")
	fs.StringVar(&o.apnsTeamID, "push-apns-team-id", "", "push: Apple developer team id")
	fs.StringVar(&o.fcmKey, "push-fcm-key", "", "push: FCM service account key (JSON file); enables FCM")
	fs.StringVar(&o.webhookURL, "push-webhook-url", "", "push: URL the webhook provider posts to; enables webhook registrations")
	fs.StringVar(&o.webhookSecretFile, "push-webhook-secret-file", "", "push: file holding the webhook signing secret (required with --push-webhook-url)")
	return o
}

// config builds the providers the flags name; none: push is off.
func (o *pushOptions) config() (push.Config, error) {
	cfg := push.Config{
		After: o.after, MaxDevices: o.maxDevices, MaxQueued: o.maxQueued,
		Policy: push.Policy{NoDirect: !o.direct, NoGroups: !o.groups, NoMentions: !o.mentions, NoEveryone: !o.everyone,
			IgnoreMute: !o.mute, HideBodies: o.hideBodies, SystemInterval: o.systemInterval},
		Providers: map[string]push.Provider{},
	}
	fp, err := pushFailpoint(os.Getenv(failpointEnv))
	if err != nil {
		return cfg, err
	}
	cfg.Failpoint = fp
	if o.apnsKey != "" {
		p, err := push.NewAPNs(push.APNsConfig{KeyFile: o.apnsKey, KeyID: o.apnsKeyID, TeamID: o.apnsTeamID})
		if err != nil {
			return cfg, err
		}
		cfg.Providers[store.PlatformAPNs] = p
	}
	if o.fcmKey != "" {
		p, err := push.NewFCM(push.FCMConfig{KeyFile: o.fcmKey})
		if err != nil {
			return cfg, err
		}
		cfg.Providers[store.PlatformFCM] = p
	}
	if o.webhookURL != "" {
		if o.webhookSecretFile == "" {
			return cfg, errors.New("--push-webhook-url needs --push-webhook-secret-file")
		}
		secret, err := readSecretFile("push-webhook-secret-file", o.webhookSecretFile)
		if err != nil {
			return cfg, err
		}
		cfg.Providers[store.PlatformWebhook] = push.NewWebhook(push.WebhookConfig{URL: o.webhookURL, Secret: secret})
	}
	return cfg, nil
}

// failpointEnv names a point at which mqimd kills itself with SIGKILL, for
// the crash tests of test/cluster (docs/PUSH.md): compiled in, inert
// unless set.
const failpointEnv = "MQIM_FAILPOINT"

// pushFailpoints are the values of MQIM_FAILPOINT: the push step (see
// push.Config.Failpoint) at which the process dies.
var pushFailpoints = map[string]string{
	"push-after-commit":     "before-enqueue", // the message committed, its outbox row not yet on the work queue
	"push-in-provider-call": "provider-call",  // the claim taken, the provider not yet called
}

// pushFailpoint returns the failpoint of value v (nil for "").
func pushFailpoint(v string) (func(string) bool, error) {
	if v == "" {
		return nil, nil
	}
	step, ok := pushFailpoints[v]
	if !ok {
		return nil, fmt.Errorf("%s=%q: not a failpoint (push-after-commit, push-in-provider-call)", failpointEnv, v)
	}
	slog.Warn("failpoint armed: this process kills itself", "env", failpointEnv, "at", v)
	return func(name string) bool {
		if name == step {
			slog.Warn("failpoint reached: SIGKILL", "at", v)
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way: go no further
		}
		return false
	}, nil
}
