package disk

import (
	"bytes"
	"testing"
)

func TestMemStore(t *testing.T) {
	runStoreSuite(t, func(t *testing.T, size int64) Store {
		s, err := NewMemStore(size)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestMemStoreSparse checks the memory accounting: a chunk is allocated by
// the first non-zero write and freed by zeroing or trimming all of it.
func TestMemStoreSparse(t *testing.T) {
	const size = 1 << 40 // 1 TiB costs only the top-level table
	s, err := NewMemStore(size)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Allocated(); got != 0 {
		t.Fatalf("new store has %d bytes allocated", got)
	}
	if _, err := s.WriteAt(make([]byte, 3*MemChunkSize), 5); err != nil {
		t.Fatal(err)
	}
	if got := s.Allocated(); got != 0 {
		t.Fatalf("writing zeros into holes allocated %d bytes", got)
	}
	off := int64(size - MemChunkSize - 10) // ends in the last chunk, across an edge
	if _, err := s.WriteAt([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, off); err != nil {
		t.Fatal(err)
	}
	if got := s.Allocated(); got != 2*MemChunkSize {
		t.Fatalf("Allocated = %d, want two chunks", got)
	}
	ext := checkExtents(t, s, 0, size)
	want := []Extent{
		{Offset: 0, Length: size - 2*MemChunkSize, Hole: true, Zero: true},
		{Offset: size - 2*MemChunkSize, Length: 2 * MemChunkSize},
	}
	if !equalExtents(ext, want) {
		t.Fatalf("Allocation = %v, want %v", ext, want)
	}
	// Zeroing part of a chunk keeps it; zeroing all of it frees it.
	if err := s.WriteZeroes(off, 5, 0); err != nil {
		t.Fatal(err)
	}
	if got := s.Allocated(); got != 2*MemChunkSize {
		t.Fatalf("partial zero freed memory: Allocated = %d", got)
	}
	if err := s.Trim(size-MemChunkSize, MemChunkSize); err != nil {
		t.Fatal(err)
	}
	if got := s.Allocated(); got != MemChunkSize {
		t.Fatalf("trimming the last chunk: Allocated = %d, want one chunk", got)
	}
	got := make([]byte, 12)
	if _, err := s.ReadAt(got, off); err != nil {
		t.Fatal(err)
	}
	if want := []byte{0, 0, 0, 0, 0, 6, 7, 8, 9, 10, 0, 0}; !bytes.Equal(got, want) {
		t.Fatalf("read back %v, want %v", got, want)
	}
	// ZeroNoHole allocates, so the range is reserved.
	if err := s.WriteZeroes(0, 2*MemChunkSize, ZeroNoHole|ZeroFast); err != nil {
		t.Fatal(err)
	}
	if got := s.Allocated(); got != 3*MemChunkSize {
		t.Fatalf("ZeroNoHole: Allocated = %d, want three chunks", got)
	}
	if err := s.WriteZeroes(0, size, 0); err != nil {
		t.Fatal(err)
	}
	if got := s.Allocated(); got != 0 {
		t.Fatalf("zeroing everything left %d bytes allocated", got)
	}
}

// The last chunk of a store whose size is not a multiple of the chunk
// size is freed by zeroing to the end, though that is not a whole chunk.
func TestMemStorePartialLastChunk(t *testing.T) {
	s, _ := NewMemStore(MemChunkSize + 100)
	if _, err := s.WriteAt([]byte{1}, MemChunkSize+99); err != nil {
		t.Fatal(err)
	}
	if err := s.Trim(MemChunkSize, 100); err != nil {
		t.Fatal(err)
	}
	if got := s.Allocated(); got != 0 {
		t.Fatalf("Allocated = %d after trimming the partial last chunk", got)
	}
}

func equalExtents(a, b []Extent) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func BenchmarkMemStoreReadAt4K(b *testing.B) {
	const size = 64 << 20
	s, _ := NewMemStore(size)
	defer s.Close()
	fill := bytes.Repeat([]byte{0x5A}, 1<<20)
	for off := int64(0); off < size; off += int64(len(fill)) {
		s.WriteAt(fill, off)
	}
	b.SetBytes(4096)
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 4096)
		off := int64(0)
		for pb.Next() {
			if _, err := s.ReadAt(buf, off); err != nil {
				b.Fatal(err)
			}
			off = (off + 7*4096) % size
		}
	})
}

func BenchmarkMemStoreWriteAt4K(b *testing.B) {
	const size = 64 << 20
	s, _ := NewMemStore(size)
	defer s.Close()
	b.SetBytes(4096)
	b.RunParallel(func(pb *testing.PB) {
		buf := bytes.Repeat([]byte{0xA5}, 4096)
		off := int64(0)
		for pb.Next() {
			if _, err := s.WriteAt(buf, off); err != nil {
				b.Fatal(err)
			}
			off = (off + 7*4096) % size
		}
	})
}
