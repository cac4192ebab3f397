package ondisk

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// FAT entry values, for the 12-, 16- and 28-bit widths. Readers treat any
// value from the EOC threshold up as end of chain; writers store the maximum.
const (
	eoc12, eoc16, eoc32 = 0x0FF8, 0xFFF8, 0x0FFFFFF8 // first end-of-chain value
	bad12, bad16, bad32 = 0x0FF7, 0xFFF7, 0x0FFFFFF7 // bad cluster
	fat32Mask           = 0x0FFFFFFF                 // low 28 bits of a FAT32 entry
	cleanBit16          = 0x8000                     // FAT[1] bit: volume cleanly unmounted
	cleanBit32          = 0x08000000
)

// EndOfChain is the value Table.Set accepts for "last cluster of a chain"
// whatever the FAT type (it is stored as 0xFFF, 0xFFFF or 0x0FFFFFFF).
const EndOfChain = 0xFFFFFFFF

// BadCluster is the value Table.Set accepts for "bad cluster" whatever the
// FAT type (stored as 0xFF7, 0xFFF7 or 0x0FFFFFF7).
const BadCluster = 0xFFFFFFF7

// Extent is a run of consecutive clusters: Start, Start+1, ... Start+Len-1.
type Extent struct {
	Start uint32
	Len   uint32
}

// ExtentClusters is the total number of clusters in exts.
func ExtentClusters(exts []Extent) uint64 {
	var n uint64
	for _, e := range exts {
		n += uint64(e.Len)
	}
	return n
}

// Table is one copy of a volume's file allocation table, held in memory,
// with a free-cluster bitmap (one bit per cluster) that makes allocation a
// word-at-a-time scan, an exact free count, the next-free hint, and a record
// of which FAT sectors changed since the FSD last wrote them.
//
// It also knows, for each cluster, whether another cluster links to it (one
// more bit per cluster), so that links into free clusters, chains joined
// into one, and directory entries that start inside a chain are found
// without walking chains (CheckLinks, HasPredecessor).
//
// A Table is not safe for concurrent use; the FSD guards it with its volume
// (FCB/VCB) locks. It never panics on any FAT contents: corrupt chains come
// back as errors wrapping ErrCorrupt.
type Table struct {
	typ      FATType
	data     []byte   // the FAT bytes; owned by the Table
	max      uint32   // highest valid cluster number
	free     uint32   // number of free clusters in 2..max
	next     uint32   // next-free hint, 2..max
	freeMap  []uint64 // bit c set = cluster c is free (bits 0, 1 and above max clear)
	pred     []uint64 // bit c set = some cluster links to cluster c
	joined   uint32   // a cluster two clusters link to (two chains joined), 0 if none
	bads     uint32   // clusters marked bad
	dirty    []uint64 // bit s set = FAT sector s changed
	secShift uint     // log2(bytes per sector)
	noRun    uint32   // no free run this long exists (0: unknown); reset when a cluster is freed
}

// NewTable wraps data, the bytes of one FAT copy (at least as many as the
// entries 0..g.MaxCluster need; normally g.FATBytes()), for the volume g. The
// Table keeps data and changes it in place. It counts free clusters; set the
// FSInfo hint afterwards with SetNextFree.
func NewTable(g *Geometry, data []byte) (*Table, error) {
	if g.MaxCluster < 2 || g.BytesPerSector == 0 || g.BytesPerSector&(g.BytesPerSector-1) != 0 {
		return nil, outOfRange("geometry without clusters or with %d-byte sectors", g.BytesPerSector)
	}
	t := &Table{typ: g.Type, data: data, max: g.MaxCluster, next: 2,
		secShift: uint(bits.TrailingZeros32(g.BytesPerSector))}
	switch g.Type {
	case FAT12, FAT16, FAT32:
	default:
		return nil, outOfRange("unknown FAT type %v", g.Type)
	}
	if need := t.entryEnd(t.max); uint64(len(data)) < need {
		return nil, corrupt("FAT is %d bytes, %d clusters need %d", len(data), t.max-1, need)
	}
	t.freeMap = make([]uint64, (uint64(t.max)+64)/64)
	t.pred = make([]uint64, len(t.freeMap))
	t.dirty = make([]uint64, (uint64(len(data))>>t.secShift+64)/64)
	t.rebuildFree()
	return t, nil
}

// entryEnd is the byte just past entry c.
func (t *Table) entryEnd(c uint32) uint64 {
	switch t.typ {
	case FAT12:
		return uint64(c) + uint64(c)/2 + 2
	case FAT16:
		return uint64(c)*2 + 2
	}
	return uint64(c)*4 + 4
}

// rebuildFree counts the free clusters and records, for each cluster,
// whether another links to it: one pass over the FAT.
func (t *Table) rebuildFree() {
	clear(t.freeMap)
	clear(t.pred)
	t.free, t.noRun, t.joined, t.bads = 0, 0, 0, 0
	le := binary.LittleEndian
	var v uint32
	bad := t.bad()
	for c := uint32(2); c <= t.max; c++ {
		switch t.typ {
		case FAT32:
			v = le.Uint32(t.data[c*4:]) & fat32Mask
		case FAT16:
			v = uint32(le.Uint16(t.data[c*2:]))
		default:
			v = t.get(c)
		}
		switch {
		case v == 0:
			t.freeMap[c>>6] |= 1 << (c & 63)
			t.free++
		case v >= 2 && v <= t.max:
			if t.pred[v>>6]&(1<<(v&63)) != 0 && t.joined == 0 {
				t.joined = v
			}
			t.pred[v>>6] |= 1 << (v & 63)
		case v == bad:
			t.bads++
		}
	}
}

// HasPredecessor reports whether some cluster links to cluster c: a
// directory entry whose chain starts there would share it with another
// chain.
func (t *Table) HasPredecessor(c uint32) bool {
	return c >= 2 && c <= t.max && t.pred[c>>6]&(1<<(c&63)) != 0
}

// predecessors returns up to two clusters that link to c (a linear scan,
// for error messages).
func (t *Table) predecessors(c uint32) []uint32 {
	var out []uint32
	for p := uint32(2); p <= t.max && len(out) < 2; p++ {
		if t.get(p) == c {
			out = append(out, p)
		}
	}
	return out
}

// CheckLinks looks at the links between clusters alone, without reading a
// directory, for what makes writing to the volume unsafe: two clusters
// linking to one (two chains joined: freeing either frees the other's
// tail), and a link to a free or bad cluster (the allocator would hand out
// a cluster a chain still reaches). It costs one pass over the free and
// link bitmaps; the error wraps ErrCorrupt and names the clusters.
func (t *Table) CheckLinks() error {
	if c := t.joined; c != 0 {
		p := t.predecessors(c)
		if len(p) == 2 {
			return corrupt("clusters %d and %d both link to cluster %d: two chains share it (cross-linked)", p[0], p[1], c)
		}
		return corrupt("two clusters link to cluster %d: two chains share it (cross-linked)", c)
	}
	for i, w := range t.pred {
		if w &= t.freeMap[i]; w != 0 {
			c := uint32(i)<<6 + uint32(bits.TrailingZeros64(w))
			if p := t.predecessors(c); len(p) > 0 {
				return corrupt("cluster %d links to cluster %d, which is marked free", p[0], c)
			}
			return corrupt("a chain links to cluster %d, which is marked free", c)
		}
	}
	if t.bads > 0 {
		bad := t.bad()
		for c := uint32(2); c <= t.max; c++ {
			if t.pred[c>>6]&(1<<(c&63)) != 0 && t.get(c) == bad {
				if p := t.predecessors(c); len(p) > 0 {
					return corrupt("cluster %d links to cluster %d, which is marked bad", p[0], c)
				}
				return corrupt("a chain links to cluster %d, which is marked bad", c)
			}
		}
	}
	return nil
}

// Type is the FAT type the table was made for.
func (t *Table) Type() FATType { return t.typ }

// MaxCluster is the highest valid cluster number.
func (t *Table) MaxCluster() uint32 { return t.max }

// FreeCount is the exact number of free clusters.
func (t *Table) FreeCount() uint32 { return t.free }

// NextFree is the cluster where the next allocation starts looking (the
// FSInfo next-free hint).
func (t *Table) NextFree() uint32 { return t.next }

// SetNextFree sets the allocation hint; values outside 2..MaxCluster (such
// as FSInfoUnknown) are ignored.
func (t *Table) SetNextFree(c uint32) {
	if c >= 2 && c <= t.max {
		t.next = c
	}
}

// Bytes is the FAT as it is now (the slice given to NewTable).
func (t *Table) Bytes() []byte { return t.data }

// get reads entry c (0..max) without checks; FAT32 values are masked to 28
// bits.
func (t *Table) get(c uint32) uint32 {
	switch t.typ {
	case FAT12:
		off := c + c/2
		v := uint32(t.data[off]) | uint32(t.data[off+1])<<8
		if c&1 != 0 {
			return v >> 4
		}
		return v & 0x0FFF
	case FAT16:
		return uint32(binary.LittleEndian.Uint16(t.data[c*2:]))
	}
	return binary.LittleEndian.Uint32(t.data[c*4:]) & fat32Mask
}

// put writes entry c (0..max) without checks, keeping the neighbouring
// nibble (FAT12) or the top four bits (FAT32), and marks the sectors dirty.
func (t *Table) put(c, v uint32) {
	if c >= 2 {
		// Keep the predecessor bits: the old link goes, the new one comes.
		if o := t.get(c); o >= 2 && o <= t.max {
			t.pred[o>>6] &^= 1 << (o & 63)
		}
		if n := v & t.mask(); n >= 2 && n <= t.max {
			t.pred[n>>6] |= 1 << (n & 63)
		}
	}
	var off, end uint32
	switch t.typ {
	case FAT12:
		off = c + c/2
		end = off + 1
		if c&1 != 0 {
			t.data[off] = t.data[off]&0x0F | byte(v<<4)
			t.data[off+1] = byte(v >> 4)
		} else {
			t.data[off] = byte(v)
			t.data[off+1] = t.data[off+1]&0xF0 | byte(v>>8)&0x0F
		}
	case FAT16:
		off = c * 2
		end = off + 1
		binary.LittleEndian.PutUint16(t.data[off:], uint16(v))
	default:
		off = c * 4
		end = off + 3
		old := binary.LittleEndian.Uint32(t.data[off:])
		binary.LittleEndian.PutUint32(t.data[off:], old&^fat32Mask|v&fat32Mask)
	}
	s, e := off>>t.secShift, end>>t.secShift
	t.dirty[s>>6] |= 1 << (s & 63)
	t.dirty[e>>6] |= 1 << (e & 63)
}

func (t *Table) eoc() uint32 {
	switch t.typ {
	case FAT12:
		return eoc12
	case FAT16:
		return eoc16
	}
	return eoc32
}

func (t *Table) bad() uint32 {
	switch t.typ {
	case FAT12:
		return bad12
	case FAT16:
		return bad16
	}
	return bad32
}

func (t *Table) mask() uint32 {
	switch t.typ {
	case FAT12:
		return 0x0FFF
	case FAT16:
		return 0xFFFF
	}
	return fat32Mask
}

// Get returns entry c (0..MaxCluster). FAT32 values are the low 28 bits.
// Interpret values with IsEOC, IsBad, or compare with 0 (free).
func (t *Table) Get(c uint32) (uint32, error) {
	if c > t.max {
		return 0, outOfRange("cluster %d above the last cluster %d", c, t.max)
	}
	return t.get(c), nil
}

// IsEOC reports whether an entry value marks the end of a chain.
func (t *Table) IsEOC(v uint32) bool { return v >= t.eoc() && v <= t.mask() }

// IsBad reports whether an entry value marks a bad cluster.
func (t *Table) IsBad(v uint32) bool { return v == t.bad() }

// Set stores v as the entry of cluster c (2..MaxCluster) and keeps the free
// bitmap and count right. v is 0 (free), a cluster number 2..MaxCluster,
// EndOfChain or BadCluster; FAT32's top four bits are preserved.
func (t *Table) Set(c, v uint32) error {
	if c < 2 || c > t.max {
		return outOfRange("cluster %d outside 2..%d", c, t.max)
	}
	switch {
	case v == EndOfChain:
		v = t.mask()
	case v == BadCluster:
		v = t.bad()
	case v == 1 || v > t.max:
		return outOfRange("FAT entry value %#x for cluster %d", v, c)
	}
	t.set(c, v)
	return nil
}

// set stores v and maintains the free bitmap.
func (t *Table) set(c, v uint32) {
	wasFree := t.freeMap[c>>6]&(1<<(c&63)) != 0
	t.put(c, v)
	switch {
	case wasFree && v != 0:
		t.freeMap[c>>6] &^= 1 << (c & 63)
		t.free--
	case !wasFree && v == 0:
		t.freeMap[c>>6] |= 1 << (c & 63)
		t.free++
		t.noRun = 0
	}
}

// VolumeClean reports FAT[1]'s clean-shutdown bit (0x8000 on FAT16,
// 0x08000000 on FAT32): set means the volume was unmounted cleanly. FAT12
// has no such bit and always reports true.
func (t *Table) VolumeClean() bool {
	switch t.typ {
	case FAT16:
		return t.get(1)&cleanBit16 != 0
	case FAT32:
		return t.get(1)&cleanBit32 != 0
	}
	return true
}

// SetVolumeClean sets or clears FAT[1]'s clean-shutdown bit (a no-op on
// FAT12). The FSD clears it when it first writes to a volume and sets it on a
// clean dismount.
func (t *Table) SetVolumeClean(clean bool) {
	var bit uint32
	switch t.typ {
	case FAT16:
		bit = cleanBit16
	case FAT32:
		bit = cleanBit32
	default:
		return
	}
	v := t.get(1)
	nv := v &^ bit
	if clean {
		nv |= bit
	}
	if nv != v {
		t.put(1, nv)
	}
}

// SetReservedEntries writes FAT[0] (the media byte with all other bits set)
// and FAT[1] (end of chain, clean bits set), as a formatter does.
func (t *Table) SetReservedEntries(media byte) {
	t.put(0, t.mask()&^0xFF|uint32(media))
	t.put(1, t.mask())
}

// DirtySectors calls fn for each run of FAT sectors (numbered from the start
// of the FAT, first..first+count-1) changed since the last ClearDirty. The
// FSD writes those bytes of Bytes() to every FAT copy (or to the active one
// when mirroring is off).
func (t *Table) DirtySectors(fn func(first, count uint32)) {
	run, start := uint32(0), uint32(0)
	for i, w := range t.dirty {
		if w == 0 && run == 0 {
			continue
		}
		for b := uint32(0); b < 64; b++ {
			s := uint32(i)*64 + b
			if w&(1<<b) != 0 {
				if run == 0 {
					start = s
				}
				run++
			} else if run != 0 {
				fn(start, run)
				run = 0
			}
		}
	}
	if run != 0 {
		fn(start, run)
	}
}

// HasDirty reports whether a FAT sector changed since the last ClearDirty.
func (t *Table) HasDirty() bool {
	for _, w := range t.dirty {
		if w != 0 {
			return true
		}
	}
	return false
}

// ClearDirty forgets which sectors changed (after the FSD wrote them).
func (t *Table) ClearDirty() { clear(t.dirty) }

// ClearDirtySectors forgets that FAT sectors first..first+count-1 changed
// (after the FSD wrote those alone); sectors past the FAT are ignored.
func (t *Table) ClearDirtySectors(first, count uint32) {
	for s := uint64(first); s < uint64(first)+uint64(count) && s>>6 < uint64(len(t.dirty)); s++ {
		t.dirty[s>>6] &^= 1 << (s & 63)
	}
}

// MarkAllDirty marks every FAT sector changed (to rewrite all copies, for
// example after a copy was found to differ).
func (t *Table) MarkAllDirty() {
	n := (uint64(len(t.data)) + 1<<t.secShift - 1) >> t.secShift
	for s := uint64(0); s < n; s++ {
		t.dirty[s>>6] |= 1 << (s & 63)
	}
}

// Next follows one link: the cluster after c, or 0 when c is the last
// cluster of its chain. A free, bad or out-of-range link is an error
// wrapping ErrCorrupt.
func (t *Table) Next(c uint32) (uint32, error) {
	if c < 2 || c > t.max {
		return 0, corrupt("cluster %d outside 2..%d", c, t.max)
	}
	v := t.get(c)
	switch {
	case v >= 2 && v <= t.max:
		return v, nil
	case v >= t.eoc():
		return 0, nil
	case v == 0:
		return 0, corrupt("cluster %d in a chain is marked free", c)
	case v == t.bad():
		return 0, corrupt("cluster %d in a chain is marked bad", c)
	}
	return 0, corrupt("cluster %d links to %#x, outside 2..%d", c, v, t.max)
}

// Chain returns the clusters of the chain starting at start as extents, in
// order. start 0 (an empty file) gives no extents. A cycle, a link out of
// range, to a free or to a bad cluster gives an error wrapping ErrCorrupt;
// detection takes time proportional to the chain (Brent's cycle finding)
// and no extra memory.
func (t *Table) Chain(start uint32) ([]Extent, error) {
	return t.AppendChain(nil, start)
}

// AppendChain is Chain appending to dst.
func (t *Table) AppendChain(dst []Extent, start uint32) ([]Extent, error) {
	err := t.walk(start, func(c uint32) {
		if n := len(dst); n > 0 && dst[n-1].Start+dst[n-1].Len == c {
			dst[n-1].Len++
		} else {
			dst = append(dst, Extent{Start: c, Len: 1})
		}
	})
	return dst, err
}

// ChainLength counts the clusters of the chain at start (0 for start 0),
// with the same checks as Chain.
func (t *Table) ChainLength(start uint32) (uint32, error) {
	var n uint32
	err := t.walk(start, func(uint32) { n++ })
	return n, err
}

// walk visits each cluster of the chain at start, in order, stopping at the
// first error. Brent's algorithm finds a cycle within a few times the chain
// length: the tortoise jumps to the hare at each power of two, and a cycle is
// the hare meeting it.
func (t *Table) walk(start uint32, visit func(c uint32)) error {
	if start == 0 {
		return nil
	}
	if start < 2 || start > t.max {
		return corrupt("chain starts at cluster %d, outside 2..%d", start, t.max)
	}
	eoc, bad := t.eoc(), t.bad()
	tortoise, power, lam := start, uint32(1), uint32(0)
	for c := start; ; {
		visit(c)
		v := t.get(c)
		switch {
		case v >= 2 && v <= t.max:
		case v >= eoc:
			return nil
		case v == 0:
			return corrupt("chain from cluster %d reaches cluster %d, which is marked free", start, c)
		case v == bad:
			return corrupt("chain from cluster %d reaches cluster %d, which is marked bad", start, c)
		default:
			return corrupt("chain from cluster %d: cluster %d links to %#x, outside 2..%d", start, c, v, t.max)
		}
		c = v
		if c == tortoise {
			return corrupt("chain from cluster %d has a cycle through cluster %d", start, c)
		}
		if lam++; lam == power {
			tortoise, power, lam = c, power*2, 0
		}
	}
}

// IsFree reports whether cluster c (2..MaxCluster) is free, from the
// bitmap the Table keeps.
func (t *Table) IsFree(c uint32) bool { return t.freeMap[c>>6]&(1<<(c&63)) != 0 }

// runAt is the length of the free run starting at c, up to limit clusters.
func (t *Table) runAt(c, limit uint32) uint32 {
	n := uint32(0)
	for n < limit && c+n <= t.max {
		i, b := (c+n)>>6, (c+n)&63
		w := ^t.freeMap[i] >> b // zero bits = free clusters from c+n on
		if w == 0 {
			n += 64 - b
			continue
		}
		z := uint32(bits.TrailingZeros64(w))
		n += z
		break
	}
	if c+n > t.max+1 {
		n = t.max + 1 - c
	}
	return min(n, limit)
}

// nextFree is the first free cluster at or after c (c..max), or 0.
func (t *Table) nextFreeFrom(c uint32) uint32 {
	if c > t.max {
		return 0
	}
	i := c >> 6
	w := t.freeMap[i] &^ (1<<(c&63) - 1)
	for {
		if w != 0 {
			f := i<<6 + uint32(bits.TrailingZeros64(w))
			if f > t.max {
				return 0
			}
			return f
		}
		i++
		if int(i) >= len(t.freeMap) {
			return 0
		}
		w = t.freeMap[i]
	}
}

// findRun returns the first free run of at least n clusters, searching from
// hint to the end and then from 2 to hint, or 0 if there is none. Runs of
// 128 or more always cover a whole bitmap word, so those are found by
// skipping words that are not all free; a failed search is remembered until
// a cluster is freed, so a fragmented volume costs one scan, not one per
// allocation.
func (t *Table) findRun(hint, n uint32) uint32 {
	if t.noRun != 0 && n >= t.noRun {
		return 0
	}
	for _, r := range [2][2]uint32{{hint, t.max}, {2, hint - 1}} {
		if r[0] > r[1] {
			continue
		}
		var c uint32
		if n >= 128 {
			c = t.findWordRun(r[0], r[1], n)
		} else {
			c = t.findSmallRun(r[0], r[1], n)
		}
		if c != 0 {
			return c
		}
	}
	if t.noRun == 0 || n < t.noRun {
		t.noRun = n
	}
	return 0
}

// findSmallRun goes from free run to free run.
func (t *Table) findSmallRun(from, to, n uint32) uint32 {
	for c := t.nextFreeFrom(from); c != 0 && c <= to; {
		l := t.runAt(c, n)
		if l >= n {
			return c
		}
		c = t.nextFreeFrom(c + l)
	}
	return 0
}

// findWordRun looks only at all-free words (n >= 128).
func (t *Table) findWordRun(from, to, n uint32) uint32 {
	for i := from >> 6; i <= to>>6 && int(i) < len(t.freeMap); i++ {
		if t.freeMap[i] != ^uint64(0) {
			continue
		}
		s := max(i<<6, from)
		for s > from && t.IsFree(s-1) {
			s--
		}
		if s > to {
			return 0
		}
		l := t.runAt(s, n)
		if l >= n {
			return s
		}
		i = (s + l) >> 6 // the loop moves past the run's last word
	}
	return 0
}

// Allocate takes n free clusters, links them into a chain ending in
// end-of-chain and, if prev is not 0, links prev (the current last cluster
// of a file) to the first of them. It prefers, in order: the free run at
// hint (so a file grows in place when hint is its last cluster + 1); the
// first free run of at least the remaining count after hint, wrapping
// around; else free clusters in order from hint. hint 0 (or out of range)
// means the table's next-free hint. It returns the new clusters as extents
// and moves the next-free hint past them. Too few free clusters gives
// ErrNoSpace and changes nothing.
func (t *Table) Allocate(n, hint, prev uint32) ([]Extent, error) {
	if n == 0 {
		return nil, nil
	}
	if prev == 1 || prev > t.max {
		return nil, outOfRange("previous cluster %d outside 2..%d", prev, t.max)
	}
	if n > t.free {
		return nil, fmt.Errorf("%w: %d clusters wanted, %d free", ErrNoSpace, n, t.free)
	}
	if hint < 2 || hint > t.max {
		hint = t.next
	}
	// Each run taken leaves the free bitmap at once, so later searches cannot
	// find it again; the entries are linked at the end.
	var exts []Extent
	take := func(c, l uint32) {
		exts = append(exts, Extent{Start: c, Len: l})
		for x := c; x < c+l; x++ {
			t.freeMap[x>>6] &^= 1 << (x & 63)
		}
		t.free -= l
		n -= l
	}
	if t.IsFree(hint) {
		take(hint, t.runAt(hint, n))
	}
	if n > 0 {
		if c := t.findRun(hint, n); c != 0 {
			take(c, n)
		}
	}
	for c, wrapped := hint, false; n > 0; {
		f := t.nextFreeFrom(c)
		if f == 0 {
			if wrapped {
				// Unreachable while the count matches the bitmap; refuse
				// rather than loop.
				t.rebuildFree()
				return nil, corrupt("free cluster count out of step with the FAT")
			}
			c, wrapped = 2, true
			continue
		}
		l := t.runAt(f, n)
		take(f, l)
		c = f + l
	}
	last := uint32(0)
	for _, e := range exts {
		for c := e.Start; c < e.Start+e.Len; c++ {
			switch {
			case last != 0:
				t.put(last, c)
			case prev != 0:
				t.set(prev, c)
			}
			last = c
		}
	}
	t.put(last, t.mask())
	t.next = last + 1
	if t.next > t.max {
		t.next = 2
	}
	return exts, nil
}

// FreeChain frees every cluster of the chain at start and returns how many
// it freed. The chain is checked first: a corrupt chain gives an error
// wrapping ErrCorrupt and changes nothing.
func (t *Table) FreeChain(start uint32) (uint32, error) {
	exts, err := t.Chain(start)
	if err != nil {
		return 0, err
	}
	return t.freeExtents(exts), nil
}

func (t *Table) freeExtents(exts []Extent) uint32 {
	var n uint32
	for _, e := range exts {
		for c := e.Start; c < e.Start+e.Len; c++ {
			t.set(c, 0)
			n++
		}
	}
	return n
}

// Truncate keeps the first keep clusters of the chain at start and frees the
// rest. It returns the chain's new first cluster (0 when keep is 0: the
// whole chain is freed) and the number of clusters freed. A corrupt chain
// gives an error wrapping ErrCorrupt and changes nothing.
func (t *Table) Truncate(start, keep uint32) (newStart, freed uint32, err error) {
	exts, err := t.Chain(start)
	if err != nil {
		return start, 0, err
	}
	if keep == 0 {
		return 0, t.freeExtents(exts), nil
	}
	// Find the keep-th cluster, end the chain there, free the tail.
	left := keep
	for i, e := range exts {
		if left > e.Len {
			left -= e.Len
			continue
		}
		last := e.Start + left - 1
		tail := append([]Extent{}, exts[i+1:]...)
		if left < e.Len {
			tail = append([]Extent{{Start: last + 1, Len: e.Len - left}}, tail...)
		}
		t.set(last, t.mask())
		return start, t.freeExtents(tail), nil
	}
	return start, 0, nil // chain shorter than keep: nothing to free
}

// ClusterSet records clusters claimed by chains, to find cross-linked files
// (two chains sharing a cluster) in one pass over a directory tree: one bit
// per cluster.
type ClusterSet struct {
	bits []uint64
	max  uint32
}

// NewClusterSet makes an empty set for clusters 2..t.MaxCluster().
func (t *Table) NewClusterSet() *ClusterSet {
	return &ClusterSet{bits: make([]uint64, (uint64(t.max)+64)/64), max: t.max}
}

// Claim adds the clusters of exts; a cluster already claimed (or out of
// range) gives an error wrapping ErrCorrupt naming it. Clusters before it
// stay claimed.
func (s *ClusterSet) Claim(exts []Extent) error {
	for _, e := range exts {
		for c := e.Start; c-e.Start < e.Len; c++ {
			if c < 2 || c > s.max {
				return corrupt("cluster %d outside 2..%d", c, s.max)
			}
			if s.bits[c>>6]&(1<<(c&63)) != 0 {
				return corrupt("cluster %d is cross-linked (in two chains)", c)
			}
			s.bits[c>>6] |= 1 << (c & 63)
		}
	}
	return nil
}
