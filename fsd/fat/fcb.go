package fat

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/vdisk-dev/vdisk/fsd/fat/internal/ondisk"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// fcb is the file control block of an open file or directory (shared by
// every file object of it, their FsContext), and of directories kept in
// memory for their index. Every field is guarded by the volume lock.
type fcb struct {
	vol    *vcb
	parent *fcb      // containing directory; nil for the root
	de     *dirEntry // the entry in the parent's index; nil for the root
	isDir  bool
	isRoot bool
	linked bool // de.fcb points here and the chain is claimed

	start uint32          // first cluster (0 for an empty file, and the FAT12/16 root)
	ext   extentMap       // the cluster chain, kept so data access never walks the FAT
	dir   *dirIndex       // a directory's index, loaded when first needed
	pages map[int64]*page // a file's cached data by page number; guarded by the cache's mutex

	opens    int // file objects not yet closed
	handles  int // of them, not yet cleaned up
	children int // linked FCBs of entries of this directory
	share    shareAccess

	deletePending bool // delete when the last handle is cleaned up
	deleted       bool // the entry is gone from the disk
	grown         bool // clusters were allocated to it since it was trimmed last
}

// size is the file size from the directory entry (0 for directories).
func (f *fcb) size() uint32 {
	if f.de == nil || f.isDir {
		return 0
	}
	return f.de.short.Size
}

// allocBytes is the bytes allocated to the file or directory.
func (f *fcb) allocBytes() int64 {
	if f.isRoot && f.vol.geo.Type != ondisk.FAT32 {
		return f.vol.geo.RootDirBytes()
	}
	return int64(f.ext.total) * int64(f.vol.geo.ClusterSize)
}

// name is the file's name in its directory ("" for the root).
func (f *fcb) name() string {
	if f.de == nil {
		return ""
	}
	return f.de.display
}

// path is the file's path from the volume root: `\dir\file`, `\` for the root.
func (f *fcb) path() string {
	if f.isRoot {
		return `\`
	}
	var parts []string
	for x := f; x != nil && !x.isRoot; x = x.parent {
		parts = append(parts, x.name())
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteByte('\\')
		b.WriteString(parts[i])
	}
	return b.String()
}

// extentMap is a file's cluster chain as extents, with the file cluster
// number (VCN) each extent starts at, so that a file offset finds its
// cluster by binary search.
type extentMap struct {
	exts   []ondisk.Extent
	starts []uint32 // VCN of each extent's first cluster
	total  uint32   // clusters in the chain
}

func (m *extentMap) set(exts []ondisk.Extent) {
	m.exts, m.starts, m.total = nil, nil, 0
	m.append(exts)
}

func (m *extentMap) append(exts []ondisk.Extent) {
	for _, e := range exts {
		if e.Len == 0 {
			continue
		}
		if n := len(m.exts); n > 0 && m.exts[n-1].Start+m.exts[n-1].Len == e.Start {
			m.exts[n-1].Len += e.Len
		} else {
			m.exts = append(m.exts, e)
			m.starts = append(m.starts, m.total)
		}
		m.total += e.Len
	}
}

// last is the chain's last cluster, 0 when it is empty.
func (m *extentMap) last() uint32 {
	if len(m.exts) == 0 {
		return 0
	}
	e := m.exts[len(m.exts)-1]
	return e.Start + e.Len - 1
}

// lookup returns the cluster holding VCN vcn and how many clusters from it
// on are contiguous (up to the end of its extent). vcn must be < total.
func (m *extentMap) lookup(vcn uint32) (lcn, run uint32) {
	i := sort.Search(len(m.starts), func(i int) bool { return m.starts[i] > vcn }) - 1
	e := m.exts[i]
	d := vcn - m.starts[i]
	return e.Start + d, e.Len - d
}

// truncate keeps the first keep clusters and returns the extents removed.
func (m *extentMap) truncate(keep uint32) []ondisk.Extent {
	if keep >= m.total {
		return nil
	}
	var removed []ondisk.Extent
	i := sort.Search(len(m.starts), func(i int) bool { return m.starts[i] >= keep })
	if i > 0 {
		// extent i-1 may be cut in the middle
		e := &m.exts[i-1]
		if end := m.starts[i-1] + e.Len; end > keep {
			cut := end - keep
			removed = append(removed, ondisk.Extent{Start: e.Start + e.Len - cut, Len: cut})
			e.Len -= cut
		}
	}
	removed = append(removed, m.exts[i:]...)
	m.exts, m.starts = m.exts[:i], m.starts[:i]
	m.total = keep
	return removed
}

// shareMode is the access of an open that counts for sharing (read:
// FILE_READ_DATA or FILE_EXECUTE; write: FILE_WRITE_DATA or
// FILE_APPEND_DATA; delete: DELETE) and the share modes it grants others.
type shareMode struct {
	read, write, del                   bool
	shareRead, shareWrite, shareDelete bool
}

// shareAccess counts the opens of a file and what they allow others
// (NT's SHARE_ACCESS, checked as IoCheckShareAccess does).
type shareAccess struct {
	open, readers, writers, deleters      int
	sharedRead, sharedWrite, sharedDelete int
}

// check reports whether an open with mode m is compatible with the opens
// counted. An open with none of the three accesses is never refused.
func (s *shareAccess) check(m shareMode) bool {
	if !m.read && !m.write && !m.del {
		return true
	}
	return !(m.read && s.sharedRead < s.open ||
		m.write && s.sharedWrite < s.open ||
		m.del && s.sharedDelete < s.open ||
		s.readers > 0 && !m.shareRead ||
		s.writers > 0 && !m.shareWrite ||
		s.deleters > 0 && !m.shareDelete)
}

// update counts (d = 1) or forgets (d = -1) an open with mode m.
func (s *shareAccess) update(m shareMode, d int) {
	if !m.read && !m.write && !m.del {
		return
	}
	b := func(x bool) int {
		if x {
			return d
		}
		return 0
	}
	s.open += d
	s.readers += b(m.read)
	s.writers += b(m.write)
	s.deleters += b(m.del)
	s.sharedRead += b(m.shareRead)
	s.sharedWrite += b(m.shareWrite)
	s.sharedDelete += b(m.shareDelete)
}

// ccb is the context of one open (a file object's FsContext2): its access,
// share modes, position, and directory enumeration state.
type ccb struct {
	fcb           *fcb // nil for a volume open
	access        iomgr.AccessMask
	mode          shareMode // the access granted and the share modes
	counted       shareMode // what the FCB's share counts hold for this open
	deleteOnClose bool
	targetName    string // the final name of an SL_OPEN_TARGET_DIRECTORY open

	mu  sync.Mutex // guards pos: reads update it under the shared volume lock
	pos int64

	// Directory enumeration, under the exclusive volume lock.
	pattern    string
	patternSet bool
	next       int  // where the enumeration resumes: -2 ".", -1 "..", else a slot
	returned   bool // an entry was returned since the scan (re)started
	cleaned    bool
}

func (c *ccb) position() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pos
}

func (c *ccb) setPosition(p int64) {
	c.mu.Lock()
	c.pos = p
	c.mu.Unlock()
}

// loadChain reads the chain at start into f's extents and claims it.
func (v *vcb) loadChain(f *fcb, start uint32) error {
	exts, err := v.fat.Chain(start)
	if err != nil {
		return v.note(err)
	}
	if err := v.claim(exts); err != nil {
		return err
	}
	f.start = start
	f.ext.set(exts)
	return nil
}

// maxCachedDirs is how many directory FCBs (with their indexes) the volume
// keeps in memory after their last handle closed.
const maxCachedDirs = 1024

// fcbFor returns the FCB of entry de of directory d, making it (and
// loading its chain) if it has none.
func (v *vcb) fcbFor(d *fcb, de *dirEntry) (*fcb, error) {
	if de.fcb != nil {
		return de.fcb, nil
	}
	f := &fcb{vol: v, parent: d, de: de, isDir: de.short.IsDir()}
	start := de.short.StartCluster(v.geo.Type)
	if f.isDir {
		if start == 0 {
			return nil, v.note(fmt.Errorf("%w: directory %s has no cluster", ondisk.ErrCorrupt, d.childPath(de.display)))
		}
		for a := d; a != nil; a = a.parent {
			if a.start == start {
				return nil, v.note(fmt.Errorf("%w: directory %s contains itself (cluster %d is %s)", ondisk.ErrCorrupt, d.childPath(de.display), start, a.path()))
			}
		}
	}
	if err := v.loadChain(f, start); err != nil {
		return nil, fmt.Errorf("%s: %w", d.childPath(de.display), err)
	}
	if !f.isDir && int64(de.short.Size) > f.allocBytes() {
		v.unclaim(f.ext.exts)
		return nil, v.note(fmt.Errorf("%w: %s is %d bytes but has %d clusters of %d bytes", ondisk.ErrCorrupt,
			d.childPath(de.display), de.short.Size, f.ext.total, v.geo.ClusterSize))
	}
	de.fcb = f
	f.linked = true
	d.children++
	if f.isDir {
		v.cachedDirs++
	}
	return f, nil
}

func (d *fcb) childPath(name string) string {
	p := d.path()
	if !strings.HasSuffix(p, `\`) {
		p += `\`
	}
	return p + name
}

// unlink forgets f: its entry no longer points to it and its chain is no
// longer claimed. A deleted FCB was unlinked when it was deleted.
func (v *vcb) unlink(f *fcb) {
	if !f.linked {
		return
	}
	f.linked = false
	if len(f.pages) > 0 {
		// Its chain is being freed or forgotten: no page of it may be
		// written back over clusters someone else may take.
		v.discard(f, 0)
	}
	if f.de != nil && f.de.fcb == f {
		f.de.fcb = nil
	}
	v.unclaim(f.ext.exts)
	if f.parent != nil {
		f.parent.children--
	}
	if f.isDir {
		v.cachedDirs--
		delete(v.dirtyDirs, f)
	}
}

// release drops one file object's hold on f: a file's FCB goes when its
// last file object closes; directories stay cached (see prune).
func (v *vcb) release(f *fcb) {
	f.opens--
	if f.opens == 0 && !f.isDir {
		// Changes made after its cleanup (none normally: cleanup wrote
		// them) go to the disk before the pages go with the FCB.
		if f.linked && !f.deleted && !v.Dismounted() && !v.readOnly {
			if err := v.writeBack(f, ioReq{rq: v.rq}); err != nil {
				v.fs.logf("fat: %s: writing back cached data: %v", f.path(), err)
			}
		}
		v.unlink(f)
	}
	if v.cachedDirs > maxCachedDirs {
		v.prune()
	}
}

// prune drops cached directories nothing holds (no file object, no linked
// entry, nothing left to write) until half the cache limit is left. Changed
// directories are written first when they are what holds the cache full.
func (v *vcb) prune() {
	committed := false
	for v.cachedDirs > maxCachedDirs/2 {
		progress := false
		v.walk(func(f *fcb) bool {
			if f.isDir && f.opens == 0 && f.children == 0 {
				if _, dirty := v.dirtyDirs[f]; !dirty {
					v.unlink(f)
					progress = true
				}
			}
			return v.cachedDirs > maxCachedDirs/2
		})
		if !progress {
			if committed || len(v.dirtyDirs) == 0 {
				return
			}
			committed = true
			if err := v.writeChanges(); err != nil {
				v.fs.logf("fat: volume %v: writing directories to trim the cache: %v", v.Real, err)
				return
			}
		}
	}
}

// walk calls fn for every linked FCB below the root, children before their
// directory, until fn returns false.
func (v *vcb) walk(fn func(f *fcb) bool) {
	var rec func(d *fcb) bool
	rec = func(d *fcb) bool {
		if d.dir == nil || d.children == 0 {
			return true
		}
		var kids []*fcb
		for _, de := range d.dir.order {
			if de.fcb != nil {
				kids = append(kids, de.fcb)
			}
		}
		for _, k := range kids {
			if k.isDir && !rec(k) {
				return false
			}
			if !fn(k) {
				return false
			}
		}
		return true
	}
	rec(v.root)
}

// trimAll gives back the clusters allocated beyond the end of every open
// file (what cleanup does for each file), before a dismount or shutdown.
func (v *vcb) trimAll() {
	if v.readOnly {
		return
	}
	v.walk(func(f *fcb) bool {
		if !f.isDir && !f.deleted {
			_ = v.trim(f)
		}
		return true
	})
}

// trim frees the clusters past the end of a file that were allocated to it
// while it was open; a chain found longer than its file is left as found,
// so that reading a volume never writes to it.
func (v *vcb) trim(f *fcb) error {
	if !f.grown {
		return nil
	}
	f.grown = false
	cs := int64(v.geo.ClusterSize)
	need := uint32((int64(f.size()) + cs - 1) / cs)
	if f.ext.total <= need {
		return nil
	}
	return v.setClusters(f, need)
}

// setClusters makes f's chain exactly n clusters long: allocating (n
// larger; nothing is allocated if the volume has too few free clusters) or
// freeing its tail. The directory entry follows the first cluster.
func (v *vcb) setClusters(f *fcb, n uint32) error {
	switch {
	case n == f.ext.total:
		return nil
	case n > f.ext.total:
		prev := f.ext.last()
		hint := uint32(0)
		if prev != 0 {
			hint = prev + 1
		}
		exts, err := v.fat.Allocate(n-f.ext.total, hint, prev)
		if err != nil {
			return v.note(err)
		}
		// Fresh clusters cannot be claimed by another chain: they were free.
		_ = v.claim(exts)
		f.grown = true
		if f.ext.total == 0 {
			v.setStart(f, exts[0].Start)
		}
		f.ext.append(exts)
		return nil
	}
	// Pages past the new end of the chain must never reach the clusters
	// being freed.
	v.discard(f, int64(n)*int64(v.geo.ClusterSize))
	newStart, _, err := v.fat.Truncate(f.start, n)
	if err != nil {
		return v.note(err)
	}
	v.unclaim(f.ext.truncate(n))
	if newStart != f.start {
		v.setStart(f, newStart)
	}
	return nil
}

// setStart records a new first cluster in f and its directory entry.
func (v *vcb) setStart(f *fcb, c uint32) {
	f.start = c
	if f.de != nil {
		f.de.short.FirstCluster = c
		v.writeEntry(f.parent, f.de)
	}
}
