package fat

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf16"

	"github.com/vdisk-dev/vdisk/fsd/fat/internal/ondisk"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// dirEntry is one live entry of a directory, as its index holds it. For an
// open file or directory it is the truth about its directory entry: the FCB
// changes the short entry here and the index writes it back.
type dirEntry struct {
	short        ondisk.ShortEntry
	long         string // "" when the entry has no long name
	slot         int    // slot of the short entry
	first        int    // first slot (of the long name, or slot)
	display      string // the name: the long name, or the short one with NT case flags
	shortDisplay string // the short name, with NT case flags
	fcb          *fcb   // the entry's FCB while it has one
}

func (de *dirEntry) slots() int { return de.slot - de.first + 1 }

// dirIndex is a directory held in memory: its bytes, which slots are free,
// and its entries by folded name (long and short) and by slot, so lookups,
// short-name generation and enumeration never rescan the directory.
type dirIndex struct {
	data      []byte          // every slot of the directory (the fixed root, or the clusters in chain order)
	dirty     []uint64        // sectors of data changed since written
	slots     *ondisk.SlotMap // free and used slots
	byName    map[string]*dirEntry
	shorts    map[ondisk.ShortName]*dirEntry
	order     []*dirEntry // live entries by slot (dots and the label excluded)
	label     *dirEntry   // the volume label entry (root directory)
	dotdot    *dirEntry
	end       int  // slot of the end marker, or the slot count
	tailClean bool // every byte after the end marker is zero
}

// lookup finds an entry by name, long or short, case-insensitively.
func (x *dirIndex) lookup(name string) *dirEntry { return x.byName[ondisk.FoldKey(name)] }

// shortExists answers GenerateShortName: is the short name taken (by a
// short name, or as the name of another entry)?
func (x *dirIndex) shortExists(sn ondisk.ShortName) bool {
	if _, ok := x.shorts[sn]; ok {
		return true
	}
	_, ok := x.byName[ondisk.FoldKey(sn.String())]
	return ok
}

func (x *dirIndex) insert(de *dirEntry) {
	for _, k := range de.keys() {
		if _, ok := x.byName[k]; !ok {
			x.byName[k] = de
		}
	}
	if _, ok := x.shorts[de.short.Name]; !ok {
		x.shorts[de.short.Name] = de
	}
	i := sort.Search(len(x.order), func(i int) bool { return x.order[i].slot >= de.slot })
	x.order = append(x.order, nil)
	copy(x.order[i+1:], x.order[i:])
	x.order[i] = de
}

func (x *dirIndex) remove(de *dirEntry) {
	for _, k := range de.keys() {
		if x.byName[k] == de {
			delete(x.byName, k)
		}
	}
	if x.shorts[de.short.Name] == de {
		delete(x.shorts, de.short.Name)
	}
	i := sort.Search(len(x.order), func(i int) bool { return x.order[i].slot >= de.slot })
	if i < len(x.order) && x.order[i] == de {
		x.order = append(x.order[:i], x.order[i+1:]...)
	}
}

func (de *dirEntry) keys() []string {
	ks := []string{ondisk.FoldKey(de.shortDisplay)}
	if de.long != "" {
		if k := ondisk.FoldKey(de.long); k != ks[0] {
			ks = append(ks, k)
		}
	}
	return ks
}

// newDirEntry fills in the names of an entry the Scanner found or the
// driver made.
func (v *vcb) newDirEntry(e *ondisk.DirEntry) *dirEntry {
	de := &dirEntry{short: e.ShortEntry, long: e.LongName, slot: e.Slot, first: e.FirstSlot}
	v.setNames(de)
	return de
}

func (v *vcb) setNames(de *dirEntry) {
	de.shortDisplay = ondisk.DisplayShortName(de.short.Name, de.short.Case(), de.slot, v.cp)
	de.display = de.shortDisplay
	if de.long != "" {
		de.display = de.long
	}
}

// loadDir reads directory d and builds its index (once; it stays while d
// is in memory).
func (v *vcb) loadDir(d *fcb) error {
	if d.dir != nil {
		return nil
	}
	g := &v.geo
	var data []byte
	nslots := 0
	if d.isRoot && g.Type != ondisk.FAT32 {
		data = make([]byte, int64(g.RootDirSectors)*int64(g.BytesPerSector))
		if err := v.meta.transfer(iomgr.MajorRead, ioReq{rq: v.rq}, data, g.RootDirOffset()); err != nil {
			return fmt.Errorf("read the root directory: %w", err)
		}
		nslots = int(g.RootEntries)
	} else {
		cs := int64(g.ClusterSize)
		n := int64(d.ext.total)
		if n*cs > ondisk.MaxDirBytes {
			v.fs.logf("fat: volume %v: directory %s has %d clusters, more than %d entries: only the first are read", v.Real, d.path(), n, ondisk.MaxDirEntries)
			n = (ondisk.MaxDirBytes + cs - 1) / cs
		}
		data = make([]byte, n*cs)
		for vcn := int64(0); vcn < n; {
			lcn, run := d.ext.lookup(uint32(vcn))
			run = uint32(min(int64(run), n-vcn))
			if err := v.meta.transfer(iomgr.MajorRead, ioReq{rq: v.rq}, data[vcn*cs:(vcn+int64(run))*cs], g.ClusterOffset(lcn)); err != nil {
				return fmt.Errorf("read directory %s: %w", d.path(), err)
			}
			vcn += int64(run)
		}
		nslots = min(len(data)/ondisk.DirEntrySize, ondisk.MaxDirEntries)
	}
	x, err := v.buildIndex(d, data, nslots)
	if err != nil {
		return err
	}
	d.dir = x
	v.checkStarts(d)
	return nil
}

// checkStarts looks at the first cluster of every entry of a directory just
// read, against the FAT alone: one outside the data area, one marked free,
// one another cluster links to (the entry starts inside another chain),
// one a chain in memory holds, and two entries with the same one are
// corruption that writing would make worse (the allocator would hand out
// the free cluster; a delete would free clusters another chain uses). It
// records the first such problem (writes are refused from then on); the
// directory stays readable.
func (v *vcb) checkStarts(d *fcb) {
	if v.needsCheck() != nil {
		return
	}
	t := v.fat
	starts := make(map[uint32]*dirEntry, len(d.dir.order))
	for _, de := range d.dir.order {
		s := de.short.StartCluster(v.geo.Type)
		if s == 0 {
			continue
		}
		var why string
		switch other := starts[s]; {
		case s < 2 || s > t.MaxCluster():
			why = fmt.Sprintf("starts at cluster %d, outside 2..%d", s, t.MaxCluster())
		case t.IsFree(s):
			why = fmt.Sprintf("starts at cluster %d, which is marked free", s)
		case t.HasPredecessor(s):
			why = fmt.Sprintf("starts at cluster %d, inside another chain (cross-linked)", s)
		case other != nil:
			why = fmt.Sprintf("starts at cluster %d, as %s does (cross-linked)", s, d.childPath(other.display))
		case de.fcb == nil && v.claimed[s>>6]&(1<<(s&63)) != 0:
			why = fmt.Sprintf("starts at cluster %d, which another chain in use holds (cross-linked)", s)
		}
		if why != "" {
			_ = v.note(fmt.Errorf("%w: %s %s", ondisk.ErrCorrupt, d.childPath(de.display), why))
			return
		}
		starts[s] = de
	}
}

// buildIndex scans a directory's bytes into an index.
func (v *vcb) buildIndex(d *fcb, data []byte, nslots int) (*dirIndex, error) {
	x := &dirIndex{
		data:   data,
		dirty:  make([]uint64, (len(data)/int(v.geo.BytesPerSector)+64)/64),
		slots:  ondisk.NewSlotMap(nslots),
		byName: map[string]*dirEntry{},
		shorts: map[ondisk.ShortName]*dirEntry{},
	}
	sc := ondisk.Scanner{Free: func(first, n int) { x.slots.Release(first, n) }}
	var dot *dirEntry
	for e := range sc.Entries(data[:nslots*ondisk.DirEntrySize]) {
		switch {
		case e.IsVolumeLabel():
			if d.isRoot && x.label == nil {
				x.label = v.newDirEntry(&e)
			}
		case e.Name.IsDot():
			if d.isRoot {
				continue // not meaningful in the root: ignored, as Windows does
			}
			de := v.newDirEntry(&e)
			if e.Name == ondisk.DotName {
				if dot != nil {
					return nil, v.note(fmt.Errorf("%w: directory %s has two \".\" entries (slots %d and %d)", ondisk.ErrCorrupt, d.path(), dot.slot, e.Slot))
				}
				dot = de
			} else {
				if x.dotdot != nil {
					return nil, v.note(fmt.Errorf("%w: directory %s has two \"..\" entries (slots %d and %d)", ondisk.ErrCorrupt, d.path(), x.dotdot.slot, e.Slot))
				}
				x.dotdot = de
			}
		default:
			x.insert(v.newDirEntry(&e))
		}
	}
	x.end = nslots
	for i := 0; i < nslots; i++ {
		if data[i*ondisk.DirEntrySize] == 0 {
			x.end = i
			break
		}
	}
	x.tailClean = allZero(data[x.end*ondisk.DirEntrySize:])
	return x, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// markDirty records that bytes [from, to) of d's data changed.
func (v *vcb) markDirty(d *fcb, from, to int) {
	if to <= from {
		return
	}
	bps := int(v.geo.BytesPerSector)
	x := d.dir
	for s := from / bps; s <= (to-1)/bps; s++ {
		x.dirty[s>>6] |= 1 << (s & 63)
	}
	v.dirtyDirs[d] = struct{}{}
}

// writeDir writes d's changed sectors.
func (v *vcb) writeDir(d *fcb) error {
	x := d.dir
	if x == nil {
		return nil
	}
	bps := int64(v.geo.BytesPerSector)
	cs := int64(v.geo.ClusterSize)
	nsec := int64(len(x.data)) / bps
	for s := int64(0); s < nsec; {
		if x.dirty[s>>6]&(1<<(s&63)) == 0 {
			s++
			continue
		}
		e := s
		for e < nsec && x.dirty[e>>6]&(1<<(e&63)) != 0 {
			e++
		}
		a, b := s*bps, e*bps
		for a < b {
			var off, n int64
			if d.isRoot && v.geo.Type != ondisk.FAT32 {
				off, n = v.geo.RootDirOffset()+a, b-a
			} else {
				lcn, run := d.ext.lookup(uint32(a / cs))
				within := a % cs
				off = v.geo.ClusterOffset(lcn) + within
				n = min(b-a, int64(run)*cs-within)
			}
			if err := v.meta.transfer(iomgr.MajorWrite, ioReq{rq: v.rq}, x.data[a:a+n], off); err != nil {
				return fmt.Errorf("write directory %s: %w", d.path(), err)
			}
			a += n
		}
		for k := s; k < e; k++ {
			x.dirty[k>>6] &^= 1 << (k & 63)
		}
		s = e
	}
	return nil
}

// writeEntry puts de's short entry into d's data.
func (v *vcb) writeEntry(d *fcb, de *dirEntry) {
	if d == nil || d.dir == nil {
		return
	}
	off := de.slot * ondisk.DirEntrySize
	de.short.Encode(d.dir.data[off:])
	v.markDirty(d, off, off+ondisk.DirEntrySize)
}

// growNeed is how many clusters directory d must grow by to hold an entry
// of k consecutive slots (0 if it has room), or why it cannot.
func (v *vcb) growNeed(d *fcb, k int) (uint32, error) {
	x := d.dir
	if _, ok := x.slots.Find(k); ok {
		return 0, nil
	}
	if d.isRoot && v.geo.Type != ondisk.FAT32 {
		return 0, fail(iomgr.StatusCannotMake, "the root directory is full (%d entries)", v.geo.RootEntries)
	}
	trailing := 0
	for i := x.slots.Len() - 1; i >= 0 && !x.slots.InUse(i); i-- {
		trailing++
	}
	per := int(v.geo.ClusterSize) / ondisk.DirEntrySize
	n := (k - trailing + per - 1) / per
	if x.slots.Len()+n*per > ondisk.MaxDirEntries || len(x.data) < int(d.ext.total)*int(v.geo.ClusterSize) {
		return 0, fail(iomgr.StatusCannotMake, "directory %s is full: a FAT directory holds at most %d entries", d.path(), ondisk.MaxDirEntries)
	}
	return uint32(n), nil
}

// growDir adds n zero-filled clusters to directory d.
func (v *vcb) growDir(d *fcb, n uint32) error {
	if err := v.setClusters(d, d.ext.total+n); err != nil {
		return err
	}
	x := d.dir
	old := len(x.data)
	x.data = append(x.data, make([]byte, int(n)*int(v.geo.ClusterSize))...)
	for len(x.dirty)*64 < len(x.data)/int(v.geo.BytesPerSector)+1 {
		x.dirty = append(x.dirty, 0)
	}
	x.slots.Grow(len(x.data) / ondisk.DirEntrySize)
	v.markDirty(d, old, len(x.data))
	return nil
}

// addEntry places a new entry (long name entries when long is not "",
// then se) in directory d, which must have room (growNeed, growDir).
func (v *vcb) addEntry(d *fcb, long string, se ondisk.ShortEntry) (*dirEntry, error) {
	x := d.dir
	buf, err := ondisk.AppendEntries(nil, long, &se)
	if err != nil {
		return nil, err
	}
	k := len(buf) / ondisk.DirEntrySize
	slot, ok := x.slots.Find(k)
	if !ok {
		return nil, fail(iomgr.StatusDiskFull, "directory %s has no room for %d entries", d.path(), k)
	}
	if slot+k > x.end {
		if !x.tailClean {
			// Stale bytes after the end marker would read as entries once
			// the marker is overwritten.
			clear(x.data[x.end*ondisk.DirEntrySize:])
			v.markDirty(d, x.end*ondisk.DirEntrySize, len(x.data))
			x.tailClean = true
		}
		x.end = slot + k
	}
	off := slot * ondisk.DirEntrySize
	copy(x.data[off:], buf)
	v.markDirty(d, off, off+len(buf))
	x.slots.Use(slot, k)
	de := &dirEntry{short: se, long: long, slot: slot + k - 1, first: slot}
	v.setNames(de)
	x.insert(de)
	return de, nil
}

// removeEntry deletes de from directory d: its slots are marked deleted.
func (v *vcb) removeEntry(d *fcb, de *dirEntry) {
	x := d.dir
	for s := de.first; s <= de.slot; s++ {
		x.data[s*ondisk.DirEntrySize] = 0xE5
	}
	v.markDirty(d, de.first*ondisk.DirEntrySize, (de.slot+1)*ondisk.DirEntrySize)
	x.slots.Release(de.first, de.slots())
	x.remove(de)
}

// directoryControl handles IRP_MJ_DIRECTORY_CONTROL.
func (v *vcb) directoryControl(irp *iomgr.IRP) (iomgr.Status, uint64) {
	sl := irp.CurrentStackLocation()
	if sl.Minor != iomgr.MinorQueryDirectory {
		return iomgr.StatusInvalidDeviceRequest, 0
	}
	f, c := fileContext(sl.FileObject)
	if f == nil || c == nil {
		return iomgr.StatusInvalidParameter, 0
	}
	if !f.isDir {
		return iomgr.StatusInvalidParameter, 0
	}
	out, ok := irp.SystemBuffer.(*[]iomgr.FileDirectoryEntry)
	if !ok || out == nil {
		return iomgr.StatusInvalidUserBuffer, 0
	}
	if !v.lock(irp.Requestor) {
		return iomgr.StatusVolumeDismounted, 0
	}
	defer v.mu.Unlock()
	if f.deleted {
		return iomgr.StatusFileDeleted, 0
	}
	if err := v.loadDir(f); err != nil {
		return statusOf(err), 0
	}
	p := sl.Parameters.QueryDirectory
	restart := sl.Flags&iomgr.SLRestartScan != 0
	if !c.patternSet || (restart && p.FileName != "") {
		c.pattern, c.patternSet, restart = p.FileName, true, true
	}
	if restart {
		c.next, c.returned = -2, false
	}
	if sl.Flags&iomgr.SLIndexSpecified != 0 {
		c.next = int(p.FileIndex) + 1
	}
	if f.isRoot && c.next < 0 {
		c.next = 0
	}
	single := sl.Flags&iomgr.SLReturnSingleEntry != 0
	m := compilePattern(c.pattern)
	budget := int(p.Length)
	used, n := 0, 0
	// emit appends e if it fits the caller's buffer (always the first) and
	// reports whether to go on.
	emit := func(e iomgr.FileDirectoryEntry) (added, more bool) {
		size := entrySize(e.FileName)
		if n > 0 && budget > 0 && used+size > budget {
			return false, false
		}
		*out = append(*out, e)
		n++
		used += size
		return true, !single
	}
	x := f.dir
	for c.next < 0 {
		name := "."
		if c.next == -1 {
			name = ".."
		}
		if m.match(name, "") {
			added, more := emit(v.dotInfo(f, c.next == -1))
			if !added {
				break
			}
			c.next++
			if !more {
				break
			}
		} else {
			c.next++
		}
	}
	if c.next >= 0 && (n == 0 || !single) && !(n > 0 && budget > 0 && used >= budget) {
		if m.exact {
			// No wildcard: one look-up.
			if de := x.lookup(m.name); de != nil && de.slot >= c.next {
				if added, _ := emit(v.entryInfo(de)); added {
					c.next = x.slots.Len() + 1
				}
			} else {
				c.next = x.slots.Len() + 1
			}
		} else {
			i := sort.Search(len(x.order), func(i int) bool { return x.order[i].slot >= c.next })
			for ; i < len(x.order); i++ {
				de := x.order[i]
				if m.match(de.display, de.shortDisplay) {
					added, more := emit(v.entryInfo(de))
					if !added {
						break
					}
					c.next = de.slot + 1
					if !more {
						break
					}
				} else {
					c.next = de.slot + 1
				}
			}
		}
	}
	if n == 0 {
		if !c.returned {
			// NT says STATUS_NO_SUCH_FILE; iomgr has no such status, so
			// the first query that matches nothing gets NAME_NOT_FOUND.
			return iomgr.StatusObjectNameNotFound, 0
		}
		return iomgr.StatusNoMoreFiles, 0
	}
	c.returned = true
	return iomgr.StatusSuccess, uint64(used)
}

// entrySize is what NT's FILE_BOTH_DIR_INFORMATION takes for a name: the
// caller's Length is a byte budget in those units.
func entrySize(name string) int {
	return (94 + 2*len(utf16.Encode([]rune(name))) + 7) &^ 7
}

// attributes converts a short entry's attributes for a caller.
func attributes(s *ondisk.ShortEntry) iomgr.FileAttributes {
	a := iomgr.FileAttributes(s.Attr & (ondisk.AttrReadOnly | ondisk.AttrHidden | ondisk.AttrSystem | ondisk.AttrDirectory | ondisk.AttrArchive))
	if a == 0 {
		a = iomgr.FileAttributeNormal
	}
	return a
}

func (v *vcb) entryInfo(de *dirEntry) iomgr.FileDirectoryEntry {
	s := &de.short
	e := iomgr.FileDirectoryEntry{
		FileIndex:      uint32(de.slot),
		FileName:       de.display,
		CreationTime:   s.Created(v.loc),
		LastAccessTime: s.Accessed(v.loc),
		LastWriteTime:  s.Modified(v.loc),
		ChangeTime:     s.Modified(v.loc),
		FileAttributes: attributes(s),
	}
	if de.long != "" {
		e.ShortName = s.Name.Format(v.cp, 0)
	}
	if !s.IsDir() {
		e.EndOfFile = int64(s.Size)
		cs := int64(v.geo.ClusterSize)
		e.AllocationSize = (int64(s.Size) + cs - 1) / cs * cs
		if de.fcb != nil {
			e.AllocationSize = de.fcb.allocBytes()
		}
	}
	return e
}

// dotInfo describes "." (d itself) or ".." (its parent) of a subdirectory.
func (v *vcb) dotInfo(d *fcb, dotdot bool) iomgr.FileDirectoryEntry {
	e := iomgr.FileDirectoryEntry{FileName: ".", FileIndex: 0, FileAttributes: iomgr.FileAttributeDirectory}
	src := d
	if dotdot {
		e.FileName, e.FileIndex = "..", 1
		src = d.parent
	}
	if src != nil && src.de != nil {
		s := &src.de.short
		e.CreationTime, e.LastAccessTime = s.Created(v.loc), s.Accessed(v.loc)
		e.LastWriteTime, e.ChangeTime = s.Modified(v.loc), s.Modified(v.loc)
		e.FileAttributes = attributes(s)
	}
	return e
}

// pattern is a compiled QUERY_DIRECTORY file name pattern: * and ? (and
// the DOS forms < > "), matched case-insensitively against the long and
// the short name.
type pattern struct {
	all   bool
	exact bool   // no wildcard: name is the name to look up
	name  string // the pattern as given, for exact look-ups
	runes []rune // folded
}

func compilePattern(p string) pattern {
	switch p {
	case "", "*", "*.*":
		return pattern{all: true}
	}
	if !strings.ContainsAny(p, `*?<>"`) {
		return pattern{exact: true, name: p, runes: []rune(ondisk.FoldKey(p))}
	}
	r := []rune(ondisk.FoldKey(p))
	for i, c := range r {
		switch c {
		case '<':
			r[i] = '*'
		case '>':
			r[i] = '?'
		case '"':
			r[i] = '.'
		}
	}
	return pattern{runes: r}
}

func (p pattern) match(names ...string) bool {
	if p.all {
		return true
	}
	for _, n := range names {
		if n != "" && glob(p.runes, []rune(ondisk.FoldKey(n))) {
			return true
		}
	}
	return false
}

// glob matches * (any run) and ? (one character) with one backtracking
// point: linear in practice, never exponential.
func glob(p, s []rune) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
