package fat

import (
	"cmp"
	"slices"
	"sync"

	"github.com/vdisk-dev/vdisk/iomgr"
)

// The file data cache: the part of NT's cache manager that FastFAT leans
// on, reduced to what one volume needs. File data is cached per FCB (a
// stream, as NT's shared cache map is per file), in pages of pageSize
// bytes of file offsets, so that freeing a file's clusters can never let a
// stale page be written over clusters that another file or a directory
// has since taken: pages are dropped before their clusters are freed.
//
// Writes land in pages and are written back later (write-back caching):
// at the cleanup of the file's last handle, on FLUSH_BUFFERS, before a
// volume lock, dismount and shutdown, when the file goes away, and when
// the cache is full (the least recently used page's file is written back,
// then clean pages are evicted). Write-back sends one IRP per contiguous
// run of clusters, coalescing neighbouring dirty pages up to
// writeBackChunk bytes, so a long file goes down in large transfers.
//
// Invariant: in a cached page, the bytes past the file's size are zero.
// Pages are loaded only up to the size, a truncation zeroes the tail, and
// so extending a file through the cache needs no zero-fill reads.

const (
	// pageSize is the unit of caching: a multiple of every sector size.
	pageSize = 64 << 10
	// cacheLimit bounds the page memory of one volume.
	cacheLimit = 16 << 20
	// writeBackChunk bounds one coalesced write-back transfer.
	writeBackChunk = 1 << 20
	// readAheadPages is how many pages past a read the IRP path loads, so
	// that the next reads of a file read in order are fast I/O.
	readAheadPages = 4
)

// page is one cached pageSize piece of a file.
type page struct {
	f      *fcb
	idx    int64  // page number in the file: it holds bytes [idx*pageSize, (idx+1)*pageSize)
	slot   int    // where buf lies in the cache's arena
	buf    []byte // pageSize bytes of the arena
	lo, hi int    // the changed bytes not yet written back; lo == hi when clean
	// used is how much of buf holds the page's bytes: past it the buffer
	// holds whatever its last page left, and the page reads as zeros.
	// Reused buffers are so never cleared.
	used int

	prev, next *page // the LRU ring of the cache
}

// copyOut copies the page's bytes from offset within into b, zeros past
// used, and returns how many bytes it filled (up to the page's end).
func (p *page) copyOut(b []byte, within int) int {
	n := min(len(b), pageSize-within)
	k := 0
	if within < p.used {
		k = copy(b[:n], p.buf[within:p.used])
	}
	clear(b[k:n])
	return n
}

// extend makes the page's bytes up to end real, zeroing what lies between
// used and end.
func (p *page) extend(end int) {
	if end > p.used {
		clear(p.buf[p.used:end])
		p.used = end
	}
}

func (p *page) dirty() bool { return p.lo < p.hi }

// dataCache holds the cached pages of one volume, in an arena of limit
// page slots, allocated a segment (writeBackChunk bytes) at a time as
// slots are first used. A file's next page takes the slot after its
// previous one when it is free, so a file written in order lies in order
// in the arena and write-back sends runs of pages straight from it,
// without copying.
// Its mutex is taken under the volume lock (shared or exclusive) and is
// held while pages are loaded and written back: those IRPs go to the
// storage stack, which never calls back into the file system.
type dataCache struct {
	mu    sync.Mutex // guards everything below and every fcb's pages map
	ring  page       // sentinel: ring.next is the most recently used page
	pages int
	dirty int      // pages with changes not yet written back
	limit int      // most pages held at once: the arena's slots
	segs  [][]byte // the arena, segSlots slots a segment; nil until used
	inUse []bool
}

// segSlots is the slots of one arena segment: a write-back run never
// crosses one.
const segSlots = writeBackChunk / pageSize

func newDataCache(limitBytes int) *dataCache {
	c := &dataCache{limit: max(limitBytes/pageSize, 4)}
	c.ring.next, c.ring.prev = &c.ring, &c.ring
	return c
}

// setLimit changes the number of slots; only while no page is cached.
func (c *dataCache) setLimit(n int) {
	c.limit, c.segs, c.inUse = n, nil, nil
}

// takeSlot returns a free slot, want if it is free, else the lowest (so
// that a volume of small files keeps using the same memory). There is
// one: the caller made room.
func (c *dataCache) takeSlot(want int) int {
	if c.inUse == nil {
		c.inUse = make([]bool, c.limit)
		c.segs = make([][]byte, (c.limit+segSlots-1)/segSlots)
	}
	s := want
	if s < 0 || s >= c.limit || c.inUse[s] {
		s = 0
		for c.inUse[s] {
			s++
		}
	}
	c.inUse[s] = true
	if c.segs[s/segSlots] == nil {
		c.segs[s/segSlots] = make([]byte, segSlots*pageSize)
	}
	return s
}

// slotBytes returns the arena from slot s's start to n bytes on (n may
// reach into the following slots of the same segment).
func (c *dataCache) slotBytes(s, n int) []byte {
	off := s % segSlots * pageSize
	return c.segs[s/segSlots][off : off+n]
}

func (c *dataCache) unlinkRing(p *page) {
	p.prev.next, p.next.prev = p.next, p.prev
	p.prev, p.next = nil, nil
}

func (c *dataCache) touch(p *page) {
	if p.prev != nil {
		c.unlinkRing(p)
	}
	p.next, p.prev = c.ring.next, &c.ring
	c.ring.next.prev = p
	c.ring.next = p
}

// drop forgets a page, dirty or not.
func (c *dataCache) drop(p *page) {
	c.unlinkRing(p)
	delete(p.f.pages, p.idx)
	if p.dirty() {
		c.dirty--
	}
	c.pages--
	c.inUse[p.slot] = false
	p.buf = nil
}

// makeRoom evicts pages until one more fits, writing back the files of
// dirty pages it meets. Caller holds c.mu.
func (v *vcb) makeRoom(req ioReq) error {
	c := v.cache
	for c.pages >= c.limit {
		p := c.ring.prev
		if p.dirty() {
			if err := v.writeBackLocked(p.f, req); err != nil {
				return err
			}
		}
		c.drop(p)
	}
	return nil
}

// getPage returns page idx of f, loading it from the disk (up to the
// file's size) when it is not cached; load false means the caller is about
// to overwrite all of it that lies within the size. Caller holds c.mu.
func (v *vcb) getPage(f *fcb, req ioReq, idx int64, load bool) (*page, error) {
	c := v.cache
	if p := f.pages[idx]; p != nil {
		c.touch(p)
		return p, nil
	}
	if err := v.makeRoom(req); err != nil {
		return nil, err
	}
	want := -1
	if prev := f.pages[idx-1]; prev != nil {
		want = prev.slot + 1
	}
	p := &page{f: f, idx: idx, slot: c.takeSlot(want)}
	p.buf = c.slotBytes(p.slot, pageSize)
	if load {
		start := idx * pageSize
		ss := int64(v.geo.BytesPerSector)
		end := min(start+pageSize, (int64(f.size())+ss-1)/ss*ss)
		if end > start {
			if err := v.diskIO(f, iomgr.MajorRead, req, p.buf[:end-start], start); err != nil {
				c.inUse[p.slot] = false
				return nil, err
			}
			// The sector holding the end of the file may carry old bytes
			// past it: those read as zeros.
			p.used = int(min(end, int64(f.size())) - start)
		}
	}
	if f.pages == nil {
		f.pages = map[int64]*page{}
	}
	f.pages[idx] = p
	c.pages++
	c.touch(p)
	return p, nil
}

// cachedRead copies the file's bytes at off into b through the cache. off
// and len(b) must lie within the file's size. Caller holds the volume lock
// (shared is enough).
func (v *vcb) cachedRead(f *fcb, req ioReq, b []byte, off int64) error {
	c := v.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(b) > 0 {
		idx, within := off/pageSize, int(off%pageSize)
		p, err := v.getPage(f, req, idx, true)
		if err != nil {
			return err
		}
		n := p.copyOut(b, within)
		b, off = b[n:], off+int64(n)
	}
	// Read-ahead is a guess: its failure fails nothing (the pages it
	// could not fill are gone, a later read reports the error).
	_ = v.readAhead(f, req, (off+pageSize-1)/pageSize)
	return nil
}

// readAhead loads the pages from idx on that are not cached, up to
// readAheadPages of them (a quarter of the cache at most, so that making
// room never takes one of them) and the end of the file, with one
// transfer while their slots follow each other. Caller holds c.mu.
func (v *vcb) readAhead(f *fcb, req ioReq, idx int64) error {
	c := v.cache
	ahead := int64(min(readAheadPages, c.limit/4))
	size := int64(f.size())
	ss := int64(v.geo.BytesPerSector)
	var run []*page
	load := func() error {
		if len(run) == 0 {
			return nil
		}
		first := run[0]
		start := first.idx * pageSize
		end := min(start+int64(len(run))*pageSize, (size+ss-1)/ss*ss)
		err := v.diskIO(f, iomgr.MajorRead, req, c.slotBytes(first.slot, int(end-start)), start)
		for _, p := range run {
			if err != nil {
				c.drop(p) // empty: nothing is lost
				continue
			}
			p.used = int(max(min(end, size)-p.idx*pageSize, 0))
		}
		run = run[:0]
		return err
	}
	for i := idx; i < idx+ahead && i*pageSize < size && f.pages[i] == nil; i++ {
		p, err := v.getPage(f, req, i, false)
		if err != nil {
			break
		}
		if n := len(run); n > 0 && (p.slot != run[n-1].slot+1 || p.slot%segSlots == 0) {
			if err := load(); err != nil {
				c.drop(p)
				return err
			}
		}
		run = append(run, p)
	}
	return load()
}

// tryCachedRead is cachedRead for fast I/O: it copies only when every
// page is cached, and reports whether it did.
func (v *vcb) tryCachedRead(f *fcb, b []byte, off int64) bool {
	c := v.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := off / pageSize; i <= (off+int64(len(b))-1)/pageSize; i++ {
		if f.pages[i] == nil {
			return false
		}
	}
	for len(b) > 0 {
		idx, within := off/pageSize, int(off%pageSize)
		p := f.pages[idx]
		c.touch(p)
		n := p.copyOut(b, within)
		b, off = b[n:], off+int64(n)
	}
	return true
}

// cachedWrite copies b into the file at off through the cache. The
// clusters must be allocated; the file's size is still the old one (pages
// are loaded up to it). Caller holds the volume lock exclusively.
func (v *vcb) cachedWrite(f *fcb, req ioReq, b []byte, off int64) error {
	c := v.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	size := int64(f.size())
	for len(b) > 0 {
		idx, within := off/pageSize, int(off%pageSize)
		n := min(len(b), pageSize-within)
		start := idx * pageSize
		// A write covering all of the page that lies within the size needs
		// nothing from the disk.
		load := !(off == start && off+int64(n) >= min(start+pageSize, size))
		p, err := v.getPage(f, req, idx, load)
		if err != nil {
			return err
		}
		p.extend(within)
		copy(p.buf[within:], b[:n])
		p.used = max(p.used, within+n)
		if !p.dirty() {
			p.lo, p.hi = within, within+n
			c.dirty++
		} else {
			p.lo, p.hi = min(p.lo, within), max(p.hi, within+n)
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

// canWriteCached reports whether a write of n bytes at off can be served
// by the cache alone: every page it touches is cached or needs nothing
// from the disk, and no page would have to be evicted for it.
func (v *vcb) canWriteCached(f *fcb, off, n int64) bool {
	c := v.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	size := int64(f.size())
	missing := 0
	for idx := off / pageSize; idx*pageSize < off+n; idx++ {
		if f.pages[idx] != nil {
			continue
		}
		start := idx * pageSize
		if !(off <= start && off+n >= min(start+pageSize, size)) {
			return false
		}
		missing++
	}
	return c.pages+missing <= c.limit
}

// writeBack writes f's changed pages to its clusters. Caller holds the
// volume lock (shared is enough: only data moves).
func (v *vcb) writeBack(f *fcb, req ioReq) error {
	c := v.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	return v.writeBackLocked(f, req)
}

// writeBackAll writes every changed page of the volume.
func (v *vcb) writeBackAll(req ioReq) error {
	c := v.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dirty == 0 {
		return nil
	}
	files := map[*fcb]struct{}{}
	for p := c.ring.next; p != &c.ring; p = p.next {
		if p.dirty() {
			files[p.f] = struct{}{}
		}
	}
	for f := range files {
		if err := v.writeBackLocked(f, req); err != nil {
			return err
		}
	}
	return nil
}

// hasDirtyData reports whether any page waits to be written back.
func (v *vcb) hasDirtyData() bool {
	c := v.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dirty > 0
}

// writeBackLocked writes f's dirty pages in file order. Each page's
// changed range is widened to whole sectors (the page holds its bytes
// there, zeros past its size) and clipped to the clusters the file has;
// pages whose ranges meet in the file and whose slots follow each other
// in the arena go down as one transfer of up to writeBackChunk bytes,
// straight from the arena. Caller holds c.mu.
func (v *vcb) writeBackLocked(f *fcb, req ioReq) error {
	c := v.cache
	var dirty []*page
	for _, p := range f.pages {
		if p.dirty() {
			dirty = append(dirty, p)
		}
	}
	if len(dirty) == 0 {
		return nil
	}
	slices.SortFunc(dirty, func(a, b *page) int { return cmp.Compare(a.idx, b.idx) })
	ss := int64(v.geo.BytesPerSector)
	alloc := int64(f.ext.total) * int64(v.geo.ClusterSize)
	// span returns the page-relative range [lo, hi) page p must write,
	// making its bytes there real.
	span := func(p *page) (int, int) {
		start := p.idx * pageSize
		lo := int(int64(p.lo) / ss * ss)
		hi := int(max(min(start+(int64(p.hi)+ss-1)/ss*ss, alloc)-start, 0))
		p.extend(hi)
		return lo, hi
	}
	for i := 0; i < len(dirty); {
		first := dirty[i]
		lo, hi := span(first)
		j := i + 1
		for j < len(dirty) && hi == pageSize {
			p, prev := dirty[j], dirty[j-1]
			if p.idx != prev.idx+1 || p.slot != prev.slot+1 || p.slot%segSlots == 0 {
				break
			}
			plo, phi := span(p)
			if plo != 0 || (j-i)*pageSize+phi-lo > writeBackChunk {
				break
			}
			hi = phi
			j++
		}
		if n := (j-i-1)*pageSize + hi; n > lo {
			if err := v.diskIO(f, iomgr.MajorWrite, req, c.slotBytes(first.slot, n)[lo:], first.idx*pageSize+int64(lo)); err != nil {
				return err
			}
		}
		for _, p := range dirty[i:j] {
			p.lo, p.hi = 0, 0
			c.dirty--
		}
		i = j
	}
	return nil
}

// discard forgets f's cached bytes from file offset from on: later pages
// go, the page holding from keeps its head and has its tail zeroed (the
// file now ends there, or its clusters past there are being freed).
// Changes not yet written are dropped with them. Caller holds the volume
// lock exclusively.
func (v *vcb) discard(f *fcb, from int64) {
	c := v.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	for idx, p := range f.pages {
		start := idx * pageSize
		switch {
		case start >= from:
			c.drop(p)
		case start+pageSize > from:
			cut := int(from - start)
			p.used = min(p.used, cut)
			if p.dirty() && p.hi > cut {
				p.hi = max(cut, p.lo)
				if !p.dirty() {
					p.lo, p.hi = 0, 0
					c.dirty--
				}
			}
		}
	}
}
