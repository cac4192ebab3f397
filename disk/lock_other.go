//go:build !linux && !darwin && !dragonfly && !freebsd && !netbsd && !openbsd

package disk

// On the remaining systems (Windows among them) images are not locked:
// nothing keeps two programs from writing one image at once there.
func lockFD(fd uintptr, path string, readOnly bool) error { return nil }

// unlockFD has no lock to drop.
func unlockFD(fd uintptr) {}
