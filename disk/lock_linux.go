package disk

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// The lock is qemu's (block/file-posix.c, raw_apply_lock_bytes and
// raw_check_lock_bytes): every user of an image takes a shared open file
// description lock (F_OFD_SETLK, F_RDLCK) on byte lockPermBase+i for each
// permission i it holds, and on byte lockSharedBase+i for each permission
// it does not let others have; then it tests (F_OFD_GETLK as F_WRLCK)
// whether anyone else holds lockSharedBase+i for a permission it wants, or
// lockPermBase+i for one it does not share. A test that fails means a
// conflict, and the locks taken are dropped. Setting before testing makes
// it safe against a racing opener: of two, the later tester sees the
// other. Only shared locks are ever set, so lockers never block each other
// at the kernel, and a lock test needs no cleanup.
const (
	lockPermBase   = 100
	lockSharedBase = 200
)

// qemu's permissions (BLK_PERM_*), by bit.
const (
	permConsistentRead = 1 << iota
	permWrite
	permWriteUnchanged
	permResize
	permCount = iota
)

// A reader holds consistent reads and shares everything but writing and
// resizing: what it reads must not change beneath it. The writer holds
// reads and writes and shares only consistent reads: it caches file-system
// structures, so nobody else may write. A vdisk reader and the writer
// exclude each other all the same, since the reader refuses to share
// writing; sharing consistent reads lets in only readers that declare they
// tolerate writes: qemu's -U (force-share) readers, and qemu's read-only
// users of a raw image (qemu-img info, qemu-io -r), which share writing.
const (
	readerPerms  = permConsistentRead
	readerShares = (1<<permCount - 1) &^ (permWrite | permResize)
	writerPerms  = permConsistentRead | permWrite
	writerShares = permConsistentRead
)

func lockFD(fd uintptr, _ string, readOnly bool) error {
	perms, shares := writerPerms, writerShares
	if readOnly {
		perms, shares = readerPerms, readerShares
	}
	for i := 0; i < permCount; i++ {
		if perms&(1<<i) != 0 {
			if err := setLock(fd, lockPermBase+int64(i)); err != nil {
				return err
			}
		}
		if shares&(1<<i) == 0 {
			if err := setLock(fd, lockSharedBase+int64(i)); err != nil {
				return err
			}
		}
	}
	for i := 0; i < permCount; i++ {
		conflict := false
		if perms&(1<<i) != 0 {
			held, err := heldByOthers(fd, lockSharedBase+int64(i))
			if err != nil {
				return err
			}
			conflict = held
		}
		if shares&(1<<i) == 0 && !conflict {
			held, err := heldByOthers(fd, lockPermBase+int64(i))
			if err != nil {
				return err
			}
			conflict = held
		}
		if conflict {
			unlockFD(fd)
			return &LockError{Writer: holderWrites(fd)}
		}
	}
	return nil
}

// setLock takes a shared lock on one byte. A file system without OFD
// locks (some network and FUSE file systems) is used unlocked, as qemu
// does; a conflicting exclusive lock (someone else's, not qemu's kind)
// is a writer holding the file.
func setLock(fd uintptr, at int64) error {
	lk := unix.Flock_t{Type: unix.F_RDLCK, Whence: 0, Start: at, Len: 1}
	err := unix.FcntlFlock(fd, unix.F_OFD_SETLK, &lk)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EACCES):
		unlockFD(fd)
		return &LockError{Writer: true}
	case errors.Is(err, unix.ENOLCK), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EINVAL):
		return errNoLocks
	}
	return fmt.Errorf("lock: %w", err)
}

// heldByOthers reports whether another open file holds a lock on the byte.
func heldByOthers(fd uintptr, at int64) (bool, error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: at, Len: 1}
	if err := unix.FcntlFlock(fd, unix.F_OFD_GETLK, &lk); err != nil {
		return false, fmt.Errorf("test lock: %w", err)
	}
	return lk.Type != unix.F_UNLCK, nil
}

// holderWrites reports whether another open file holds a permission that
// changes the image (or an exclusive lock anywhere on qemu's bytes).
func holderWrites(fd uintptr) bool {
	for _, p := range []int{1, 2, 3} { // write, write unchanged, resize
		if held, err := heldByOthers(fd, lockPermBase+int64(p)); err == nil && held {
			return true
		}
	}
	lk := unix.Flock_t{Type: unix.F_RDLCK, Whence: 0, Start: lockPermBase, Len: lockSharedBase + permCount - lockPermBase}
	return unix.FcntlFlock(fd, unix.F_OFD_GETLK, &lk) == nil && lk.Type == unix.F_WRLCK
}

// unlockFD drops every lock of the open file description.
func unlockFD(fd uintptr) {
	lk := unix.Flock_t{Type: unix.F_UNLCK, Whence: 0, Start: 0, Len: 0}
	unix.FcntlFlock(fd, unix.F_OFD_SETLK, &lk)
}
