package disk

import (
	"fmt"
	"io"
	"sync/atomic"

	"github.com/pojntfx/go-nbd/pkg/backend"
)

// BackendStore makes any go-nbd backend.Backend a Store, so backends written
// for go-nbd servers can sit beneath a disk device object.
//
// It checks every request against the size read at construction before the
// backend sees it: go-nbd's own backends do not bound requests themselves
// (MemoryBackend panics, and can leave its lock held, on one that runs past
// its end). The backend must be safe for concurrent use, as go-nbd's are.
type BackendStore struct {
	b      backend.Backend
	size   int64
	closed atomic.Bool
}

var _ Store = (*BackendStore)(nil)

// NewBackendStore asks b for its size once; a Store's size never changes,
// so a backend that grows or shrinks later keeps its first size here.
func NewBackendStore(b backend.Backend) (*BackendStore, error) {
	size, err := b.Size()
	if err != nil {
		return nil, fmt.Errorf("disk: backend size: %w", err)
	}
	if size < 0 {
		return nil, fmt.Errorf("disk: backend reports negative size %d", size)
	}
	return &BackendStore{b: b, size: size}, nil
}

// Backend is the backend the store was made from.
func (s *BackendStore) Backend() backend.Backend { return s.b }

// Size is the backend's size when the store was made.
func (s *BackendStore) Size() int64 { return s.size }

// ReadOnly is false: go-nbd backends have no way to say otherwise.
func (s *BackendStore) ReadOnly() bool { return false }

// ReadAt reads from the backend. An io.EOF accompanying a full read, which
// io.ReaderAt allows at the end, is dropped; a short read without an error,
// which it does not allow, becomes io.ErrUnexpectedEOF.
func (s *BackendStore) ReadAt(p []byte, off int64) (int, error) {
	if err := checkRange("read", off, len(p), s.size); err != nil {
		return 0, err
	}
	if s.closed.Load() {
		return 0, errClosed
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := s.b.ReadAt(p, off)
	switch {
	case n == len(p):
		return n, nil
	case err == nil:
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// WriteAt writes to the backend; a short write without an error becomes
// io.ErrShortWrite.
func (s *BackendStore) WriteAt(p []byte, off int64) (int, error) {
	if err := checkRange("write", off, len(p), s.size); err != nil {
		return 0, err
	}
	if s.closed.Load() {
		return 0, errClosed
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := s.b.WriteAt(p, off)
	if n < len(p) && err == nil {
		err = io.ErrShortWrite
	}
	return n, err
}

// Sync calls the backend's Sync.
func (s *BackendStore) Sync() error {
	if s.closed.Load() {
		return errClosed
	}
	return s.b.Sync()
}

// Close closes the backend if it is an io.Closer; go-nbd's own backends are
// not, and whoever opened the file beneath one still owns it.
func (s *BackendStore) Close() error {
	if s.closed.Swap(true) {
		return errClosed
	}
	if c, ok := s.b.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
