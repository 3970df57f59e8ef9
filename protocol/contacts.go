package protocol

// Contact methods [IM-13.1].
const (
	MethodContactAdd     = "contact.add"
	MethodContactRemove  = "contact.remove"
	MethodContactBlock   = "contact.block"
	MethodContactUnblock = "contact.unblock"
	MethodContactList    = "contact.list"
)

// ContactRequest names the other user of a contact change [IM-13.1].
type ContactRequest struct {
	User string `json:"user" msgpack:"user"`
}

// Contact is the requester's relation to User [IM-13.1].
type Contact struct {
	User    string `json:"user" msgpack:"user"`
	Contact bool   `json:"contact" msgpack:"contact"`
	Blocked bool   `json:"blocked" msgpack:"blocked"`
	Since   int64  `json:"since,omitempty" msgpack:"since,omitempty"`
}

// ContactsResult answers contact.list [IM-13.1-3].
type ContactsResult struct {
	Contacts []Contact `json:"contacts" msgpack:"contacts"`
}
