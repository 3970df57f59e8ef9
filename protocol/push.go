package protocol

// Push registration RPC methods [IM-17.1].
const (
	MethodPushRegister   = "push.register"
	MethodPushUnregister = "push.unregister"
	MethodPushList       = "push.list"
)

// PushRegisterRequest registers the requesting device (its MQTT client id)
// for offline push [IM-17.1-1].
type PushRegisterRequest struct {
	Platform string `json:"platform" msgpack:"platform"`                 // apns, fcm or webhook
	Token    string `json:"token" msgpack:"token"`                       // the provider's device token
	App      string `json:"app,omitempty" msgpack:"app,omitempty"`       // APNs topic (bundle id); FCM/webhook: the app or channel
	Env      string `json:"env,omitempty" msgpack:"env,omitempty"`       // APNs: sandbox or production (default)
	Locale   string `json:"locale,omitempty" msgpack:"locale,omitempty"` // e.g. en-GB
}

// PushDevice describes a registration (push.register's result, push.list).
// The token is not returned, only its last characters.
type PushDevice struct {
	Client    string `json:"client" msgpack:"client"`
	Platform  string `json:"platform" msgpack:"platform"`
	TokenHint string `json:"token_hint" msgpack:"token_hint"`
	App       string `json:"app,omitempty" msgpack:"app,omitempty"`
	Env       string `json:"env,omitempty" msgpack:"env,omitempty"`
	Locale    string `json:"locale,omitempty" msgpack:"locale,omitempty"`
	Created   int64  `json:"created" msgpack:"created"` // unix ms
}

// PushUnregisterResult answers push.unregister.
type PushUnregisterResult struct {
	Removed bool `json:"removed" msgpack:"removed"`
}

// PushListResult answers push.list.
type PushListResult struct {
	Devices []PushDevice `json:"devices" msgpack:"devices"`
}
