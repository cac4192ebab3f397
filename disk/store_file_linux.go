package disk

import (
	"errors"
	"syscall"
)

// fallocate(2) modes from linux/falloc.h; package syscall does not name them.
const (
	fallocKeepSize  = 0x01
	fallocPunchHole = 0x02 | fallocKeepSize // the kernel requires KEEP_SIZE with it
	fallocZeroRange = 0x10 | fallocKeepSize
	fallocAllocate  = 0 | fallocKeepSize
)

// lseek(2) whence values for sparse files (linux/fs.h).
const (
	seekData = 3
	seekHole = 4
)

func fallocate(fd uintptr, mode uint32, off, length int64) error {
	for {
		err := syscall.Fallocate(int(fd), mode, off, length)
		if err == syscall.EINTR {
			continue
		}
		return mapUnsupported(err)
	}
}

func seek(fd uintptr, off int64, whence int) (int64, error) {
	pos, err := syscall.Seek(int(fd), off, whence)
	if err == syscall.ENXIO {
		return 0, errNoData
	}
	return pos, mapUnsupported(err)
}

// mapUnsupported turns the errnos by which a file system, device or kernel
// says it lacks an operation into errNotSupported. EINVAL is among them
// because the callers never pass invalid arguments (ranges are checked and
// non-empty), so it can only mean that this mode or whence is not known here.
func mapUnsupported(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EOPNOTSUPP, syscall.ENOSYS, syscall.EINVAL, syscall.ENODEV, syscall.ESPIPE:
			return errNotSupported
		}
	}
	return err
}
