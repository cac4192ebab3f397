//go:build unix

package control

import (
	"syscall"
)

// restrictSocket gives an unbound unix socket mode 0600, which Linux
// applies to the file that bind creates.
func restrictSocket(fd uintptr) error { return syscall.Fchmod(int(fd), 0o600) }
