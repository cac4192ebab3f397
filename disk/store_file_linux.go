package disk

import (
	"errors"
	"syscall"
	"unsafe"
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

// pageSize is the granularity of mmap offsets.
var pageSize = int64(syscall.Getpagesize())

// Lend implements Lender with a private read-only mapping of the range,
// populated at once (the pages are the page cache's: no copy is made).
// A mapping that reaches past the file's current end (an image truncated
// behind vdisk's back) would fault on access, so Lend refuses it.
func (s *FileStore) Lend(off int64, n int) ([]byte, error) {
	if err := checkRange("read", off, n, s.size); err != nil {
		return nil, err
	}
	if n == 0 || s.closed.Load() {
		return nil, ErrCannotLend
	}
	delta := off % pageSize
	var m []byte
	var err error
	if cerr := s.rc.Control(func(fd uintptr) {
		var st syscall.Stat_t
		if err = syscall.Fstat(int(fd), &st); err != nil || st.Size < off+int64(n) {
			err = ErrCannotLend
			return
		}
		m, err = syscall.Mmap(int(fd), off-delta, int(delta)+n, syscall.PROT_READ, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	}); cerr != nil || err != nil {
		return nil, ErrCannotLend
	}
	return m[delta : delta+int64(n) : delta+int64(n)], nil
}

// Return implements Lender: it unmaps what Lend mapped for off.
func (s *FileStore) Return(b []byte, off int64) error {
	if len(b) == 0 {
		return nil
	}
	delta := off % pageSize
	m := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), -delta)), int(delta)+len(b))
	return syscall.Munmap(m)
}
