package nbd

import (
	"sync"
	"sync/atomic"
	"time"
)

// probeDevice wraps a MemDevice to observe and perturb what the server
// does: it records the flags and requestors it sees, counts concurrent
// calls, can delay or block reads, refuse fast zeroing, fail or panic.
type probeDevice struct {
	*MemDevice

	readDelay func(off int64) time.Duration // nil: no delay
	gate      chan struct{}                 // non-nil: reads wait for a receive
	slowZero  atomic.Bool                   // FastZero requests get ErrNotFast
	failWith  error                         // returned by every WriteAt
	panicRead bool
	failAt    int64 // > 0: reads covering this offset fail there with an OffsetError

	cur, peak atomic.Int64
	mu        sync.Mutex
	fuaWrites int
	noHoles   int
	seen      map[string]bool // requestors
	exports   map[string]bool
	cmds      []Command
}

func newProbe(size int64) *probeDevice {
	return &probeDevice{MemDevice: NewMemDevice(size), seen: map[string]bool{}, exports: map[string]bool{}}
}

func (p *probeDevice) enter(r *Request) func() {
	n := p.cur.Add(1)
	for {
		old := p.peak.Load()
		if n <= old || p.peak.CompareAndSwap(old, n) {
			break
		}
	}
	if r != nil {
		p.mu.Lock()
		p.seen[r.Requestor()] = true
		p.exports[r.Export()] = true
		p.cmds = append(p.cmds, r.Command())
		p.mu.Unlock()
	}
	return func() { p.cur.Add(-1) }
}

func (p *probeDevice) ReadAt(r *Request, b []byte, off int64) error {
	defer p.enter(r)()
	if p.panicRead {
		panic("probe: read panics")
	}
	if p.gate != nil {
		<-p.gate
	}
	if p.readDelay != nil {
		time.Sleep(p.readDelay(off))
	}
	if p.failAt > 0 && off <= p.failAt && p.failAt < off+int64(len(b)) {
		n := p.failAt - off
		p.MemDevice.ReadAt(r, b[:n], off)
		return &OffsetError{Offset: p.failAt, Err: EIO}
	}
	return p.MemDevice.ReadAt(r, b, off)
}

func (p *probeDevice) WriteAt(r *Request, b []byte, off int64) error {
	defer p.enter(r)()
	if p.failWith != nil {
		return p.failWith
	}
	if r.FUA() {
		p.mu.Lock()
		p.fuaWrites++
		p.mu.Unlock()
	}
	return p.MemDevice.WriteAt(r, b, off)
}

func (p *probeDevice) WriteZeroes(r *Request, off, n int64) error {
	defer p.enter(r)()
	if r.FastZero() && p.slowZero.Load() {
		return ErrNotFast
	}
	if r.NoHole() {
		p.mu.Lock()
		p.noHoles++
		p.mu.Unlock()
	}
	return p.MemDevice.WriteZeroes(r, off, n)
}

func (p *probeDevice) Flush(r *Request) error {
	defer p.enter(r)()
	return p.MemDevice.Flush(r)
}

// counts returns the FUA writes and NO_HOLE zeroes seen so far.
func (p *probeDevice) counts() (fua, noHole int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fuaWrites, p.noHoles
}

// requestors returns the requestors and exports seen so far.
func (p *probeDevice) requestors() (who, exports []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k := range p.seen {
		who = append(who, k)
	}
	for k := range p.exports {
		exports = append(exports, k)
	}
	return who, exports
}
