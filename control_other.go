//go:build !unix

package vdisk

// restrictSocket does nothing where sockets have no Unix mode before bind;
// ListenControl chmods the socket file right after.
func restrictSocket(fd uintptr) error { return nil }
