//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package disk

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Here the lock is flock(2), which like an OFD lock belongs to the open
// file: shared for readers, exclusive for the writer. qemu on these systems
// uses POSIX record locks instead, which vdisk cannot share safely (they
// belong to the process, and any close drops them), so vdisk and qemu do
// not see each other's locks here.
func lockFD(fd uintptr, path string, readOnly bool) error {
	how := unix.LOCK_EX
	if readOnly {
		how = unix.LOCK_SH
	}
	err := unix.Flock(int(fd), how|unix.LOCK_NB)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EWOULDBLOCK):
		// A reader is refused only by a writer; a writer by either: if
		// a shared lock would be granted, the holders only read.
		return &LockError{Writer: readOnly || !onlyReaders(path)}
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOLCK):
		return errNoLocks
	}
	return fmt.Errorf("lock: %w", err)
}

// unlockFD drops the open file's flock, for every descriptor that shares
// it.
func unlockFD(fd uintptr) { _ = unix.Flock(int(fd), unix.LOCK_UN) }

// onlyReaders reports whether the file's other lockers all hold shared
// locks, by trying one on a second open file of the same path.
func onlyReaders(path string) bool {
	other, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(other)
	return unix.Flock(other, unix.LOCK_SH|unix.LOCK_NB) == nil
}

// unlockFD drops the open file's lock.
func unlockFD(fd uintptr) { _ = unix.Flock(int(fd), unix.LOCK_UN) }
