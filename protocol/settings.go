package protocol

// Conversation settings [IM-16].
const (
	MethodSettings = "settings"
	KindSettings   = "settings"
	MaxDraft       = 4096
)

// ConvSettings are a user's own settings of a conversation [IM-16.1].
type ConvSettings struct {
	Pinned   bool   `json:"pinned" msgpack:"pinned"`
	Muted    bool   `json:"muted" msgpack:"muted"`
	Archived bool   `json:"archived" msgpack:"archived"`
	Draft    string `json:"draft" msgpack:"draft"`
	TS       int64  `json:"ts,omitempty" msgpack:"ts,omitempty"`
}

// SettingsRequest changes the settings given; absent ones stay [IM-16.2].
type SettingsRequest struct {
	Conv     string  `json:"conv" msgpack:"conv"`
	Pinned   *bool   `json:"pinned,omitempty" msgpack:"pinned,omitempty"`
	Muted    *bool   `json:"muted,omitempty" msgpack:"muted,omitempty"`
	Archived *bool   `json:"archived,omitempty" msgpack:"archived,omitempty"`
	Draft    *string `json:"draft,omitempty" msgpack:"draft,omitempty"`
}

// SettingsResult answers SettingsRequest.
type SettingsResult struct {
	Conv     string        `json:"conv" msgpack:"conv"`
	Settings *ConvSettings `json:"settings" msgpack:"settings"`
}
