//go:build !linux

package nbd

import "net"

// peerPID is only implemented on Linux.
func peerPID(*net.UnixConn) (int32, bool) { return 0, false }
