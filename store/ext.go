package store

// ExtStore holds the operations of spec §13 (recall, edit, delete for me)
// and §15 (conversation settings).
type ExtStore interface {
}
