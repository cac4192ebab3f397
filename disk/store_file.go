package disk

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"syscall"
)

// FileStore is a Store over a disk image file (or a block device). It is
// sparse-aware: trimming and zeroing deallocate blocks where the file system
// can, and Allocation reports holes the way qemu-img map does, so images stay
// small and copies of them can skip what was never written.
//
// All I/O is positional (pread/pwrite) and never moves the file offset, so no
// lock is needed around it.
type FileStore struct {
	f        *os.File
	rc       syscall.RawConn // keeps the descriptor alive across a racing Close
	name     string
	size     int64
	readOnly bool

	// Set the first time the file system refuses an operation, so that it
	// is not asked again on every request.
	noPunch     atomic.Bool
	noZeroRange atomic.Bool
	noPrealloc  atomic.Bool
	noSeekData  atomic.Bool
	noFsync     atomic.Bool // SetFsync(false)

	// closed lets the operations that may not touch the descriptor (once a
	// fallback is cached) still fail after Close, as ReadAt does.
	closed atomic.Bool
}

var (
	_ Store            = (*FileStore)(nil)
	_ Trimmer          = (*FileStore)(nil)
	_ Zeroer           = (*FileStore)(nil)
	_ AllocationMapper = (*FileStore)(nil)
)

// OpenFile opens an existing image file or block device as a store of its
// current size, and locks it (see lock.go): shared when readOnly, so that
// nothing writes it meanwhile, else exclusive. An image another open file
// holds in a way that excludes this one fails with a *LockError, which
// errors.Is reports as ErrLocked. A read-only store opens the file
// read-only, so it also works on images the user may not write.
func OpenFile(path string, readOnly bool) (*FileStore, error) {
	return openFile(path, readOnly, true)
}

// OpenFileForceShare opens an image read-only without taking its lock, so
// that it opens even while another process writes it (qemu's force-share,
// qemu-img -U): what is read may be changing, half-written, or older than
// what the writer has cached. It does not keep any writer out either.
func OpenFileForceShare(path string) (*FileStore, error) {
	return openFile(path, true, false)
}

func openFile(path string, readOnly, locked bool) (*FileStore, error) {
	flag := os.O_RDWR
	if readOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, err
	}
	if locked {
		if err := lock(f, readOnly); err != nil {
			closeFile(f)
			return nil, err
		}
	}
	s, err := newFileStore(f, readOnly)
	if err != nil {
		closeFile(f)
		return nil, err
	}
	return s, nil
}

// CreateFile creates (or truncates, like os.Create) an image file of size
// bytes, locked for writing as OpenFile locks it. The file is sparse: it
// takes no space until written. An existing file that another open file
// holds fails with a *LockError and is left as it was.
func CreateFile(path string, size int64) (*FileStore, error) {
	if size < 0 {
		return nil, fmt.Errorf("disk: create %s: negative size %d", path, size)
	}
	// Not O_TRUNC: the lock comes first, and only then the truncation.
	created := true
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
	if errors.Is(err, os.ErrExist) {
		created = false // (O_CREATE still makes the target of a dangling link)
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	}
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*FileStore, error) {
		closeFile(f)
		if created {
			os.Remove(path)
		}
		return nil, err
	}
	if err := lock(f, false); err != nil {
		return fail(err)
	}
	if err := f.Truncate(0); err != nil {
		return fail(err)
	}
	if err := f.Truncate(size); err != nil {
		return fail(err)
	}
	s, err := newFileStore(f, false)
	if err != nil {
		return fail(err)
	}
	return s, nil
}

func newFileStore(f *os.File, readOnly bool) (*FileStore, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var size int64
	switch m := fi.Mode(); {
	case m.IsRegular():
		size = fi.Size()
	case m&os.ModeDevice != 0 && m&os.ModeCharDevice == 0:
		// Stat reports no size for a block device; its end does.
		if size, err = f.Seek(0, io.SeekEnd); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("disk: %s is not a regular file or block device (%v)", f.Name(), m)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &FileStore{f: f, rc: rc, name: f.Name(), size: size, readOnly: readOnly}, nil
}

// Name is the path the store was opened with, for messages.
func (s *FileStore) Name() string { return s.name }

// Size is the file's size when it was opened.
func (s *FileStore) Size() int64 { return s.size }

// ReadOnly reports whether the file was opened read-only.
func (s *FileStore) ReadOnly() bool { return s.readOnly }

// ReadAt reads len(p) bytes at off, failing with ErrOutOfRange, before any
// I/O, if they are not all inside the store.
func (s *FileStore) ReadAt(p []byte, off int64) (int, error) {
	if err := checkRange("read", off, len(p), s.size); err != nil {
		return 0, err
	}
	return s.f.ReadAt(p, off)
}

// WriteAt writes p at off. A write that would reach past the end fails with
// ErrOutOfRange rather than grow the image.
func (s *FileStore) WriteAt(p []byte, off int64) (int, error) {
	if err := checkRange("write", off, len(p), s.size); err != nil {
		return 0, err
	}
	if s.readOnly {
		return 0, ErrReadOnly
	}
	return s.f.WriteAt(p, off)
}

// Sync flushes the file to stable storage with fsync, unless SetFsync
// turned that off.
func (s *FileStore) Sync() error {
	if s.noFsync.Load() {
		if s.closed.Load() {
			return &os.PathError{Op: "sync", Path: s.name, Err: os.ErrClosed}
		}
		return nil
	}
	return s.f.Sync()
}

// SetFsync turns Sync's fsync on (the default) or off. Off, what was
// written stays in the operating system's page cache, which survives the
// process ending, cleanly or killed, but not the machine crashing: the
// convention of cp and mcopy, which a command that builds an image in CI
// wants for speed. A server keeps it on: its clients' flushes promise
// stable storage.
func (s *FileStore) SetFsync(on bool) { s.noFsync.Store(!on) }

// Close releases the file's lock and closes it.
func (s *FileStore) Close() error {
	s.closed.Store(true)
	return closeFile(s.f)
}

// checkOpen is for the operations that might not reach the descriptor.
func (s *FileStore) checkOpen(op string) error {
	if s.closed.Load() {
		return &os.PathError{Op: op, Path: s.name, Err: os.ErrClosed}
	}
	return nil
}

// Trim punches a hole over the range where the file system supports it:
// the blocks wholly inside are freed and the partial blocks at the edges are
// zeroed, so the whole range reads as zeros. Where holes cannot be punched
// Trim does nothing, which a trim hint permits.
func (s *FileStore) Trim(off, length int64) error {
	if err := checkRange64("trim", off, length, s.size); err != nil {
		return err
	}
	if err := s.checkOpen("trim"); err != nil {
		return err
	}
	if s.readOnly {
		return ErrReadOnly
	}
	if length == 0 {
		return nil
	}
	if err := s.punch(off, length); err != nil && !errors.Is(err, errNotSupported) {
		return err
	}
	return nil
}

// WriteZeroes zeroes the range by the cheapest means the file system offers:
// punching a hole; with ZeroNoHole, converting it to preallocated zero
// extents (FALLOC_FL_ZERO_RANGE), or punching and then reallocating; and
// only when none of these works, writing zeros in bounded chunks, which
// ZeroFast refuses with ErrSlowZero before touching the file.
func (s *FileStore) WriteZeroes(off, length int64, flags ZeroFlags) error {
	if err := checkRange64("zero", off, length, s.size); err != nil {
		return err
	}
	if err := s.checkOpen("zero"); err != nil {
		return err
	}
	if s.readOnly {
		return ErrReadOnly
	}
	if length == 0 {
		return nil
	}
	if flags&ZeroNoHole == 0 {
		if err := s.punch(off, length); !errors.Is(err, errNotSupported) {
			return err
		}
	} else {
		if err := s.zeroRange(off, length); !errors.Is(err, errNotSupported) {
			return err
		}
		if !s.noPunch.Load() && !s.noPrealloc.Load() {
			err := s.punch(off, length)
			if err == nil {
				err = s.preallocate(off, length)
				if !errors.Is(err, errNotSupported) {
					return err
				}
				// The range is zero already but a hole; writing the zeros
				// is the only way left to allocate it, fast or not.
				return s.writeZeros(off, length)
			}
			if !errors.Is(err, errNotSupported) {
				return err
			}
		}
	}
	if flags&ZeroFast != 0 {
		return ErrSlowZero
	}
	return s.writeZeros(off, length)
}

func (s *FileStore) writeZeros(off, length int64) error {
	return writeZeros(s.f, off, length)
}

// Allocation reports holes and data as the file system's SEEK_DATA and
// SEEK_HOLE see them, which is also what qemu-img map reports. Preallocated
// but unwritten extents, such as those ZeroNoHole leaves, may be reported as
// holes or as data depending on the file system and its page cache; either
// is safe, since both read as zeros. A file system that cannot tell is
// reported as all data.
//
// lseek moves the descriptor's shared offset, but nothing here reads it back
// other than from lseek's own result and all other I/O is positional, so
// concurrent calls need no lock.
func (s *FileStore) Allocation(off, length int64) ([]Extent, error) {
	if err := checkRange64("map", off, length, s.size); err != nil {
		return nil, err
	}
	if err := s.checkOpen("map"); err != nil {
		return nil, err
	}
	if length == 0 {
		return nil, nil
	}
	end := off + length
	if s.noSeekData.Load() {
		return []Extent{{Offset: off, Length: length}}, nil
	}
	var ext []Extent
	for pos := off; pos < end; {
		data, err := s.seek(pos, seekData)
		switch {
		case errors.Is(err, errNoData):
			data = end
		case errors.Is(err, errNotSupported):
			s.noSeekData.Store(true)
			return appendExtent(ext, Extent{Offset: pos, Length: end - pos}), nil
		case err != nil:
			return nil, err
		}
		data = min(max(data, pos), end)
		if data > pos {
			ext = appendExtent(ext, Extent{Offset: pos, Length: data - pos, Hole: true, Zero: true})
		}
		if data == end {
			break
		}
		hole, err := s.seek(data, seekHole)
		switch {
		case errors.Is(err, errNoData), errors.Is(err, errNotSupported):
			hole = end
		case err != nil:
			return nil, err
		}
		if hole <= data || hole > end {
			hole = end // also guarantees progress whatever lseek says
		}
		ext = appendExtent(ext, Extent{Offset: data, Length: hole - data})
		pos = hole
	}
	return ext, nil
}

// appendExtent appends e, merging it into the last extent when they touch
// and agree, so callers see maximal runs.
func appendExtent(ext []Extent, e Extent) []Extent {
	if n := len(ext); n > 0 {
		last := &ext[n-1]
		if last.End() == e.Offset && last.Hole == e.Hole && last.Zero == e.Zero {
			last.Length += e.Length
			return ext
		}
	}
	return append(ext, e)
}

// errNotSupported is what the platform layer answers when the file system
// (or the OS) lacks an operation, so the caller falls back.
var errNotSupported = errors.New("not supported by the file system")

// errNoData is SEEK_DATA's ENXIO: no data at or after the offset.
var errNoData = errors.New("no data after offset")

func (s *FileStore) punch(off, length int64) error {
	return s.fallocate(&s.noPunch, "punch hole", fallocPunchHole, off, length)
}

func (s *FileStore) zeroRange(off, length int64) error {
	return s.fallocate(&s.noZeroRange, "zero range", fallocZeroRange, off, length)
}

func (s *FileStore) preallocate(off, length int64) error {
	return s.fallocate(&s.noPrealloc, "preallocate", fallocAllocate, off, length)
}

// fallocate runs one fallocate mode, remembering in no when the file system
// lacks it.
func (s *FileStore) fallocate(no *atomic.Bool, op string, mode uint32, off, length int64) error {
	if no.Load() {
		return errNotSupported
	}
	var err error
	if cerr := s.rc.Control(func(fd uintptr) { err = fallocate(fd, mode, off, length) }); cerr != nil {
		return &os.PathError{Op: op, Path: s.name, Err: os.ErrClosed}
	}
	if errors.Is(err, errNotSupported) {
		no.Store(true)
		return err
	}
	if err != nil {
		return &os.PathError{Op: op, Path: s.name, Err: err}
	}
	return nil
}

func (s *FileStore) seek(off int64, whence int) (int64, error) {
	var (
		pos int64
		err error
	)
	if cerr := s.rc.Control(func(fd uintptr) { pos, err = seek(fd, off, whence) }); cerr != nil {
		return 0, &os.PathError{Op: "seek", Path: s.name, Err: os.ErrClosed}
	}
	if err != nil && !errors.Is(err, errNoData) && !errors.Is(err, errNotSupported) {
		return 0, &os.PathError{Op: "seek", Path: s.name, Err: err}
	}
	return pos, err
}
