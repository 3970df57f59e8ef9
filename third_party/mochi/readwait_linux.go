// SPDX-License-Identifier: MIT

package mqtt

import "syscall"

// mqim patch: waitReadable blocks until the socket has data (or EOF, an
// error, or the read deadline) without a buffer, so that an idle client
// need not hold its read buffer (see Client.awaitPacket). It peeks one byte
// without consuming it; EAGAIN parks the goroutine in the netpoller.
func waitReadable(raw syscall.RawConn) error {
	var b [1]byte
	return raw.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return err != syscall.EAGAIN && err != syscall.EINTR
	})
}

const canWaitReadable = true
