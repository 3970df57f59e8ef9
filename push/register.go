package push

import (
	"context"
	"regexp"
	"time"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// Token and field formats [IM-17.1-1].
var (
	apnsToken    = regexp.MustCompile(`^([0-9a-fA-F]{2}){32,100}$`)
	fcmToken     = regexp.MustCompile(`^[A-Za-z0-9_:\-.]+$`) // 16 to 4096 characters (validate)
	webhookToken = regexp.MustCompile(`^[\x21-\x7e]{1,512}$`)
	appID        = regexp.MustCompile(`^[A-Za-z0-9._\-:]{1,255}$`)
	locale       = regexp.MustCompile(`^[A-Za-z0-9_\-]{1,35}$`)
)

func badRequest(format string, args ...any) error {
	return protocol.Errorf(protocol.CodeBadRequest, format, args...)
}

// validate checks a registration; a platform without a provider on this
// server is refused as well.
func (s *Service) validate(client string, r *protocol.PushRegisterRequest) error {
	if client == "" {
		return badRequest("push registration needs a client id: connect with a non-empty one")
	}
	if _, ok := s.cfg.Providers[r.Platform]; !ok {
		switch r.Platform {
		case store.PlatformAPNs, store.PlatformFCM, store.PlatformWebhook:
			return badRequest("platform %q is not configured on this server", r.Platform)
		}
		return badRequest("platform must be apns, fcm or webhook")
	}
	switch r.Platform {
	case store.PlatformAPNs:
		if !apnsToken.MatchString(r.Token) {
			return badRequest("an APNs token is the device token in hex")
		}
		if !appID.MatchString(r.App) {
			return badRequest("apns needs app, the topic (bundle id)")
		}
		switch r.Env {
		case "":
			r.Env = "production"
		case "sandbox", "production":
		default:
			return badRequest("env must be sandbox or production")
		}
	case store.PlatformFCM:
		if len(r.Token) < 16 || len(r.Token) > 4096 || !fcmToken.MatchString(r.Token) {
			return badRequest("not an FCM registration token")
		}
	case store.PlatformWebhook:
		if !webhookToken.MatchString(r.Token) {
			return badRequest("a webhook token is 1 to 512 printable ASCII characters")
		}
	}
	if r.Platform != store.PlatformAPNs && r.Env != "" {
		return badRequest("env is for apns only")
	}
	if r.App != "" && !appID.MatchString(r.App) {
		return badRequest("app must be at most 255 letters, digits and ._-:")
	}
	if r.Locale != "" && !locale.MatchString(r.Locale) {
		return badRequest("locale must be a language tag (e.g. en-GB)")
	}
	return nil
}

// Register registers (user, client) [IM-17.1].
func (s *Service) Register(ctx context.Context, user, client string, r protocol.PushRegisterRequest) (*protocol.PushDevice, error) {
	if err := s.validate(client, &r); err != nil {
		return nil, err
	}
	d := store.PushDevice{User: user, Client: client, Platform: r.Platform, Token: r.Token, App: r.App, Env: r.Env,
		Locale: r.Locale, Created: time.Now().UnixMilli()}
	if err := s.cfg.Store.RegisterPush(ctx, d, s.cfg.MaxDevices); err != nil {
		return nil, err
	}
	return wireDevice(d), nil
}

// Unregister removes (user, client)'s registration.
func (s *Service) Unregister(ctx context.Context, user, client string) (bool, error) {
	return s.cfg.Store.UnregisterPush(ctx, user, client)
}

// List returns user's registrations.
func (s *Service) List(ctx context.Context, user string) ([]protocol.PushDevice, error) {
	ds, err := s.cfg.Store.PushDevices(ctx, user)
	if err != nil {
		return nil, err
	}
	out := make([]protocol.PushDevice, 0, len(ds))
	for _, d := range ds {
		out = append(out, *wireDevice(d))
	}
	return out, nil
}

func wireDevice(d store.PushDevice) *protocol.PushDevice {
	hint := d.Token
	if len(hint) > 6 {
		hint = "…" + hint[len(hint)-6:]
	}
	return &protocol.PushDevice{Client: d.Client, Platform: d.Platform, TokenHint: hint, App: d.App, Env: d.Env,
		Locale: d.Locale, Created: d.Created}
}
