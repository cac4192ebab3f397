package disk

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
)

// MemChunkSize is the granularity at which a MemStore allocates and frees
// memory, and so the granularity of the holes it reports.
const MemChunkSize = 64 << 10

const (
	memLeafChunks = 512 // chunks per leaf table: 32 MiB of store per leaf
	memStripes    = 64  // locks shared among chunks by index
)

type memChunk [MemChunkSize]byte

// memLeaf is the second level of the chunk table, allocated on the first
// write into its 32 MiB, so a large empty store costs only its top level.
type memLeaf [memLeafChunks]atomic.Pointer[memChunk]

// MemStore is a sparse Store in memory, for tests and scratch disks: it
// takes memory only for the 64 KiB chunks written with something other
// than zeros, and gives it back when they are trimmed or zeroed.
//
// Chunk pointers are read without locks; a chunk's bytes are guarded by one
// of a fixed set of reader/writer locks chosen by chunk index, so requests to
// different chunks rarely contend and reads of the same chunk never do. A
// request spanning chunks takes their locks one at a time (never two at
// once), so it is atomic only within each chunk.
type MemStore struct {
	size    int64
	dir     []atomic.Pointer[memLeaf] // fixed length; entries set once, cleared by Close
	stripes [memStripes]sync.RWMutex  // stripes[i%memStripes] guards chunk i's bytes and pointer changes
	closed  atomic.Bool
}

var (
	_ Store            = (*MemStore)(nil)
	_ Trimmer          = (*MemStore)(nil)
	_ Zeroer           = (*MemStore)(nil)
	_ AllocationMapper = (*MemStore)(nil)
)

// NewMemStore returns an all-zero store of size bytes that has allocated
// nothing yet.
func NewMemStore(size int64) (*MemStore, error) {
	if size < 0 {
		return nil, fmt.Errorf("disk: memory store: negative size %d", size)
	}
	chunks := (size + MemChunkSize - 1) / MemChunkSize
	leaves := (chunks + memLeafChunks - 1) / memLeafChunks
	return &MemStore{size: size, dir: make([]atomic.Pointer[memLeaf], leaves)}, nil
}

// Size is the size the store was created with.
func (m *MemStore) Size() int64 { return m.size }

// ReadOnly is false: a memory store is always writable.
func (m *MemStore) ReadOnly() bool { return false }

// Sync has nothing to make durable.
func (m *MemStore) Sync() error {
	if m.closed.Load() {
		return errClosed
	}
	return nil
}

// Close frees the store's memory. Requests already running when Close is
// called may see the data vanish (read as zeros) before they end.
func (m *MemStore) Close() error {
	if m.closed.Swap(true) {
		return errClosed
	}
	for i := range m.dir {
		m.dir[i].Store(nil)
	}
	return nil
}

// Allocated is the number of bytes of chunk memory the store holds, for
// tests and for reporting how much of a scratch disk is in use.
func (m *MemStore) Allocated() int64 {
	var n int64
	for i := range m.dir {
		leaf := m.dir[i].Load()
		if leaf == nil {
			continue
		}
		for j := range leaf {
			if leaf[j].Load() != nil {
				n += MemChunkSize
			}
		}
	}
	return n
}

// slot returns where chunk ci's pointer lives, creating its leaf if create
// is set; nil means the whole leaf is a hole.
func (m *MemStore) slot(ci int64, create bool) *atomic.Pointer[memChunk] {
	d := &m.dir[ci/memLeafChunks]
	leaf := d.Load()
	if leaf == nil {
		if !create {
			return nil
		}
		// Leaves are only ever added (until Close), so losing the race
		// just means using the winner's.
		if d.CompareAndSwap(nil, new(memLeaf)) {
			leaf = d.Load()
		} else if leaf = d.Load(); leaf == nil {
			return nil // closed meanwhile
		}
	}
	return &leaf[ci%memLeafChunks]
}

func (m *MemStore) lock(ci int64) *sync.RWMutex { return &m.stripes[ci%memStripes] }

// ReadAt copies from the store; holes read as zeros.
func (m *MemStore) ReadAt(p []byte, off int64) (int, error) {
	if err := checkRange("read", off, len(p), m.size); err != nil {
		return 0, err
	}
	if m.closed.Load() {
		return 0, errClosed
	}
	for done := 0; done < len(p); {
		pos := off + int64(done)
		ci, co := pos/MemChunkSize, int(pos%MemChunkSize)
		dst := p[done:min(len(p), done+MemChunkSize-co)]
		mu := m.lock(ci)
		mu.RLock()
		var c *memChunk
		if sl := m.slot(ci, false); sl != nil {
			c = sl.Load()
		}
		if c != nil {
			copy(dst, c[co:])
		} else {
			clear(dst)
		}
		mu.RUnlock()
		done += len(dst)
	}
	return len(p), nil
}

// WriteAt copies into the store, allocating chunks as it goes; writing zeros
// into a hole allocates nothing, so formatting a large disk stays cheap.
func (m *MemStore) WriteAt(p []byte, off int64) (int, error) {
	if err := checkRange("write", off, len(p), m.size); err != nil {
		return 0, err
	}
	if m.closed.Load() {
		return 0, errClosed
	}
	for done := 0; done < len(p); {
		pos := off + int64(done)
		ci, co := pos/MemChunkSize, int(pos%MemChunkSize)
		src := p[done:min(len(p), done+MemChunkSize-co)]
		done += len(src)
		mu := m.lock(ci)
		mu.Lock()
		sl := m.slot(ci, false)
		var c *memChunk
		if sl != nil {
			c = sl.Load()
		}
		if c == nil {
			if isZero(src) {
				mu.Unlock()
				continue
			}
			if sl = m.slot(ci, true); sl == nil {
				mu.Unlock()
				return done - len(src), errClosed
			}
			c = new(memChunk)
			sl.Store(c)
		}
		copy(c[co:], src)
		mu.Unlock()
	}
	return len(p), nil
}

// Trim frees the chunks inside the range and zeroes the parts of chunks at
// its edges, so the range reads as zeros afterwards.
func (m *MemStore) Trim(off, length int64) error {
	return m.zero("trim", off, length, false)
}

// WriteZeroes frees the chunks inside the range and zeroes the edges; with
// ZeroNoHole it keeps (or allocates) every chunk instead. Zeroing memory is
// never slower than writing it, so ZeroFast never fails.
func (m *MemStore) WriteZeroes(off, length int64, flags ZeroFlags) error {
	return m.zero("zero", off, length, flags&ZeroNoHole != 0)
}

func (m *MemStore) zero(op string, off, length int64, keep bool) error {
	if err := checkRange64(op, off, length, m.size); err != nil {
		return err
	}
	if m.closed.Load() {
		return errClosed
	}
	for pos, end := off, off+length; pos < end; {
		ci, co := pos/MemChunkSize, pos%MemChunkSize
		n := min(end-pos, MemChunkSize-co)
		// The store's last chunk is whole in memory but not in the store;
		// reaching the store's end counts as covering the chunk.
		whole := co == 0 && (n == MemChunkSize || pos+n == m.size)
		pos += n
		sl := m.slot(ci, keep)
		if sl == nil {
			if keep {
				return errClosed
			}
			continue // the whole leaf is a hole
		}
		mu := m.lock(ci)
		mu.Lock()
		switch c := sl.Load(); {
		case c == nil && keep:
			sl.Store(new(memChunk))
		case c == nil:
		case whole && !keep:
			sl.Store(nil)
		default:
			clear(c[co : co+n])
		}
		mu.Unlock()
	}
	return nil
}

// Allocation reports each chunk as a hole or as data.
func (m *MemStore) Allocation(off, length int64) ([]Extent, error) {
	if err := checkRange64("map", off, length, m.size); err != nil {
		return nil, err
	}
	if m.closed.Load() {
		return nil, errClosed
	}
	var ext []Extent
	for pos, end := off, off+length; pos < end; {
		ci := pos / MemChunkSize
		var next int64
		hole := true
		if leaf := m.dir[ci/memLeafChunks].Load(); leaf == nil {
			next = (ci/memLeafChunks + 1) * memLeafChunks * MemChunkSize
		} else {
			next = (ci + 1) * MemChunkSize
			hole = leaf[ci%memLeafChunks].Load() == nil
		}
		next = min(next, end)
		ext = appendExtent(ext, Extent{Offset: pos, Length: next - pos, Hole: hole, Zero: hole})
		pos = next
	}
	return ext, nil
}

// isZero reports whether b is all zeros, a word at a time.
func isZero(b []byte) bool {
	for len(b) >= 32 {
		if binary.LittleEndian.Uint64(b)|binary.LittleEndian.Uint64(b[8:])|
			binary.LittleEndian.Uint64(b[16:])|binary.LittleEndian.Uint64(b[24:]) != 0 {
			return false
		}
		b = b[32:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
