package ondisk

import (
	"errors"
	"fmt"
	"math/bits"
	"strings"
)

// The cluster-ownership pass: every directory is read from the root and
// every entry's chain is followed through the FAT, each cluster marked as
// owned the first time a chain reaches it (one bit per cluster). A chain
// that reaches an owned cluster is cross-linked with another (or loops back
// on itself: a cycle, told apart by walking the chain again, which only a
// problem costs); a chain that starts or runs outside the data area, into
// a free or a bad cluster, or whose length does not match its file's size
// is reported too. Time is linear in the clusters in use and the directory
// bytes; memory is the bitmap, one directory's bytes (at most 2 MiB) and
// the queue of directories still to read.
//
// The FSD runs it when it mounts a volume that is dirty and writable, and
// refuses writes if it finds a problem (NT's FastFAT would mark the volume
// for chkdsk); a checker runs it to the end to report everything.

// OwnershipProblemKind says what is wrong with a chain.
type OwnershipProblemKind int

// The problems the ownership pass finds.
const (
	// ProblemStartOutOfRange: the entry's first cluster is outside the
	// data area.
	ProblemStartOutOfRange OwnershipProblemKind = iota + 1
	// ProblemStartFree: the entry's first cluster is marked free.
	ProblemStartFree
	// ProblemNoCluster: a directory entry without a first cluster.
	ProblemNoCluster
	// ProblemLinkFree: the chain runs into a cluster marked free.
	ProblemLinkFree
	// ProblemLinkBad: the chain runs into a cluster marked bad.
	ProblemLinkBad
	// ProblemLinkOutOfRange: a cluster of the chain links outside the data
	// area with a value that is not end of chain.
	ProblemLinkOutOfRange
	// ProblemCycle: the chain comes back to one of its own clusters.
	ProblemCycle
	// ProblemCrossLink: the chain reaches a cluster another chain owns (a
	// directory inside itself is one too).
	ProblemCrossLink
	// ProblemChainTooShort: the file's size needs more clusters than the
	// chain has.
	ProblemChainTooShort
	// ProblemChainTooLong: the chain has more clusters than the file's
	// size needs.
	ProblemChainTooLong
)

// OwnershipProblem is one problem with one entry's chain. It is an error
// wrapping ErrCorrupt.
type OwnershipProblem struct {
	Kind OwnershipProblemKind
	// Path is the entry's path from the root (`\dir\file`; `\` for the
	// FAT32 root directory's own chain).
	Path string
	// Cluster is the cluster the problem is at: the first cluster, the one
	// the chain reaches, or (for a size mismatch) the chain's last.
	Cluster uint32
	// Other is, for a cross-link, the path of the entry whose chain owned
	// the cluster first, when OwnershipCheck.ResolveOwners found it.
	Other string
	// Size and Clusters are the file's size and its chain's length, for a
	// size mismatch.
	Size     uint32
	Clusters uint32
}

func (p *OwnershipProblem) Error() string {
	var what string
	switch p.Kind {
	case ProblemStartOutOfRange:
		what = fmt.Sprintf("starts at cluster %d, outside the data area", p.Cluster)
	case ProblemStartFree:
		what = fmt.Sprintf("starts at cluster %d, which is marked free", p.Cluster)
	case ProblemNoCluster:
		what = "is a directory without a cluster"
	case ProblemLinkFree:
		what = fmt.Sprintf("runs into cluster %d, which is marked free", p.Cluster)
	case ProblemLinkBad:
		what = fmt.Sprintf("runs into cluster %d, which is marked bad", p.Cluster)
	case ProblemLinkOutOfRange:
		what = fmt.Sprintf("has cluster %d linking outside the data area", p.Cluster)
	case ProblemCycle:
		what = fmt.Sprintf("loops back to its own cluster %d", p.Cluster)
	case ProblemCrossLink:
		if p.Other != "" {
			what = fmt.Sprintf("shares cluster %d with %s (cross-linked)", p.Cluster, p.Other)
		} else {
			what = fmt.Sprintf("shares cluster %d with another chain (cross-linked)", p.Cluster)
		}
	case ProblemChainTooShort:
		what = fmt.Sprintf("is %d bytes but its chain has only %d clusters", p.Size, p.Clusters)
	case ProblemChainTooLong:
		what = fmt.Sprintf("is %d bytes but its chain has %d clusters", p.Size, p.Clusters)
	default:
		what = fmt.Sprintf("has problem %d at cluster %d", int(p.Kind), p.Cluster)
	}
	return fmt.Sprintf("%v: %s %s", ErrCorrupt, p.Path, what)
}

// Unwrap makes every problem an ErrCorrupt.
func (p *OwnershipProblem) Unwrap() error { return ErrCorrupt }

// UnsafeToWrite reports whether the problem makes writing to the volume
// unsafe: every kind but a chain longer than its file needs, whose extra
// clusters the FSD gives back when the file is next closed after a write
// (what fsck.fat's truncation does too).
func (p *OwnershipProblem) UnsafeToWrite() bool { return p.Kind != ProblemChainTooLong }

// OwnershipCheck describes one ownership pass over a volume.
type OwnershipCheck struct {
	// Geometry and FAT are the volume's layout and its FAT (the Table is
	// only read).
	Geometry *Geometry
	FAT      *Table
	// CodePage decodes short names for the paths in problems; nil means
	// DefaultCodePage.
	CodePage *CodePage
	// ReadAt reads len(p) bytes of the volume at volume offset off (whole
	// sectors: directories are read by clusters, the FAT12/16 root whole).
	ReadAt func(p []byte, off int64) error
	// Problem, if set, is called for each problem found; returning false
	// ends the pass there.
	Problem func(*OwnershipProblem) bool
	// ResolveOwners, after a complete pass that found cross-links, reads
	// the directories once more to name the first owner of each shared
	// cluster (OwnershipProblem.Other; at most 1024 clusters).
	ResolveOwners bool
}

// OwnershipReport is what a pass found.
type OwnershipReport struct {
	Files, Directories int
	// Owned counts the clusters reached by chains.
	Owned uint32
	// Lost counts the clusters marked in use (not free, not bad) that no
	// chain reaches; only after a complete pass.
	Lost uint32
	// Problems holds every problem found (those Problem was called with).
	Problems []*OwnershipProblem
	// Complete is false when Problem ended the pass early.
	Complete bool
}

// maxResolve bounds the cross-linked clusters whose owners a pass names.
const maxResolve = 1024

// ownWalk is the state of one pass.
type ownWalk struct {
	c      *OwnershipCheck
	t      *Table
	g      *Geometry
	owned  []uint64
	rep    *OwnershipReport
	stop   bool
	shared map[uint32]string // ResolveOwners: cross-linked cluster → first owner ("" until found)
	second bool              // the resolving pass: find owners only
	buf    []byte
}

// ownDir is a directory still to read.
type ownDir struct {
	path string
	exts []Extent
}

// Run makes the pass. Its error is a failure to read a directory; what is
// wrong with the chains is in the report.
func (c *OwnershipCheck) Run() (*OwnershipReport, error) {
	if c.Geometry == nil || c.FAT == nil || c.ReadAt == nil {
		return nil, errors.New("fat: ownership check without a geometry, a FAT or a reader")
	}
	w := &ownWalk{c: c, t: c.FAT, g: c.Geometry, rep: &OwnershipReport{}}
	if err := w.pass(); err != nil {
		return w.rep, err
	}
	w.rep.Complete = !w.stop
	if !w.rep.Complete {
		return w.rep, nil
	}
	w.rep.Lost = w.lost()
	if len(w.shared) > 0 {
		// Second pass: the first chain to reach each shared cluster is its
		// owner; the problems name it.
		w2 := &ownWalk{c: c, t: c.FAT, g: c.Geometry, rep: &OwnershipReport{}, shared: w.shared, second: true}
		if err := w2.pass(); err != nil {
			return w.rep, err
		}
		for _, p := range w.rep.Problems {
			if p.Kind == ProblemCrossLink && p.Other == "" && w.shared[p.Cluster] != p.Path {
				p.Other = w.shared[p.Cluster]
			}
		}
	}
	return w.rep, nil
}

// pass walks the root and then every directory below it, breadth first.
func (w *ownWalk) pass() error {
	w.owned = make([]uint64, (uint64(w.t.max)+64)/64)
	var queue []ownDir
	root := ownDir{path: `\`}
	if w.g.Type == FAT32 {
		exts, ok := w.chain(w.g.RootCluster, `\`, nil, true, 0)
		if !ok {
			return nil
		}
		root.exts = exts
	}
	queue = append(queue, root)
	for len(queue) > 0 && !w.stop {
		d := queue[0]
		queue = queue[1:]
		sub, err := w.dir(d)
		if err != nil {
			return err
		}
		queue = append(queue, sub...)
	}
	return nil
}

// dir reads one directory and walks its entries' chains; it returns the
// subdirectories to read.
func (w *ownWalk) dir(d ownDir) ([]ownDir, error) {
	g := w.g
	var data []byte
	nslots := 0
	if d.path == `\` && g.Type != FAT32 {
		data = w.grow(int(g.RootDirBytes()))
		if err := w.c.ReadAt(data, g.RootDirOffset()); err != nil {
			return nil, fmt.Errorf("read the root directory: %w", err)
		}
		nslots = int(g.RootEntries)
	} else {
		cs := int64(g.ClusterSize)
		n := min(int64(ExtentClusters(d.exts))*cs, MaxDirBytes)
		data = w.grow(int(n))
		off := int64(0)
		for _, e := range d.exts {
			if off >= n {
				break
			}
			l := min(int64(e.Len)*cs, n-off)
			if err := w.c.ReadAt(data[off:off+l], g.ClusterOffset(e.Start)); err != nil {
				return nil, fmt.Errorf("read directory %s: %w", d.path, err)
			}
			off += l
		}
		nslots = int(n) / DirEntrySize
	}
	w.rep.Directories++
	var sub []ownDir
	var sc Scanner
	for e := range sc.Entries(data[:nslots*DirEntrySize]) {
		if e.IsVolumeLabel() || e.Name.IsDot() {
			continue
		}
		// The name is only made when a path is needed.
		name := func() string { return e.DisplayName(w.c.CodePage) }
		start := e.StartCluster(g.Type)
		if e.IsDir() {
			if start == 0 {
				w.problem(&OwnershipProblem{Kind: ProblemNoCluster, Path: ownPath(d.path, name())})
				continue
			}
			exts, ok := w.chain(start, d.path, name, true, 0)
			if ok {
				sub = append(sub, ownDir{path: ownPath(d.path, name()), exts: exts})
			}
		} else {
			w.rep.Files++
			w.chain(start, d.path, name, false, e.Size)
		}
		if w.stop {
			break
		}
	}
	return sub, nil
}

// grow returns a buffer of n bytes, reusing the last one.
func (w *ownWalk) grow(n int) []byte {
	if cap(w.buf) < n {
		w.buf = make([]byte, n)
	}
	return w.buf[:n]
}

func ownPath(dir, name string) string {
	if strings.HasSuffix(dir, `\`) {
		return dir + name
	}
	return dir + `\` + name
}

func (w *ownWalk) isOwned(c uint32) bool { return w.owned[c>>6]&(1<<(c&63)) != 0 }

// chain walks the chain at start of the entry called name() in directory
// dir (name nil for the FAT32 root itself), owning its clusters. It
// returns the chain as extents when keep is set (directories, which are
// read next), and whether the chain was sound.
func (w *ownWalk) chain(start uint32, dir string, name func() string, keep bool, size uint32) ([]Extent, bool) {
	t := w.t
	path := func() string {
		if name == nil {
			return dir
		}
		return ownPath(dir, name())
	}
	if start == 0 {
		if !keep && size > 0 {
			w.problem(&OwnershipProblem{Kind: ProblemChainTooShort, Path: path(), Size: size})
			return nil, false
		}
		return nil, true
	}
	if start < 2 || start > t.max {
		w.problem(&OwnershipProblem{Kind: ProblemStartOutOfRange, Path: path(), Cluster: start})
		return nil, false
	}
	if t.IsFree(start) {
		w.problem(&OwnershipProblem{Kind: ProblemStartFree, Path: path(), Cluster: start})
		return nil, false
	}
	var exts []Extent
	n := uint32(0)
	eoc, bad := t.eoc(), t.bad()
	for c := start; ; {
		if w.isOwned(c) {
			if w.second {
				return exts, false
			}
			kind := ProblemCrossLink
			if w.inChain(start, n, c) {
				kind = ProblemCycle
			} else if w.c.ResolveOwners && w.shared == nil {
				w.shared = map[uint32]string{}
			}
			if kind == ProblemCrossLink && w.shared != nil && len(w.shared) < maxResolve {
				w.shared[c] = ""
			}
			w.problem(&OwnershipProblem{Kind: kind, Path: path(), Cluster: c})
			return exts, false
		}
		w.owned[c>>6] |= 1 << (c & 63)
		w.rep.Owned++
		n++
		if w.second {
			if owner, ok := w.shared[c]; ok && owner == "" {
				w.shared[c] = path()
			}
		}
		if keep {
			if k := len(exts); k > 0 && exts[k-1].Start+exts[k-1].Len == c {
				exts[k-1].Len++
			} else {
				exts = append(exts, Extent{Start: c, Len: 1})
			}
		}
		v := t.get(c)
		switch {
		case v >= 2 && v <= t.max:
			if t.IsFree(v) {
				w.problem(&OwnershipProblem{Kind: ProblemLinkFree, Path: path(), Cluster: v})
				return exts, false
			}
			if t.get(v) == bad {
				w.problem(&OwnershipProblem{Kind: ProblemLinkBad, Path: path(), Cluster: v})
				return exts, false
			}
			c = v
			continue
		case v >= eoc:
		case v == bad:
			w.problem(&OwnershipProblem{Kind: ProblemLinkBad, Path: path(), Cluster: c})
			return exts, false
		default:
			w.problem(&OwnershipProblem{Kind: ProblemLinkOutOfRange, Path: path(), Cluster: c})
			return exts, false
		}
		break
	}
	if !keep {
		cs := uint64(w.g.ClusterSize)
		need := (uint64(size) + cs - 1) / cs
		switch {
		case uint64(n) < need:
			w.problem(&OwnershipProblem{Kind: ProblemChainTooShort, Path: path(), Cluster: start, Size: size, Clusters: n})
			return exts, false
		case uint64(n) > need:
			w.problem(&OwnershipProblem{Kind: ProblemChainTooLong, Path: path(), Cluster: start, Size: size, Clusters: n})
			return exts, false
		}
	}
	return exts, true
}

// inChain reports whether c is among the first n clusters of the chain at
// start (walked again: only a problem costs this).
func (w *ownWalk) inChain(start, n, c uint32) bool {
	for x, i := start, uint32(0); i < n; i++ {
		if x == c {
			return true
		}
		v := w.t.get(x)
		if v < 2 || v > w.t.max {
			return false
		}
		x = v
	}
	return false
}

// problem records p and asks the caller whether to go on.
func (w *ownWalk) problem(p *OwnershipProblem) {
	if w.second {
		return
	}
	w.rep.Problems = append(w.rep.Problems, p)
	if w.c.Problem != nil && !w.c.Problem(p) {
		w.stop = true
	}
}

// lost counts clusters in use that no chain reached.
func (w *ownWalk) lost() uint32 {
	t := w.t
	var n uint32
	bad := t.bad()
	for i := range w.owned {
		used := ^(t.freeMap[i] | w.owned[i])
		for used != 0 {
			b := uint32(bits.TrailingZeros64(used))
			used &= used - 1
			c := uint32(i)<<6 + b
			if c < 2 || c > t.max {
				continue
			}
			if t.get(c) != bad {
				n++
			}
		}
	}
	return n
}
