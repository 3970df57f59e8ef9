// SPDX-License-Identifier: MIT

//go:build !linux

package mqtt

import "syscall"

// mqim patch: see readwait_linux.go; elsewhere clients keep their buffer.
func waitReadable(raw syscall.RawConn) error { return nil }

const canWaitReadable = false
