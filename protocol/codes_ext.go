package protocol

// Error codes of the features in §11–§13 of spec.md. reasonOf (codes.go)
// maps them to PUBACK reason codes.
const (
	CodeBlocked          = "blocked"           // the recipient blocked the sender [IM-12.2-1]
	CodeNotFound         = "not_found"         // no such message or media [IM-11.2], [IM-13]
	CodeNotAllowed       = "not_allowed"       // not the sender, or the recall window has passed [IM-13]
	CodeUnsupportedMedia = "unsupported_media" // upload of a media type not allowed [IM-11.2-2]
)
