package nbd

import (
	"sync"
	"sync/atomic"
)

// MemChunk is the allocation unit of a MemDevice: ranges are allocated,
// punched out and reported by BlockStatus in whole chunks.
const MemChunk = 4096

// MemDevice is a sparse Device in memory, for tests and examples: unwritten
// chunks are holes that read as zeroes and are reported as
// StateHole|StateZero; Trim and WriteZeroes (without NoHole) punch holes.
// It is safe for concurrent use. Its methods accept a nil *Request, so
// tests may call them directly.
type MemDevice struct {
	size    int64
	flushes atomic.Int64

	mu     sync.RWMutex
	chunks [][]byte // guarded by mu; nil entries are holes
}

// NewMemDevice returns an all-hole device of size bytes.
func NewMemDevice(size int64) *MemDevice {
	return &MemDevice{size: size, chunks: make([][]byte, (size+MemChunk-1)/MemChunk)}
}

// Size returns the device size.
func (m *MemDevice) Size() int64 { return m.size }

// Flushes counts Flush calls, so tests can see that the server flushed.
func (m *MemDevice) Flushes() int64 { return m.flushes.Load() }

func (m *MemDevice) inRange(off, n int64) bool {
	return off >= 0 && n >= 0 && off <= m.size && n <= m.size-off
}

// ReadAt copies the range into p.
func (m *MemDevice) ReadAt(_ *Request, p []byte, off int64) error {
	if !m.inRange(off, int64(len(p))) {
		return EINVAL
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	for len(p) > 0 {
		i, o := off/MemChunk, off%MemChunk
		n := min(int64(len(p)), MemChunk-o)
		if c := m.chunks[i]; c != nil {
			copy(p[:n], c[o:])
		} else {
			clear(p[:n])
		}
		p = p[n:]
		off += n
	}
	return nil
}

// WriteAt copies p into the device, allocating the chunks it touches.
func (m *MemDevice) WriteAt(_ *Request, p []byte, off int64) error {
	if !m.inRange(off, int64(len(p))) {
		return ENOSPC
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(p) > 0 {
		i, o := off/MemChunk, off%MemChunk
		c := m.chunks[i]
		if c == nil {
			c = make([]byte, MemChunk)
			m.chunks[i] = c
		}
		n := copy(c[o:], p)
		p = p[n:]
		off += int64(n)
	}
	return nil
}

// Flush only counts: memory is as durable as it gets.
func (m *MemDevice) Flush(*Request) error {
	m.flushes.Add(1)
	return nil
}

// Trim punches the range out (whole chunks become holes, partial ones are
// zeroed).
func (m *MemDevice) Trim(_ *Request, off, n int64) error {
	if !m.inRange(off, n) {
		return EINVAL
	}
	m.zero(off, n, true)
	return nil
}

// WriteZeroes zeroes the range, punching holes unless r.NoHole(). Memory
// is always fast, so FastZero is always honoured.
func (m *MemDevice) WriteZeroes(r *Request, off, n int64) error {
	if !m.inRange(off, n) {
		return ENOSPC
	}
	m.zero(off, n, r == nil || !r.NoHole())
	return nil
}

func (m *MemDevice) zero(off, n int64, punch bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	end := off + n
	for off < end {
		i, o := off/MemChunk, off%MemChunk
		l := min(MemChunk-o, end-off)
		c := m.chunks[i]
		whole := o == 0 && (l == MemChunk || off+l == m.size)
		switch {
		case punch && whole:
			m.chunks[i] = nil
		case c != nil:
			clear(c[o : o+l])
		case !punch:
			m.chunks[i] = make([]byte, MemChunk)
		}
		off += l
	}
}

// BlockStatus reports holes and data chunk by chunk, merging runs, up to
// 1024 extents per call.
func (m *MemDevice) BlockStatus(_ *Request, off, n int64, ext []Extent) ([]Extent, error) {
	if !m.inRange(off, n) {
		return ext, EINVAL
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	end := off + n
	start := len(ext)
	for off < end && len(ext)-start < 1024 {
		i, o := off/MemChunk, off%MemChunk
		l := min(MemChunk-o, end-off)
		var f uint32
		if m.chunks[i] == nil {
			f = StateHole | StateZero
		}
		if k := len(ext) - 1; k >= start && ext[k].Flags == f {
			ext[k].Length += l
		} else {
			ext = append(ext, Extent{Length: l, Flags: f})
		}
		off += l
	}
	return ext, nil
}

// Cache does nothing: everything is in memory already.
func (m *MemDevice) Cache(*Request, int64, int64) error { return nil }

// Allocated returns the number of allocated bytes (whole chunks).
func (m *MemDevice) Allocated() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var n int64
	for _, c := range m.chunks {
		if c != nil {
			n += MemChunk
		}
	}
	return n
}
