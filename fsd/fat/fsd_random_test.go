package fat

// Randomised operation sequences checked step by step against a simple
// in-memory model, then against fsck.fat and mtools.

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk/fsd/fat/internal/fattest"
	"github.com/vdisk-dev/vdisk/fsd/fat/internal/ondisk"
	"github.com/vdisk-dev/vdisk/iomgr"
)

var (
	fxSeed = flag.Uint64("fat.seed", 0, "run the randomised FSD test with this seed only")
	fxOps  = flag.Int("fat.ops", 0, "operations per randomised FSD run (default 5000; 1000 with -short)")
	fxLong = flag.Bool("fat.long", false, "run 5000 operations per seed even with -short")
)

// fxRegressionSeeds are seeds that once failed; they run every time.
var fxRegressionSeeds = []uint64{1, 2, 20240517}

// mNode is a file or directory of the model.
type mNode struct {
	name   string // as created (case preserved)
	dir    bool
	data   []byte
	parent *mNode
	kids   map[string]*mNode // by FoldKey
}

func (n *mNode) path() string {
	if n.parent == nil {
		return `\`
	}
	p := n.parent.path()
	if p != `\` {
		p += `\`
	}
	return p + n.name
}

func (n *mNode) isUnder(d *mNode) bool {
	for x := n; x != nil; x = x.parent {
		if x == d {
			return true
		}
	}
	return false
}

type fxModel struct {
	root  *mNode
	nodes []*mNode // every node but the root
}

func (m *fxModel) add(n *mNode) {
	n.parent.kids[ondisk.FoldKey(n.name)] = n
	m.nodes = append(m.nodes, n)
}

func (m *fxModel) remove(n *mNode) {
	delete(n.parent.kids, ondisk.FoldKey(n.name))
	for i, x := range m.nodes {
		if x == n {
			m.nodes = append(m.nodes[:i], m.nodes[i+1:]...)
			break
		}
	}
}

func (m *fxModel) tree() map[string][]byte {
	out := map[string][]byte{}
	for _, n := range m.nodes {
		if n.dir {
			out[n.path()+`\`] = nil
		} else {
			out[n.path()] = append([]byte{}, n.data...)
		}
	}
	return out
}

func (m *fxModel) pick(r *rand.Rand, dir bool) *mNode {
	var c []*mNode
	for _, n := range m.nodes {
		if n.dir == dir {
			c = append(c, n)
		}
	}
	if dir {
		c = append(c, m.root)
	}
	if len(c) == 0 {
		return nil
	}
	return c[r.IntN(len(c))]
}

// fxRandomName draws names that collide often (case-insensitively) and
// exercise short names: 8.3 in either case, mixed case, long, Unicode,
// shared prefixes that need ~N tails.
func fxRandomName(r *rand.Rand) string {
	k := r.IntN(12)
	switch r.IntN(7) {
	case 0:
		return fmt.Sprintf("file%d.txt", k)
	case 1:
		return fmt.Sprintf("FILE%d.TXT", k)
	case 2:
		return fmt.Sprintf("Mixed Case %d.Dat", k)
	case 3:
		return fmt.Sprintf("Ünïcödé nämé %d", k)
	case 4:
		return fmt.Sprintf("A shared long prefix for tails %d.bin", k)
	case 5:
		return strings.Repeat("long", 20) + fmt.Sprint(k)
	}
	return fmt.Sprintf("d%d", k)
}

func TestRandomOperations(t *testing.T) {
	fattest.Need(t, "mkfs.fat", "fsck.fat", "mcopy")
	// The issue asks for 5,000 operations per sequence; -short keeps 1,000.
	ops := 5000
	if testing.Short() && !*fxLong {
		ops = 1000
	}
	if *fxOps > 0 {
		ops = *fxOps
	}
	seeds := append([]uint64{}, fxRegressionSeeds...)
	seeds = append(seeds, uint64(time.Now().UnixNano()))
	if *fxSeed != 0 {
		seeds = []uint64{*fxSeed}
	}
	layouts := []fxLayout{fxLayouts[1], fxLayouts[2]}
	for i, seed := range seeds {
		l := layouts[i%len(layouts)]
		t.Run(fmt.Sprintf("%s/seed=%d", l.name, seed), func(t *testing.T) {
			if !fxRunRandom(t, l, seed, ops) {
				t.Errorf("failing seed: go test ./fsd/fat -run TestRandomOperations -fat.seed=%d (add it to fxRegressionSeeds)", seed)
			}
		})
	}
}

// fxRunRandom runs ops random operations; it reports whether all agreed.
func fxRunRandom(t *testing.T, l fxLayout, seed uint64, ops int) bool {
	r := rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15))
	img := fattest.Mkfs(t, l.kib, l.mkfs...)
	x := fxOpen(t, img, l.sectorSize, fxOpt{workers: int(seed % 3)})
	m := &fxModel{root: &mNode{dir: true, kids: map[string]*mNode{}}}
	const maxFile = 128 << 10
	ok := true
	fail := func(step int, format string, args ...any) {
		t.Errorf("step %d: "+format, append([]any{step}, args...)...)
		ok = false
	}
	expect := func(step int, what string, got, want iomgr.Status) bool {
		if got != want {
			fail(step, "%s: %v, want %v", what, got, want)
			return false
		}
		return true
	}
	for step := 0; step < ops && ok; step++ {
		switch op := r.IntN(100); {
		case op < 20: // create a file
			d := m.pick(r, true)
			name := fxRandomName(r)
			p := strings.TrimSuffix(d.path(), `\`) + `\` + name
			fo, _, err := x.open(p, fxAll, iomgr.FileCreate, iomgr.FileNonDirectoryFile)
			if ex := d.kids[ondisk.FoldKey(name)]; ex != nil {
				expect(step, "create existing "+p, iomgr.StatusOf(err), iomgr.StatusObjectNameCollision)
				continue
			}
			if !expect(step, "create "+p, iomgr.StatusOf(err), iomgr.StatusSuccess) {
				continue
			}
			n := &mNode{name: name, parent: d}
			if r.IntN(2) == 0 {
				n.data = fxContent(fmt.Sprint(seed, step), r.IntN(20000))
				expect(step, "write new "+p, fxWrite(fo, 0, n.data), iomgr.StatusSuccess)
			}
			fxClose(fo)
			m.add(n)
		case op < 40: // write at an offset
			f := m.pick(r, false)
			if f == nil {
				continue
			}
			off := r.IntN(len(f.data) + 5000)
			n := r.IntN(30000) + 1
			if off+n > maxFile {
				continue
			}
			data := fxContent(fmt.Sprint(seed, step, "w"), n)
			fo, _, err := x.open(f.path(), fxRW, iomgr.FileOpen, 0)
			if !expect(step, "open "+f.path(), iomgr.StatusOf(err), iomgr.StatusSuccess) {
				continue
			}
			if expect(step, fmt.Sprintf("write %d at %d of %s", n, off, f.path()), fxWrite(fo, int64(off), data), iomgr.StatusSuccess) {
				if off+n > len(f.data) {
					f.data = append(f.data, make([]byte, off+n-len(f.data))...)
				}
				copy(f.data[off:], data)
			}
			if r.IntN(3) == 0 {
				got, st := fxReadAll(fo)
				if st != iomgr.StatusSuccess || !bytes.Equal(got, f.data) {
					fail(step, "read back %s: %v, %d bytes, want %d", f.path(), st, len(got), len(f.data))
				}
			}
			fxClose(fo)
		case op < 50: // truncate or extend
			f := m.pick(r, false)
			if f == nil {
				continue
			}
			size := r.IntN(len(f.data)*3/2 + 2000)
			if size > maxFile {
				continue
			}
			fo, _, err := x.open(f.path(), fxRW, iomgr.FileOpen, 0)
			if !expect(step, "open "+f.path(), iomgr.StatusOf(err), iomgr.StatusSuccess) {
				continue
			}
			if expect(step, fmt.Sprintf("set EOF %d of %s", size, f.path()), fxSetEOF(fo, int64(size)), iomgr.StatusSuccess) {
				if size <= len(f.data) {
					f.data = f.data[:size]
				} else {
					f.data = append(f.data, make([]byte, size-len(f.data))...)
				}
			}
			fxClose(fo)
		case op < 65: // rename or move
			if len(m.nodes) == 0 {
				continue
			}
			n := m.nodes[r.IntN(len(m.nodes))]
			d := m.pick(r, true)
			name := fxRandomName(r)
			if r.IntN(4) == 0 {
				name = strings.ToUpper(n.name) // a case-only rename, or a collision
			}
			replace := r.IntN(2) == 0
			from := n.path()
			to := strings.TrimSuffix(d.path(), `\`) + `\` + name
			fo, _, err := x.open(from, iomgr.Delete, iomgr.FileOpen, 0)
			if !expect(step, "open "+from, iomgr.StatusOf(err), iomgr.StatusSuccess) {
				continue
			}
			st := fxRename(fo, to, replace)
			fxClose(fo)
			ex := d.kids[ondisk.FoldKey(name)]
			want := iomgr.StatusSuccess
			switch {
			case n.dir && d.isUnder(n):
				want = iomgr.StatusInvalidParameter
			case ex != nil && ex != n && !replace:
				want = iomgr.StatusObjectNameCollision
			case ex != nil && ex != n && ex.dir:
				want = iomgr.StatusAccessDenied
			}
			if !expect(step, fmt.Sprintf("rename %s → %s (replace %v)", from, to, replace), st, want) || want != iomgr.StatusSuccess {
				continue
			}
			if ex != nil && ex != n {
				m.remove(ex)
			}
			m.remove(n)
			n.name, n.parent = name, d
			m.add(n)
		case op < 75: // delete a file
			f := m.pick(r, false)
			if f == nil {
				continue
			}
			fo, _, err := x.open(f.path(), iomgr.Delete, iomgr.FileOpen, iomgr.FileNonDirectoryFile)
			if !expect(step, "open "+f.path(), iomgr.StatusOf(err), iomgr.StatusSuccess) {
				continue
			}
			if expect(step, "delete "+f.path(), fxDelete(fo), iomgr.StatusSuccess) {
				m.remove(f)
			}
			fxClose(fo)
		case op < 85: // make a directory
			d := m.pick(r, true)
			name := fxRandomName(r)
			p := strings.TrimSuffix(d.path(), `\`) + `\` + name
			fo, _, err := x.open(p, iomgr.FileListDirectory, iomgr.FileCreate, iomgr.FileDirectoryFile)
			if ex := d.kids[ondisk.FoldKey(name)]; ex != nil {
				expect(step, "mkdir existing "+p, iomgr.StatusOf(err), iomgr.StatusObjectNameCollision)
				continue
			}
			if expect(step, "mkdir "+p, iomgr.StatusOf(err), iomgr.StatusSuccess) {
				fxClose(fo)
				m.add(&mNode{name: name, dir: true, parent: d, kids: map[string]*mNode{}})
			}
		case op < 92: // remove a directory
			d := m.pick(r, true)
			if d == m.root {
				continue
			}
			fo, _, err := x.open(d.path(), iomgr.Delete, iomgr.FileOpen, iomgr.FileDirectoryFile)
			if !expect(step, "open "+d.path(), iomgr.StatusOf(err), iomgr.StatusSuccess) {
				continue
			}
			want := iomgr.StatusSuccess
			if len(d.kids) > 0 {
				want = iomgr.StatusDirectoryNotEmpty
			}
			if expect(step, "rmdir "+d.path(), fxDelete(fo), want) && want == iomgr.StatusSuccess {
				m.remove(d)
			}
			fxClose(fo)
		case op < 98: // list a directory
			d := m.pick(r, true)
			got := x.listDir(d.path())
			var gn, wn []string
			for _, e := range got {
				gn = append(gn, e.FileName)
			}
			for _, k := range d.kids {
				wn = append(wn, k.name)
			}
			sort.Strings(gn)
			sort.Strings(wn)
			if strings.Join(gn, "|") != strings.Join(wn, "|") {
				fail(step, "list %s: %q, want %q", d.path(), gn, wn)
			}
		default: // remount and compare everything
			x.close()
			x = fxOpen(t, img, l.sectorSize, fxOpt{})
			fxCompareTrees(t, fmt.Sprintf("step %d remount", step), x.walk(`\`), m.tree())
		}
	}
	if !ok {
		return false
	}
	want := m.tree()
	fxCompareTrees(t, "vdisk", x.walk(`\`), want)
	x.close()
	fxFsck(t, img)
	fxCompareTrees(t, "mtools", fxMtoolsTree(t, img), want)
	return !t.Failed()
}
