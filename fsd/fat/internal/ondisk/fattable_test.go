package ondisk

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// odTable makes an empty table for clusters 2..max.
func odTable(t testing.TB, typ FATType, max uint32) *Table {
	t.Helper()
	g := Geometry{Type: typ, MaxCluster: max, BytesPerSector: 512}
	var n uint64
	switch typ {
	case FAT12:
		n = uint64(max+1) * 3 / 2
	case FAT16:
		n = uint64(max+1) * 2
	default:
		n = uint64(max+1) * 4
	}
	n = (n + 1 + 511) / 512 * 512
	tab, err := NewTable(&g, make([]byte, n))
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// FAT12 packs two entries in three bytes: the even cluster's entry in the
// low 12 bits, the odd one's in the high 12.
func TestFAT12Packing(t *testing.T) {
	tab := odTable(t, FAT12, 4084)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(tab.Set(2, 0xABC))
	must(tab.Set(3, 0x123))
	if got := tab.Bytes()[3:6]; !slices.Equal(got, []byte{0xBC, 0x3A, 0x12}) {
		t.Errorf("bytes % x, want bc 3a 12", got)
	}
	must(tab.Set(3, EndOfChain))
	must(tab.Set(2, 0))
	if got := tab.Bytes()[3:6]; !slices.Equal(got, []byte{0x00, 0xF0, 0xFF}) {
		t.Errorf("bytes % x, want 00 f0 ff", got)
	}
	if v, _ := tab.Get(3); !tab.IsEOC(v) || v != 0xFFF {
		t.Errorf("EOC read as %#x", v)
	}
	must(tab.Set(5, BadCluster))
	if v, _ := tab.Get(5); !tab.IsBad(v) {
		t.Errorf("bad cluster read as %#x", v)
	}
}

// Random set/get at every cluster against a model, for each type: writes
// never disturb a neighbour (FAT12 nibbles), FAT32 keeps the top 4 bits.
func TestFATSetGetRoundTrip(t *testing.T) {
	for _, typ := range []FATType{FAT12, FAT16, FAT32} {
		max := map[FATType]uint32{FAT12: 4084, FAT16: 65524, FAT32: 100_003}[typ]
		tab := odTable(t, typ, max)
		if typ == FAT32 {
			// Reserved top bits set everywhere must survive every write.
			for i := 3; i < len(tab.Bytes()); i += 4 {
				tab.Bytes()[i] = 0xA0
			}
		}
		r := rand.New(rand.NewPCG(1, uint64(typ)))
		model := make([]uint32, max+1)
		free := max - 1
		for i := 0; i < 200_000; i++ {
			c := 2 + r.Uint32N(max-1)
			v := r.Uint32N(max-1) + 2
			switch r.UintN(4) {
			case 0:
				v = 0
			case 1:
				v = EndOfChain
			}
			if err := tab.Set(c, v); err != nil {
				t.Fatal(err)
			}
			if v == EndOfChain {
				v = map[FATType]uint32{FAT12: 0xFFF, FAT16: 0xFFFF, FAT32: 0x0FFFFFFF}[typ]
			}
			if (model[c] == 0) != (v == 0) {
				if v == 0 {
					free++
				} else {
					free--
				}
			}
			model[c] = v
		}
		for c := uint32(2); c <= max; c++ {
			if got, _ := tab.Get(c); got != model[c] {
				t.Fatalf("%v cluster %d: %#x, want %#x", typ, c, got, model[c])
			}
		}
		if tab.FreeCount() != free {
			t.Errorf("%v free count %d, want %d", typ, tab.FreeCount(), free)
		}
		if typ == FAT32 {
			for c := uint32(2); c <= max; c++ {
				if tab.Bytes()[c*4+3]&0xF0 != 0xA0 {
					t.Fatalf("top bits of cluster %d lost", c)
				}
			}
		}
		// A fresh table over the same bytes counts the same.
		g := Geometry{Type: typ, MaxCluster: max, BytesPerSector: 512}
		again, err := NewTable(&g, tab.Bytes())
		if err != nil || again.FreeCount() != free {
			t.Errorf("%v recount %d, %v", typ, again.FreeCount(), err)
		}
	}
}

func TestFATSetRefuses(t *testing.T) {
	tab := odTable(t, FAT16, 1000)
	for _, c := range [][2]uint32{{0, 5}, {1, 5}, {1001, 5}, {5, 1}, {5, 1001}, {5, 0xFFF0}} {
		if err := tab.Set(c[0], c[1]); !errors.Is(err, ErrRange) {
			t.Errorf("Set(%d, %#x) = %v", c[0], c[1], err)
		}
	}
	if _, err := tab.Get(1001); !errors.Is(err, ErrRange) {
		t.Error("Get beyond max")
	}
	g := Geometry{Type: FAT32, MaxCluster: 1000, BytesPerSector: 512}
	if _, err := NewTable(&g, make([]byte, 4000)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("short FAT: %v", err)
	}
}

// Corrupt chains are errors wrapping ErrCorrupt, found quickly.
func TestChainCorrupt(t *testing.T) {
	for _, typ := range []FATType{FAT12, FAT16, FAT32} {
		for _, c := range []struct {
			name  string
			links [][2]uint32 // cluster, value (raw)
			start uint32
			msg   string
		}{
			{"self loop", [][2]uint32{{10, 10}}, 10, "cycle"},
			{"cycle", [][2]uint32{{10, 11}, {11, 12}, {12, 10}}, 10, "cycle"},
			{"tail into cycle", [][2]uint32{{5, 6}, {6, 7}, {7, 20}, {20, 21}, {21, 22}, {22, 20}}, 5, "cycle"},
			{"out of range", [][2]uint32{{10, 11}, {11, 3000}}, 10, "outside"},
			{"link to 1", [][2]uint32{{10, 1}}, 10, "outside"},
			{"free in chain", [][2]uint32{{10, 11}}, 10, "free"},
			{"start free", nil, 10, "free"},
			{"bad cluster", [][2]uint32{{10, BadCluster}}, 10, "bad"},
			{"start out of range", nil, 4000, "outside"},
			{"start 1", nil, 1, "outside"},
		} {
			tab := odTable(t, typ, 2000)
			for _, l := range c.links {
				if (l[1] == 1 || l[1] > 2000) && l[1] != BadCluster {
					tab.put(l[0], l[1]) // Set refuses out-of-range values
					continue
				}
				if err := tab.Set(l[0], l[1]); err != nil {
					t.Fatal(err)
				}
			}
			_, err := tab.Chain(c.start)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("%v %s: %v, want ErrCorrupt mentioning %q", typ, c.name, err, c.msg)
			}
			if _, err := tab.FreeChain(c.start); err == nil {
				t.Errorf("%v %s: FreeChain accepted a corrupt chain", typ, c.name)
			}
		}
	}
}

// A cycle through a million clusters (a 4 GiB FAT32 volume's worth) is
// found in bounded time.
func TestChainLongCycle(t *testing.T) {
	const max = 1 << 20
	tab := odTable(t, FAT32, max)
	for c := uint32(2); c < max; c++ {
		tab.put(c, c+1)
	}
	tab.put(max, 1000)
	exts, err := tab.Chain(2)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v", err)
	}
	// The work is bounded by the clusters visited, not by a clock.
	if n := ExtentClusters(exts); n > 4*max {
		t.Errorf("visited %d clusters", n)
	}
}

func TestChainExtents(t *testing.T) {
	tab := odTable(t, FAT16, 100)
	// 5,6,7 -> 20 -> 21 -> 9 -> EOC
	for _, l := range [][2]uint32{{5, 6}, {6, 7}, {7, 20}, {20, 21}, {21, 9}, {9, EndOfChain}} {
		if err := tab.Set(l[0], l[1]); err != nil {
			t.Fatal(err)
		}
	}
	exts, err := tab.Chain(5)
	want := []Extent{{5, 3}, {20, 2}, {9, 1}}
	if err != nil || !slices.Equal(exts, want) {
		t.Fatalf("Chain = %v %v", exts, err)
	}
	if n, err := tab.ChainLength(5); n != 6 || err != nil {
		t.Errorf("ChainLength %d %v", n, err)
	}
	if exts, err := tab.Chain(0); exts != nil || err != nil {
		t.Errorf("empty chain %v %v", exts, err)
	}
	for c, want := range map[uint32]uint32{5: 6, 7: 20, 9: 0} {
		if got, err := tab.Next(c); got != want || err != nil {
			t.Errorf("Next(%d) = %d %v", c, got, err)
		}
	}
	if _, err := tab.Next(50); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Next of a free cluster: %v", err)
	}
}

func TestAllocate(t *testing.T) {
	tab := odTable(t, FAT32, 1000) // clusters 2..1000
	// Fresh volume: one run from the hint.
	exts, err := tab.Allocate(10, 0, 0)
	if err != nil || !slices.Equal(exts, []Extent{{2, 10}}) {
		t.Fatalf("first allocation %v %v", exts, err)
	}
	if tab.NextFree() != 12 || tab.FreeCount() != 999-10 {
		t.Errorf("next %d free %d", tab.NextFree(), tab.FreeCount())
	}
	// Growing in place: hint = last + 1, linked from prev.
	more, err := tab.Allocate(5, 12, 11)
	if err != nil || !slices.Equal(more, []Extent{{12, 5}}) {
		t.Fatalf("extension %v %v", more, err)
	}
	if exts, _ := tab.Chain(2); !slices.Equal(exts, []Extent{{2, 15}}) {
		t.Errorf("chain after growing: %v", exts)
	}
	// Holes: 20..24 used, 25..29 free, 30..39 used, 40.. free.
	if _, err := tab.Allocate(25, 17, 0); err != nil { // 17..41
		t.Fatal(err)
	}
	for c := uint32(25); c < 30; c++ {
		tab.Set(c, 0)
	}
	for c := uint32(40); c <= 41; c++ {
		tab.Set(c, 0)
	}
	// 8 clusters from 25: the 5-cluster hole at the hint first, then the
	// first run of >= 3 after it.
	got, err := tab.Allocate(8, 25, 0)
	if err != nil || !slices.Equal(got, []Extent{{25, 5}, {40, 3}}) {
		t.Errorf("hint run then first fit: %v %v", got, err)
	}
	// Contiguous preferred over the first small hole: free 3 clusters at
	// 50..52 inside used space, ask 20 from 45.
	if _, err := tab.Allocate(20, 43, 0); err != nil { // 43..62
		t.Fatal(err)
	}
	for c := uint32(50); c <= 52; c++ {
		tab.Set(c, 0)
	}
	got, err = tab.Allocate(20, 45, 0)
	if err != nil || !slices.Equal(got, []Extent{{63, 20}}) {
		t.Errorf("run preferred over hole: %v %v", got, err)
	}
	// Wrap around: hint near the end.
	got, err = tab.Allocate(3, 999, 0)
	if err != nil || !slices.Equal(got, []Extent{{999, 2}, {50, 1}}) {
		t.Errorf("at the end: %v %v", got, err)
	}
	if tab.NextFree() != 51 {
		t.Errorf("next free %d", tab.NextFree())
	}
	// Too much: ErrNoSpace and nothing changed.
	before := slices.Clone(tab.Bytes())
	free := tab.FreeCount()
	if _, err := tab.Allocate(free+1, 0, 0); !errors.Is(err, ErrNoSpace) {
		t.Errorf("overallocation: %v", err)
	}
	if !slices.Equal(before, tab.Bytes()) || tab.FreeCount() != free {
		t.Error("failed allocation changed the FAT")
	}
	// Everything else, fragmented: exactly the free clusters.
	all, err := tab.Allocate(free, 2, 0)
	if err != nil || ExtentClusters(all) != uint64(free) || tab.FreeCount() != 0 {
		t.Errorf("all: %v %v free %d", len(all), err, tab.FreeCount())
	}
	if n, err := tab.ChainLength(all[0].Start); n != free || err != nil {
		t.Errorf("chain of the rest: %d %v", n, err)
	}
}

// Random allocate/truncate/free against the FAT itself: chains stay
// disjoint and well formed, the free count exact.
func TestAllocateRandom(t *testing.T) {
	for _, typ := range []FATType{FAT12, FAT16, FAT32} {
		tab := odTable(t, typ, 3000)
		r := rand.New(rand.NewPCG(7, uint64(typ)))
		var files []uint32
		for i := 0; i < 3000; i++ {
			switch op := r.UintN(4); {
			case op == 0 && len(files) > 0:
				k := r.IntN(len(files))
				if _, err := tab.FreeChain(files[k]); err != nil {
					t.Fatal(err)
				}
				files = slices.Delete(files, k, k+1)
			case op == 1 && len(files) > 0:
				k := r.IntN(len(files))
				n, _ := tab.ChainLength(files[k])
				keep := r.Uint32N(n + 1)
				ns, freed, err := tab.Truncate(files[k], keep)
				if err != nil || freed != n-keep {
					t.Fatalf("truncate %d of %d: freed %d %v", keep, n, freed, err)
				}
				if keep == 0 {
					files = slices.Delete(files, k, k+1)
				} else if got, _ := tab.ChainLength(ns); got != keep {
					t.Fatalf("kept %d, want %d", got, keep)
				}
			case op == 2 && len(files) > 0:
				k := r.IntN(len(files))
				exts, _ := tab.Chain(files[k])
				last := exts[len(exts)-1]
				lc := last.Start + last.Len - 1
				if _, err := tab.Allocate(1+r.Uint32N(20), lc+1, lc); err != nil && !errors.Is(err, ErrNoSpace) {
					t.Fatal(err)
				}
			default:
				exts, err := tab.Allocate(1+r.Uint32N(40), r.Uint32N(3100), 0)
				if errors.Is(err, ErrNoSpace) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				files = append(files, exts[0].Start)
			}
		}
		claims := tab.NewClusterSet()
		var used uint32
		for _, f := range files {
			exts, err := tab.Chain(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := claims.Claim(exts); err != nil {
				t.Fatalf("%v: %v", typ, err)
			}
			used += uint32(ExtentClusters(exts))
		}
		if tab.FreeCount() != 2999-used {
			t.Errorf("%v: free %d, used %d of 2999", typ, tab.FreeCount(), used)
		}
		var zero uint32
		for c := uint32(2); c <= 3000; c++ {
			if v, _ := tab.Get(c); v == 0 {
				zero++
			}
		}
		if zero != tab.FreeCount() {
			t.Errorf("%v: %d zero entries, free count %d", typ, zero, tab.FreeCount())
		}
	}
}

func TestClusterSetCrossLink(t *testing.T) {
	tab := odTable(t, FAT16, 100)
	s := tab.NewClusterSet()
	if err := s.Claim([]Extent{{10, 5}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Claim([]Extent{{20, 1}, {14, 2}}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "cluster 14") {
		t.Errorf("cross link: %v", err)
	}
	if err := s.Claim([]Extent{{100, 2}}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("beyond max: %v", err)
	}
}

func TestDirtySectors(t *testing.T) {
	tab := odTable(t, FAT12, 4000) // 6000 bytes: 12 sectors
	var runs [][2]uint32
	collect := func() {
		runs = nil
		tab.DirtySectors(func(f, n uint32) { runs = append(runs, [2]uint32{f, n}) })
	}
	collect()
	if runs != nil {
		t.Fatalf("fresh table dirty: %v", runs)
	}
	tab.Set(341, 5) // bytes 511-512: straddles sectors 0 and 1
	tab.Set(2000, 5)
	collect()
	if !slices.Equal(runs, [][2]uint32{{0, 2}, {5, 1}}) {
		t.Errorf("dirty runs %v", runs)
	}
	tab.ClearDirty()
	tab.SetVolumeClean(false) // no-op on FAT12
	collect()
	if runs != nil {
		t.Errorf("after clear: %v", runs)
	}
	tab.MarkAllDirty()
	collect()
	if !slices.Equal(runs, [][2]uint32{{0, 12}}) {
		t.Errorf("all dirty: %v", runs)
	}
	// Clearing a range forgets those sectors alone; sectors past the FAT
	// are ignored.
	tab.ClearDirtySectors(0, 1)
	tab.ClearDirtySectors(4, 3)
	tab.ClearDirtySectors(11, 100)
	collect()
	if !slices.Equal(runs, [][2]uint32{{1, 3}, {7, 4}}) {
		t.Errorf("after clearing sectors 0, 4-6 and 11-: %v", runs)
	}
}

func TestVolumeCleanBit(t *testing.T) {
	for _, c := range []struct {
		typ  FATType
		off  int
		want []byte // FAT[1] after SetReservedEntries and clearing the clean bit
	}{
		{FAT16, 2, []byte{0xFF, 0x7F}},
		{FAT32, 4, []byte{0xFF, 0xFF, 0xFF, 0x07}},
	} {
		tab := odTable(t, c.typ, 70000)
		tab.SetReservedEntries(0xF8)
		if !tab.VolumeClean() {
			t.Errorf("%v: formatted volume not clean", c.typ)
		}
		tab.SetVolumeClean(false)
		if got := tab.Bytes()[c.off : c.off+len(c.want)]; !slices.Equal(got, c.want) || tab.VolumeClean() {
			t.Errorf("%v: FAT[1] % x", c.typ, got)
		}
		tab.SetVolumeClean(true)
		if !tab.VolumeClean() {
			t.Errorf("%v: not clean again", c.typ)
		}
		if c.typ == FAT32 && binary.LittleEndian.Uint32(tab.Bytes()) != 0x0FFFFFF8 {
			t.Errorf("FAT[0] = %#x", binary.LittleEndian.Uint32(tab.Bytes()))
		}
	}
}

// BenchmarkAllocateChain: allocation and chain walking on a 4 GiB FAT32
// volume (1M clusters of 4 KiB), half full in small fragments.
func BenchmarkAllocateChain(b *testing.B) {
	const max = 1 << 20
	tab := odTable(b, FAT32, max)
	for c := uint32(2); c < max; c += 4 {
		tab.Set(c, EndOfChain)
		tab.Set(c+1, EndOfChain)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		exts, err := tab.Allocate(256, 0, 0) // 1 MiB
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tab.FreeChain(exts[0].Start); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewTable(b *testing.B) {
	const max = 1 << 20
	g := Geometry{Type: FAT32, MaxCluster: max, BytesPerSector: 512}
	data := make([]byte, (max+1)*4)
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		if _, err := NewTable(&g, data); err != nil {
			b.Fatal(err)
		}
	}
}
