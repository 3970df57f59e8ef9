package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mqim/mqim/clients/sdk"
)

// push registers a device for offline push [IM-17.1]: the registration is
// bound to the client id, so --client-id names the device's.
func (e *env) push(ctx context.Context, args []string) error {
	fs := e.flags("push", "register|unregister|list --client-id ID [--platform P --device-token T --app A --env E --locale L]")
	var (
		clientID string
		reg      sdk.PushRegistration
	)
	fs.StringVar(&clientID, "client-id", "", "the MQTT client id of the device to register (required)")
	fs.StringVar(&reg.Platform, "platform", "", "apns, fcm or webhook")
	fs.StringVar(&reg.Token, "device-token", "", "the provider's device token")
	fs.StringVar(&reg.App, "app", "", "APNs topic (bundle id), or the app/channel name")
	fs.StringVar(&reg.Env, "env", "", "APNs environment: sandbox or production")
	fs.StringVar(&reg.Locale, "locale", "", "language tag, e.g. en-GB")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || (pos[0] != "register" && pos[0] != "unregister" && pos[0] != "list") {
		return usageErr(fmt.Errorf("push: want register, unregister or list, got %q", strings.Join(pos, " ")))
	}
	if clientID == "" {
		return usageErr(errors.New("push: give --client-id, the device's MQTT client id"))
	}
	c, err := e.dial(ctx, sdk.Config{NoEvents: true, ClientID: clientID})
	if err != nil {
		return err
	}
	defer c.Close()
	switch pos[0] {
	case "register":
		d, err := c.RegisterPush(ctx, reg)
		if err != nil {
			return fmt.Errorf("push register: %w%s", err, hint(err))
		}
		return e.out(d, pushLine(d))
	case "unregister":
		ok, err := c.UnregisterPush(ctx)
		if err != nil {
			return fmt.Errorf("push unregister: %w", err)
		}
		return e.out(map[string]bool{"removed": ok}, fmt.Sprintf("removed: %v", ok))
	}
	ds, err := c.PushDevices(ctx)
	if err != nil {
		return fmt.Errorf("push list: %w", err)
	}
	for _, d := range ds {
		if err := e.out(d, pushLine(d)); err != nil {
			return err
		}
	}
	return nil
}

func pushLine(d sdk.PushDevice) string {
	s := d.Client + "  " + d.Platform + "  " + d.TokenHint
	if d.App != "" {
		s += "  " + d.App
	}
	if d.Env != "" {
		s += "  " + d.Env
	}
	return s
}
