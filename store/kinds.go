package store

// Inbox kind codes: how both stores keep InboxEvent.Kind in inbox.kind.
// They are stored, so a code never changes; features take them from 10 up,
// clear of the core's.
var kindCodes = map[string]int{
	KindMessage:  1,
	KindRead:     2,
	KindRecall:   10,
	KindEdit:     11,
	KindDelete:   12,
	KindSettings: 13,
}

var kindNames = func() map[int]string {
	m := make(map[int]string, len(kindCodes))
	for k, c := range kindCodes {
		m[c] = k
	}
	return m
}()

// KindCode is the stored code of an inbox kind. An unknown kind is a bug
// of the caller, so it panics rather than store a row nobody can read.
func KindCode(kind string) int {
	c, ok := kindCodes[kind]
	if !ok {
		panic("store: unknown inbox kind " + kind)
	}
	return c
}

// KindName is the kind of a stored code; an unknown code reads as
// KindMessage.
func KindName(code int) string {
	if k, ok := kindNames[code]; ok {
		return k
	}
	return KindMessage
}
