//go:build !linux

package disk

// Elsewhere than Linux the FileStore neither punches holes nor maps them; it
// zeroes by writing and reports everything as data, which is always correct.

const (
	fallocPunchHole = 1
	fallocZeroRange = 2
	fallocAllocate  = 3

	seekData = 3
	seekHole = 4
)

func fallocate(fd uintptr, mode uint32, off, length int64) error { return errNotSupported }

func seek(fd uintptr, off int64, whence int) (int64, error) { return 0, errNotSupported }
