package disk

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/pojntfx/go-nbd/pkg/backend"
)

func newMemBackendStore(t *testing.T, mem []byte) *BackendStore {
	t.Helper()
	s, err := NewBackendStore(backend.NewMemoryBackend(mem))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBackendStoreMemory(t *testing.T) {
	runStoreSuite(t, func(t *testing.T, size int64) Store {
		return newMemBackendStore(t, make([]byte, size))
	})
}

func TestBackendStoreFile(t *testing.T) {
	runStoreSuite(t, func(t *testing.T, size int64) Store {
		f, err := os.Create(filepath.Join(t.TempDir(), "backend.img"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		s, err := NewBackendStore(backend.NewFileBackend(f))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestBackendStoreOracle checks writes through the store against the
// backend's own medium: the memory slice and the file read back by the OS.
func TestBackendStoreOracle(t *testing.T) {
	p := []byte("vdisk over go-nbd")
	const off = 4093

	mem := make([]byte, 8192)
	ms := newMemBackendStore(t, mem)
	if _, err := ms.WriteAt(p, off); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mem[off:off+len(p)], p) {
		t.Fatalf("memory backend holds %q", mem[off:off+len(p)])
	}

	path := filepath.Join(t.TempDir(), "b.img")
	if err := os.WriteFile(path, make([]byte, 8192), 0o666); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bs, err := NewBackendStore(backend.NewFileBackend(f))
	if err != nil {
		t.Fatal(err)
	}
	if bs.Size() != 8192 {
		t.Fatalf("Size = %d", bs.Size())
	}
	if _, err := bs.WriteAt(p, off); err != nil {
		t.Fatal(err)
	}
	if err := bs.Sync(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[off:off+len(p)], p) || len(got) != 8192 {
		t.Fatalf("file holds %q (len %d)", got[off:off+len(p)], len(got))
	}
	// The store does not own the caller's file.
	if err := bs.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadAt(make([]byte, 1), 0); err != nil {
		t.Fatalf("closing the store closed the file: %v", err)
	}
}

// quirkyBackend misbehaves in the ways io.ReaderAt permits or forbids.
type quirkyBackend struct {
	size    int64
	sizeErr error
	short   bool
	closed  int
}

func (b *quirkyBackend) ReadAt(p []byte, off int64) (int, error) {
	if b.short {
		return len(p) / 2, nil
	}
	clear(p)
	return len(p), io.EOF // allowed for a read ending at the end
}

func (b *quirkyBackend) WriteAt(p []byte, off int64) (int, error) {
	if b.short {
		return len(p) / 2, nil
	}
	return len(p), nil
}

func (b *quirkyBackend) Size() (int64, error) { return b.size, b.sizeErr }
func (b *quirkyBackend) Sync() error          { return nil }
func (b *quirkyBackend) Close() error         { b.closed++; return nil }

func TestBackendStoreQuirks(t *testing.T) {
	sizeErr := errors.New("no size today")
	if _, err := NewBackendStore(&quirkyBackend{sizeErr: sizeErr}); !errors.Is(err, sizeErr) {
		t.Fatalf("NewBackendStore with failing Size = %v", err)
	}
	if _, err := NewBackendStore(&quirkyBackend{size: -1}); err == nil {
		t.Fatal("NewBackendStore accepted a negative size")
	}

	b := &quirkyBackend{size: 100}
	s, err := NewBackendStore(b)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.ReadAt(make([]byte, 10), 90); n != 10 || err != nil {
		t.Fatalf("full read with io.EOF = %d, %v; want 10, nil", n, err)
	}
	b.short = true
	if n, err := s.ReadAt(make([]byte, 10), 0); n != 5 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("silent short read = %d, %v; want 5, io.ErrUnexpectedEOF", n, err)
	}
	if n, err := s.WriteAt(make([]byte, 10), 0); n != 5 || !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("silent short write = %d, %v; want 5, io.ErrShortWrite", n, err)
	}
	if err := s.Close(); err != nil || b.closed != 1 {
		t.Fatalf("Close = %v, backend closed %d times", err, b.closed)
	}
	s.Close()
	if b.closed != 1 {
		t.Fatal("second Close reached the backend")
	}
}
