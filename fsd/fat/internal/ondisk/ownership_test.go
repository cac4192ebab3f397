package ondisk

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
)

// owTable reads an image's geometry and FAT, within bounds a fuzzer's
// input cannot push into gigabytes; ok is false for an input that is no
// FAT volume or too large.
func owTable(img []byte) (*Geometry, *Table, bool) {
	bs, err := ParseBootSector(img)
	if err != nil {
		return nil, nil, false
	}
	g, _ := bs.Geometry()
	if g.FATBytes() > 4<<20 || g.MaxCluster > 1<<22 {
		return nil, nil, false
	}
	fat := make([]byte, g.FATBytes())
	owReadAt(img, fat, g.FATOffset(g.ActiveFAT))
	t, err := NewTable(&g, fat)
	if err != nil {
		return nil, nil, false
	}
	return &g, t, true
}

// owReadAt reads an image held in memory; bytes past its end read as
// zeros (the fuzzers leave trailing zeros out).
func owReadAt(img, p []byte, off int64) {
	clear(p)
	if off < int64(len(img)) && off >= 0 {
		copy(p, img[off:])
	}
}

// owRun runs a complete ownership pass over an image in memory.
func owRun(t testing.TB, img []byte, g *Geometry, tab *Table) *OwnershipReport {
	t.Helper()
	rep, err := (&OwnershipCheck{Geometry: g, FAT: tab, ResolveOwners: true,
		ReadAt: func(p []byte, off int64) error { owReadAt(img, p, off); return nil }}).Run()
	if err != nil {
		t.Fatalf("ownership pass: %v", err)
	}
	return rep
}

// FuzzOwnership runs the ownership pass and the FAT's link check on images
// whose bytes come from the fuzzer: no panic, no hang, a report that adds
// up (no cluster both owned and free, owned and lost no more than there
// are clusters), problems that are ErrCorrupt and name a path, and the
// same report twice. Seeds: testdata/fuzz/FuzzOwnership, fsd/fat's FuzzMount
// images and damaged copies of one (see TestFuzzOwnershipSeeds).
func FuzzOwnership(f *testing.F) {
	f.Fuzz(func(t *testing.T, img []byte) {
		if len(img) < 512 || len(img) > 8<<20 {
			return
		}
		g, tab, ok := owTable(img)
		if !ok {
			return
		}
		_ = tab.CheckLinks()
		rep := owRun(t, img, g, tab)
		owCheckReport(t, tab, rep)
		if again := owRun(t, img, g, tab); fmt.Sprint(again) != fmt.Sprint(rep) {
			t.Fatalf("two passes differ:\n%v\n%v", rep, again)
		}
	})
}

func owCheckReport(t *testing.T, tab *Table, rep *OwnershipReport) {
	t.Helper()
	if !rep.Complete {
		t.Fatal("a pass without a stopping callback stopped")
	}
	if uint64(rep.Owned)+uint64(rep.Lost)+uint64(tab.FreeCount()) > uint64(tab.MaxCluster()-1) {
		t.Fatalf("owned %d + lost %d + free %d > %d clusters", rep.Owned, rep.Lost, tab.FreeCount(), tab.MaxCluster()-1)
	}
	for _, p := range rep.Problems {
		if !errors.Is(p, ErrCorrupt) || p.Path == "" || p.Path[0] != '\\' || p.Error() == "" {
			t.Fatalf("problem %+v: %v", *p, p)
		}
	}
}

// ownSeeds is FuzzOwnership's seed corpus.
var ownSeeds = filepath.Join("testdata", "fuzz", "FuzzOwnership")

// TestFuzzOwnershipSeeds writes the seed corpus (with -odgenseeds): the
// FuzzMount images (which fsd/fat's TestFuzzMountSeeds writes here too),
// and copies of the one with files whose FAT is damaged in each way the
// pass tells apart. It runs the pass on each and checks the kind of
// problem the damage gives.
func TestFuzzOwnershipSeeds(t *testing.T) {
	tree := testsupport.ReadSeed(t, ownSeeds, "fat12-64k-tree")
	g, tab, ok := owTable(tree)
	if !ok {
		t.Fatal("the seed is no FAT volume")
	}
	if rep := owRun(t, tree, g, tab); len(rep.Problems) != 0 || rep.Lost != 0 || rep.Files == 0 {
		t.Fatalf("the seed itself: %+v %v", rep, rep.Problems)
	}
	// A file with two clusters or more: where the damage goes.
	var c uint32
	for x := uint32(2); x <= tab.MaxCluster() && c == 0; x++ {
		if v, _ := tab.Get(x); v >= 2 && v <= tab.MaxCluster() {
			c = x
		}
	}
	if c == 0 {
		t.Fatal("no chain of two clusters in the seed")
	}
	next, _ := tab.Get(c)
	free := tab.nextFreeFrom(2)
	damage := []struct {
		name string
		set  func(t *Table)
		want OwnershipProblemKind
	}{
		{"link-to-free", func(t *Table) { t.put(c, free) }, ProblemLinkFree},
		{"cycle", func(t *Table) { t.put(next, c) }, ProblemCycle},
		{"link-out-of-range", func(t *Table) { t.put(c, 1) }, ProblemLinkOutOfRange},
		{"link-to-bad", func(t *Table) { t.put(free, t.bad()); t.put(c, free) }, ProblemLinkBad},
	}
	corpus := map[string][]byte{}
	for _, name := range []string{"fat12-64k-empty", "fat12-64k-tree", "fat12-64k-4k-clusters"} {
		corpus[name] = testsupport.ReadSeed(t, ownSeeds, name)
	}
	for _, d := range damage {
		img := slices.Clone(tree)
		_, tab, _ := owTable(img)
		d.set(tab)
		for i := uint32(0); i < g.NumFATs; i++ {
			copy(img[g.FATOffset(i):], tab.Bytes())
		}
		_, tab, _ = owTable(img)
		rep := owRun(t, img, g, tab)
		owCheckReport(t, tab, rep)
		if len(rep.Problems) == 0 || rep.Problems[0].Kind != d.want {
			t.Errorf("%s: problems %v, want kind %d", d.name, rep.Problems, d.want)
		}
		corpus[d.name] = img
	}
	if *GenSeeds {
		testsupport.WriteSeeds(t, ownSeeds, corpus)
	}
}

// TestPredecessorBitsFollowTheFAT: after allocations, frees, truncations
// and relinks, the Table's predecessor bits are what a fresh Table built
// from its bytes finds, and CheckLinks sees a link into a free cluster and
// two chains joined.
func TestPredecessorBitsFollowTheFAT(t *testing.T) {
	for _, typ := range []FATType{FAT12, FAT16, FAT32} {
		t.Run(typ.String(), func(t *testing.T) {
			g := Geometry{Type: typ, MaxCluster: 3000, BytesPerSector: 512}
			tab, err := NewTable(&g, make([]byte, 3001*4))
			if err != nil {
				t.Fatal(err)
			}
			rng := odRand(uint64(typ))
			var starts []uint32
			for i := 0; i < 2000; i++ {
				switch op := rng.IntN(4); {
				case op < 2 || len(starts) == 0:
					exts, err := tab.Allocate(uint32(rng.IntN(20)+1), uint32(rng.IntN(3000)), 0)
					if err == nil {
						starts = append(starts, exts[0].Start)
					}
				case op == 2:
					k := rng.IntN(len(starts))
					if _, err := tab.FreeChain(starts[k]); err != nil {
						t.Fatal(err)
					}
					starts = slices.Delete(starts, k, k+1)
				default:
					k := rng.IntN(len(starts))
					s, _, err := tab.Truncate(starts[k], uint32(rng.IntN(5)+1))
					if err != nil {
						t.Fatal(err)
					}
					starts[k] = s
				}
			}
			fresh, err := NewTable(&g, slices.Clone(tab.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tab.pred, fresh.pred) {
				t.Fatal("predecessor bits out of step with the FAT")
			}
			if err := tab.CheckLinks(); err != nil {
				t.Fatalf("sound chains: %v", err)
			}
			for _, s := range starts {
				if tab.HasPredecessor(s) {
					t.Fatalf("chain start %d has a predecessor", s)
				}
			}
			// Damage: a chain's last cluster linked to another's first
			// (a join when that one has a predecessor already), and one
			// linked to a free cluster.
			if len(starts) < 3 {
				t.Fatal("too few chains")
			}
			exts, _ := tab.Chain(starts[0])
			last := exts[len(exts)-1].Start + exts[len(exts)-1].Len - 1
			second, _ := tab.Chain(starts[1])
			if err := tab.Set(last, second[0].Start+second[0].Len-1); err != nil {
				t.Fatal(err)
			}
			joined, _ := NewTable(&g, slices.Clone(tab.Bytes()))
			if err := joined.CheckLinks(); !errors.Is(err, ErrCorrupt) {
				if second[0].Len > 1 || len(second) > 1 {
					t.Fatalf("joined chains: %v", err)
				}
			}
			third, _ := tab.Chain(starts[2])
			l3 := third[len(third)-1].Start + third[len(third)-1].Len - 1
			tab.put(l3, tab.nextFreeFrom(2))
			linked, _ := NewTable(&g, slices.Clone(tab.Bytes()))
			if err := linked.CheckLinks(); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("a link to a free cluster: %v", err)
			}
		})
	}
}
