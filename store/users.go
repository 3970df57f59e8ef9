package store

import "slices"

// UsersInOrder returns users sorted and without repeats, a new slice: both
// stores create users (EnsureUsers) in id order, so that two transactions
// creating overlapping sets lock their rows in one order and cannot
// deadlock.
func UsersInOrder(users []string) []string {
	us := slices.Clone(users)
	slices.Sort(us)
	return slices.Compact(us)
}
