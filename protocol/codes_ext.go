package protocol

// Error codes of the features in §12–§14 of spec.md. reasonOf (codes.go)
// maps them to PUBACK reason codes.
const (
	CodeBlocked          = "blocked"           // the recipient blocked the sender [IM-13.2-1]
	CodeNotFound         = "not_found"         // no such message or media [IM-12.2], [IM-14]
	CodeNotAllowed       = "not_allowed"       // not the sender, or the recall window has passed [IM-14]
	CodeUnsupportedMedia = "unsupported_media" // upload of a media type not allowed [IM-12.2-2]
)
