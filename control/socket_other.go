//go:build !unix

package control

// restrictSocket does nothing where sockets have no Unix mode before bind;
// Listen chmods the socket file right after.
func restrictSocket(fd uintptr) error { return nil }
