package disk

import (
	"errors"
	"os"
)

// Image files are locked while a FileStore has them open, the way qemu
// locks them, so that two programs never write one image at once (two
// file-system caches over one disk lose each other's changes) and no vdisk
// command reads an image while another writes it: readers share, a writer
// excludes other writers and readers. OpenFile and CreateFile take the
// lock; closing the store (or the process ending, however it ends)
// releases it (see closeFile), since the lock belongs to the open file.
// OpenFileForceShare
// opens for reading without it.
//
// On Linux the lock is qemu's own (open file description locks on the bytes
// qemu uses; see lock_linux.go), so vdisk and qemu, qemu-img, qemu-nbd
// or a virtual machine's disk also keep each other out. On the BSDs and
// macOS it is flock(2), which vdisk processes honour among themselves.
// Elsewhere images are not locked.

// ErrLocked matches the error of opening an image that another process
// (or another open file in this one) holds: a LockError.
var ErrLocked = errors.New("disk: image in use")

// LockError is the error of opening an image that another open file holds.
type LockError struct {
	// Path is the image file.
	Path string
	// Writer is set when the holder writes the image, clear when it only
	// reads it.
	Writer bool
}

// Error says which kind of holder has the image: OFD and flock locks do
// not tell which process holds them, only how.
func (e *LockError) Error() string {
	if e.Writer {
		return "in use by another process that writes it (e.g. vdisk serve or vdisk cp)"
	}
	return "in use by another process that reads it (e.g. vdisk ls or vdisk serve --read-only)"
}

// Is makes errors.Is(err, ErrLocked) hold for a LockError.
func (e *LockError) Is(target error) bool { return target == ErrLocked }

// lock locks f as a reader (readOnly) or as the writer, failing with a
// *LockError when another open file holds it in a way that excludes that.
func lock(f *os.File, readOnly bool) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = lockFD(fd, f.Name(), readOnly) }); err != nil {
		return err
	}
	var le *LockError
	switch {
	case errors.As(lerr, &le):
		le.Path = f.Name()
	case errors.Is(lerr, errNoLocks):
		return nil // as qemu does where the file system cannot lock
	}
	return lerr
}

// closeFile releases f's lock, then closes f. Closing alone may leave the
// lock held for a while: it belongs to the open file description, which a
// child process started meanwhile by any goroutine of this process shares
// from its fork until its exec closes its copy (close-on-exec), and which
// lives on, locked, until the last copy is closed. An image closed in that
// window would still look held, "in use by another process that writes
// it", to the next open in this very process. Unlocking acts on the
// description itself, whoever else holds a copy.
func closeFile(f *os.File) error {
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(unlockFD)
	}
	return f.Close()
}

// errNoLocks stops locking on a file system that cannot lock; the image
// is then used unlocked.
var errNoLocks = errors.New("the file system has no locks")
