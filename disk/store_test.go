package disk

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

// The suite below holds every Store to the contract in store.go. Its oracle
// is a plain byte slice that mirrors each write; each store's own tests add
// outside oracles (stat, qemu-img, the go-nbd backend's memory).

// suiteSize is odd and spans several MemStore chunks, so edges and the
// partial last chunk are exercised.
const suiteSize = 3*MemChunkSize + 12345

type storeMaker func(t *testing.T, size int64) Store

func runStoreSuite(t *testing.T, mk storeMaker) {
	t.Run("RoundTripOddOffsets", func(t *testing.T) { testRoundTrip(t, mk) })
	t.Run("OutOfRange", func(t *testing.T) { testOutOfRange(t, mk) })
	t.Run("ZeroTrimMap", func(t *testing.T) { testZeroTrimMap(t, mk) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, mk) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, mk) })
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32()) | 1 // never zero, so zeroing is visible
	}
	return b
}

// checkAll compares the whole store with the model, reading it in pieces
// that straddle chunk edges.
func checkAll(t *testing.T, s Store, model []byte) {
	t.Helper()
	if got := s.Size(); got != int64(len(model)) {
		t.Fatalf("Size() = %d, want %d", got, len(model))
	}
	got := make([]byte, len(model))
	for off := 0; off < len(got); {
		n := min(len(got)-off, 40000)
		if k, err := s.ReadAt(got[off:off+n], int64(off)); err != nil || k != n {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v", n, off, k, err)
		}
		off += n
	}
	if i := firstDiff(got, model); i >= 0 {
		t.Fatalf("store differs from model at byte %d: got %#x, want %#x", i, got[i], model[i])
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

func testRoundTrip(t *testing.T, mk storeMaker) {
	s := mk(t, suiteSize)
	model := make([]byte, suiteSize)
	checkAll(t, s, model) // a new store reads as zeros
	r := rand.New(rand.NewPCG(1, 2))
	writes := []struct{ off, n int }{
		{0, 1},
		{1, 511},
		{511, 3},
		{MemChunkSize - 7, 14},                 // across a chunk edge
		{MemChunkSize*2 - 1, MemChunkSize + 2}, // across two edges
		{suiteSize - 1, 1},                     // last byte
		{suiteSize - 12345 - 3, 12348},         // into the partial last chunk, to the end
		{4097, 0},
	}
	for _, w := range writes {
		p := randBytes(r, w.n)
		if n, err := s.WriteAt(p, int64(w.off)); err != nil || n != w.n {
			t.Fatalf("WriteAt(%d bytes at %d) = %d, %v", w.n, w.off, n, err)
		}
		copy(model[w.off:], p)
	}
	for range 200 {
		off := r.IntN(suiteSize)
		n := r.IntN(min(suiteSize-off, 3*MemChunkSize) + 1)
		if r.IntN(2) == 0 {
			p := randBytes(r, n)
			if k, err := s.WriteAt(p, int64(off)); err != nil || k != n {
				t.Fatalf("WriteAt(%d bytes at %d) = %d, %v", n, off, k, err)
			}
			copy(model[off:], p)
		} else {
			got := make([]byte, n)
			if k, err := s.ReadAt(got, int64(off)); err != nil || k != n {
				t.Fatalf("ReadAt(%d bytes at %d) = %d, %v", n, off, k, err)
			}
			if i := firstDiff(got, model[off:off+n]); i >= 0 {
				t.Fatalf("ReadAt(%d bytes at %d): byte %d differs", n, off, i)
			}
		}
	}
	if err := s.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	checkAll(t, s, model)
}

func testOutOfRange(t *testing.T, mk storeMaker) {
	s := mk(t, suiteSize)
	model := randBytes(rand.New(rand.NewPCG(3, 4)), suiteSize)
	if _, err := s.WriteAt(model, 0); err != nil {
		t.Fatal(err)
	}
	const size = suiteSize
	bad := []struct {
		name   string
		off, n int64
	}{
		{"negative offset", -1, 1},
		{"at end", size, 1},
		{"straddling end", size - 1, 2},
		{"past end", size + 100, 10},
		{"empty past end", size + 1, 0},
		{"huge offset", math.MaxInt64, 1},
		{"offset+length overflows", size - 1, math.MaxInt64},
		{"negative length", 0, -1},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			if c.n >= 0 && c.n < 1<<20 {
				p := bytes.Repeat([]byte{0xEE}, int(c.n))
				if n, err := s.ReadAt(p, c.off); !errors.Is(err, ErrOutOfRange) || n != 0 {
					t.Errorf("ReadAt = %d, %v; want 0, ErrOutOfRange", n, err)
				}
				if n, err := s.WriteAt(p, c.off); !errors.Is(err, ErrOutOfRange) || n != 0 {
					t.Errorf("WriteAt = %d, %v; want 0, ErrOutOfRange", n, err)
				}
			}
			if err := ZeroRange(s, c.off, c.n, 0); !errors.Is(err, ErrOutOfRange) {
				t.Errorf("ZeroRange = %v; want ErrOutOfRange", err)
			}
			if err := TrimRange(s, c.off, c.n); !errors.Is(err, ErrOutOfRange) {
				t.Errorf("TrimRange = %v; want ErrOutOfRange", err)
			}
			if _, err := MapAllocation(s, c.off, c.n); !errors.Is(err, ErrOutOfRange) {
				t.Errorf("MapAllocation = %v; want ErrOutOfRange", err)
			}
		})
	}
	// Empty requests at the very end are in range.
	if n, err := s.ReadAt(nil, size); n != 0 || err != nil {
		t.Errorf("ReadAt(empty at end) = %d, %v", n, err)
	}
	if n, err := s.WriteAt(nil, size); n != 0 || err != nil {
		t.Errorf("WriteAt(empty at end) = %d, %v", n, err)
	}
	if ext, err := MapAllocation(s, size, 0); err != nil || len(ext) != 0 {
		t.Errorf("MapAllocation(empty at end) = %v, %v", ext, err)
	}
	// Nothing was written by the refused requests, and the size held.
	checkAll(t, s, model)
}

// checkExtents checks the AllocationMapper contract and that holes and zero
// extents really read as zeros.
func checkExtents(t *testing.T, s Store, off, length int64) []Extent {
	t.Helper()
	ext, err := MapAllocation(s, off, length)
	if err != nil {
		t.Fatalf("MapAllocation(%d, %d): %v", off, length, err)
	}
	pos := off
	for i, e := range ext {
		if e.Offset != pos || e.Length <= 0 {
			t.Fatalf("extent %d = %+v does not continue at %d: %v", i, e, pos, ext)
		}
		if e.Hole && !e.Zero {
			t.Fatalf("extent %d = %+v: a hole must read as zero", i, e)
		}
		if i > 0 && ext[i-1].Hole == e.Hole && ext[i-1].Zero == e.Zero {
			t.Fatalf("extents %d and %d agree and should have been merged: %v", i-1, i, ext)
		}
		if e.Zero {
			// Huge sparse stores are only sampled, at both ends.
			const most = 1 << 20
			for _, at := range []int64{e.Offset, max(e.Offset, e.End()-most)} {
				got := make([]byte, min(e.Length, most))
				if _, err := s.ReadAt(got, at); err != nil {
					t.Fatal(err)
				}
				if !isZero(got) {
					t.Fatalf("extent %+v is reported zero but is not", e)
				}
			}
		}
		pos = e.End()
	}
	if pos != off+length {
		t.Fatalf("extents end at %d, want %d: %v", pos, off+length, ext)
	}
	return ext
}

func testZeroTrimMap(t *testing.T, mk storeMaker) {
	s := mk(t, suiteSize)
	r := rand.New(rand.NewPCG(5, 6))
	model := randBytes(r, suiteSize)
	if _, err := s.WriteAt(model, 0); err != nil {
		t.Fatal(err)
	}
	checkExtents(t, s, 0, suiteSize)

	ranges := []struct{ off, n int64 }{
		{0, 0},
		{1, 1},
		{100, 5000},
		{MemChunkSize, MemChunkSize},         // exactly one chunk
		{MemChunkSize - 1, MemChunkSize + 2}, // one chunk and both neighbours' edges
		{3 * MemChunkSize, 12345},            // the partial last chunk, to the end
		{0, suiteSize},
	}
	for _, flags := range []ZeroFlags{0, ZeroNoHole, ZeroFast, ZeroNoHole | ZeroFast} {
		for _, c := range ranges {
			name := fmt.Sprintf("Zero/flags=%d/%d+%d", flags, c.off, c.n)
			// Refill first so each zeroing has something to clear.
			p := randBytes(r, int(c.n))
			if _, err := s.WriteAt(p, c.off); err != nil {
				t.Fatal(err)
			}
			copy(model[c.off:], p)
			err := ZeroRange(s, c.off, c.n, flags)
			if errors.Is(err, ErrSlowZero) && flags&ZeroFast != 0 {
				// Refused, so nothing may have changed.
				checkAll(t, s, model)
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			clear(model[c.off : c.off+c.n])
			checkAll(t, s, model)
			checkExtents(t, s, 0, suiteSize)
			checkExtents(t, s, c.off, c.n)
		}
	}
	for _, c := range ranges {
		p := randBytes(r, int(c.n))
		if _, err := s.WriteAt(p, c.off); err != nil {
			t.Fatal(err)
		}
		copy(model[c.off:], p)
		if err := TrimRange(s, c.off, c.n); err != nil {
			t.Fatalf("Trim %d+%d: %v", c.off, c.n, err)
		}
		// After a trim each byte is either what it was or zero.
		got := make([]byte, c.n)
		if _, err := s.ReadAt(got, c.off); err != nil {
			t.Fatal(err)
		}
		for i, b := range got {
			if b != 0 && b != model[c.off+int64(i)] {
				t.Fatalf("Trim %d+%d: byte %d is %#x, neither old %#x nor zero", c.off, c.n, i, b, model[c.off+int64(i)])
			}
		}
		copy(model[c.off:], got)
		checkAll(t, s, model)
		checkExtents(t, s, 0, suiteSize)
	}
}

// testConcurrent runs writers, readers, zeroing and mapping at once, each
// goroutine in its own region so the model stays exact; -race checks the
// store's locking.
func testConcurrent(t *testing.T, mk storeMaker) {
	const workers = 8
	const region = MemChunkSize/2 + 333 // regions share chunks and locks
	s := mk(t, workers*region)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			base := int64(w * region)
			model := make([]byte, region)
			buf := make([]byte, region)
			for range 300 {
				off := r.IntN(region)
				n := r.IntN(region-off) + 1
				switch r.IntN(5) {
				case 0, 1:
					p := randBytes(r, n)
					if _, err := s.WriteAt(p, base+int64(off)); err != nil {
						errs <- err
						return
					}
					copy(model[off:], p)
				case 2:
					if err := ZeroRange(s, base+int64(off), int64(n), 0); err != nil {
						errs <- err
						return
					}
					clear(model[off : off+n])
				case 3:
					if _, err := MapAllocation(s, base, region); err != nil {
						errs <- err
						return
					}
				case 4:
					if _, err := s.ReadAt(buf[:n], base+int64(off)); err != nil {
						errs <- err
						return
					}
					if i := firstDiff(buf[:n], model[off:off+n]); i >= 0 {
						errs <- fmt.Errorf("worker %d: byte %d differs", w, base+int64(off+i))
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testClosed(t *testing.T, mk storeMaker) {
	s := mk(t, suiteSize)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.ReadAt(make([]byte, 10), 0); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("ReadAt after Close = %v, want fs.ErrClosed", err)
	}
	if _, err := s.WriteAt(make([]byte, 10), 0); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("WriteAt after Close = %v, want fs.ErrClosed", err)
	}
	if err := s.Close(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("second Close = %v, want fs.ErrClosed", err)
	}
	if _, ok := s.(Zeroer); ok {
		if err := ZeroRange(s, 0, 10, 0); !errors.Is(err, fs.ErrClosed) {
			t.Errorf("ZeroRange after Close = %v, want fs.ErrClosed", err)
		}
	}
	if _, ok := s.(Trimmer); ok {
		if err := TrimRange(s, 0, 10); !errors.Is(err, fs.ErrClosed) {
			t.Errorf("TrimRange after Close = %v, want fs.ErrClosed", err)
		}
	}
	if _, ok := s.(AllocationMapper); ok {
		if _, err := MapAllocation(s, 0, 10); !errors.Is(err, fs.ErrClosed) {
			t.Errorf("MapAllocation after Close = %v, want fs.ErrClosed", err)
		}
	}
}

func TestZeroRangeFallback(t *testing.T) {
	// A BackendStore has no capabilities, so the helpers fall back.
	mem := make([]byte, 10000)
	for i := range mem {
		mem[i] = 0xAB
	}
	s := newMemBackendStore(t, mem)
	if _, ok := Store(s).(Zeroer); ok {
		t.Fatal("BackendStore unexpectedly has WriteZeroes; this test needs a store without it")
	}
	err := ZeroRange(s, 10, 100, ZeroFast)
	if !errors.Is(err, ErrSlowZero) || !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("ZeroRange(ZeroFast) = %v, want ErrSlowZero matching errors.ErrUnsupported", err)
	}
	if mem[10] != 0xAB {
		t.Fatal("a refused ZeroFast changed data")
	}
	// Bigger than the zero buffer, to cross its chunks.
	big := make([]byte, 3*zeroChunk+5)
	s = newMemBackendStore(t, big)
	for i := range big {
		big[i] = 1
	}
	if err := ZeroRange(s, 3, int64(len(big)-4), 0); err != nil {
		t.Fatal(err)
	}
	if big[2] != 1 || big[len(big)-1] != 1 || !isZero(big[3:len(big)-1]) {
		t.Fatal("fallback zeroing did not zero exactly the range")
	}
	if err := TrimRange(s, 0, 10); err != nil || big[0] != 1 {
		t.Fatalf("TrimRange on a store without Trim = %v and changed data=%v; want a no-op", err, big[0] != 1)
	}
	ext, err := MapAllocation(s, 5, 100)
	if err != nil || len(ext) != 1 || ext[0] != (Extent{Offset: 5, Length: 100}) {
		t.Fatalf("MapAllocation fallback = %v, %v; want one data extent", ext, err)
	}
}

func TestIsZero(t *testing.T) {
	for n := range 100 {
		b := make([]byte, n)
		if !isZero(b) {
			t.Fatalf("isZero(%d zeros) = false", n)
		}
		for i := range n {
			b[i] = 0x80
			if isZero(b) {
				t.Fatalf("isZero with byte %d of %d set = true", i, n)
			}
			b[i] = 0
		}
	}
}
