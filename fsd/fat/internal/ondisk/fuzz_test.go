package ondisk

// Fuzzers for every parser of untrusted on-disk bytes (FuzzOwnership, in
// ownership_test.go, for the ownership pass). The seed corpora in
// testdata/fuzz come from mkfs.fat images filled by mtools
// (go test -run 'TestOndiskFuzzSeeds|TestFuzzOwnershipSeeds' -odgenseeds
// ./fsd/fat/internal/ondisk/ rewrites them). Run each with, for example:
//
//	go test -run '^$' -fuzz '^FuzzBootSector$' -fuzztime 60s ./fsd/fat/internal/ondisk/
//
// With Go 1.26 a duration -fuzztime can end in "context deadline exceeded"
// without a crasher (a race in the fuzzing coordinator, golang/go#75804);
// a count such as -fuzztime 2000000x avoids it.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// FuzzBootSector: parsing never panics and fails only with ErrNotFAT;
// whatever parses re-encodes to the same fields and bytes, and its geometry
// is consistent (a FAT of the stated size holds every usable cluster).
func FuzzBootSector(f *testing.F) {
	for _, bs := range []BootSector{odBPB16(), odBPB32()} {
		b := make([]byte, 512)
		bs.Encode(b)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		bs, err := ParseBootSector(b)
		if err != nil {
			if !errors.Is(err, ErrNotFAT) {
				t.Fatalf("error without ErrNotFAT: %v", err)
			}
			return
		}
		fresh := make([]byte, 512)
		if err := bs.Encode(fresh); err != nil {
			t.Fatal(err)
		}
		again, err := ParseBootSector(fresh)
		if err != nil || *again != *bs {
			t.Fatalf("re-encoded sector parses as %+v, %v; was %+v", again, err, bs)
		}
		same := slices.Clone(b[:512])
		bs.Encode(same)
		if !slices.Equal(same[:510], b[:510]) {
			t.Fatalf("Encode over the original changed bytes")
		}
		g, _ := bs.Geometry()
		if g.MaxCluster < 2 || g.MaxCluster > g.ClusterCount+1 {
			t.Fatalf("MaxCluster %d of %d clusters", g.MaxCluster, g.ClusterCount)
		}
		if end := g.DataOffset() + int64(g.ClusterCount)*int64(g.ClusterSize); end > g.VolumeBytes() {
			t.Fatalf("data area ends at %d, volume at %d", end, g.VolumeBytes())
		}
		if g.FATOffset(g.NumFATs) > g.DataOffset() || (g.Type != FAT32 && g.RootDirOffset()+g.RootDirBytes() > g.DataOffset()) {
			t.Fatalf("metadata overlaps data: %+v", g)
		}
		if g.Type == FAT32 && (g.RootCluster < 2 || g.RootCluster > g.MaxCluster) {
			t.Fatalf("root cluster %d", g.RootCluster)
		}
		if g.FSInfoSector >= g.ReservedSectors && g.FSInfoSector != 0 {
			t.Fatalf("FSInfo sector %d", g.FSInfoSector)
		}
		if g.FATBytes() <= 1<<20 {
			tab, err := NewTable(&g, make([]byte, g.FATBytes()))
			if err != nil {
				t.Fatalf("geometry accepted, FAT refused: %v", err)
			}
			if tab.FreeCount() != g.MaxCluster-1 {
				t.Fatalf("free %d of %d", tab.FreeCount(), g.MaxCluster-1)
			}
		}
	})
}

// FuzzDirEntries: decoding arbitrary slots never panics; splitting the
// bytes into blocks anywhere gives the same entries; entries and free runs
// are consistent; every entry re-encodes to itself.
func FuzzDirEntries(f *testing.F) {
	f.Add([]byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, b []byte, split uint16) {
		if len(b) > 1<<16 {
			return
		}
		var whole []DirEntry
		for e := range DecodeDir(b) {
			whole = append(whole, e)
		}
		n := len(b) / DirEntrySize
		at := int(split) % (n + 1) * DirEntrySize
		for _, blocks := range [][][]byte{{b[:at], b[at:]}, odChunks(b, DirEntrySize)} {
			var parts []DirEntry
			var free [][2]int
			s := Scanner{Free: func(f, n int) { free = append(free, [2]int{f, n}) }}
			for _, blk := range blocks {
				for e := range s.Entries(blk) {
					parts = append(parts, e)
				}
			}
			if !slices.Equal(parts, whole) {
				t.Fatalf("blocks give other entries:\n%+v\n%+v", parts, whole)
			}
			used := map[int]bool{}
			for _, e := range parts {
				for i := e.FirstSlot; i <= e.Slot; i++ {
					used[i] = true
				}
			}
			for _, r := range free {
				for i := r[0]; i < r[0]+r[1]; i++ {
					if used[i] {
						t.Fatalf("slot %d both free and used", i)
					}
				}
			}
		}
		last := -1
		for _, e := range whole {
			if e.Slot <= last || e.FirstSlot > e.Slot || e.Slot-e.FirstSlot > maxLFNSlots || e.Slot >= n {
				t.Fatalf("slots %d..%d after %d", e.FirstSlot, e.Slot, last)
			}
			last = e.Slot
			if c := b[e.Slot*DirEntrySize]; c == 0 || c == 0xE5 {
				t.Fatalf("free slot %d yielded", e.Slot)
			}
			if LongNameUnits(e.LongName) > MaxLongNameLen {
				t.Fatalf("long name of %d units", LongNameUnits(e.LongName))
			}
			if (e.LongName != "") != (e.FirstSlot < e.Slot) {
				t.Fatalf("long name %q with slots %d..%d", e.LongName, e.FirstSlot, e.Slot)
			}
			long := e.LongName
			if ValidateLongName(long) != nil || strings.ContainsRune(long, '\uFFFD') {
				long = ""
			}
			enc, err := AppendEntries(nil, long, &e.ShortEntry)
			if err != nil {
				t.Fatal(err)
			}
			var back []DirEntry
			for d := range DecodeDir(enc) {
				back = append(back, d)
			}
			if len(back) != 1 || back[0].ShortEntry != e.ShortEntry || back[0].LongName != long {
				t.Fatalf("re-encoded %+v (%q) decodes as %+v", e.ShortEntry, long, back)
			}
		}
	})
}

func odChunks(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > n {
		out = append(out, b[:n])
		b = b[n:]
	}
	return append(out, b)
}

// FuzzFATChain: chain walking over arbitrary FAT bytes never panics or
// hangs; a chain that walks cleanly has no repeated cluster; allocation and
// freeing keep the free count equal to the zero entries.
func FuzzFATChain(f *testing.F) {
	f.Add([]byte{0xF8, 0xFF, 0xFF, 3, 0, 4, 0, 3, 0}, uint8(16), uint32(2), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, typSel uint8, start uint32, n uint8) {
		typ := []FATType{FAT12, FAT16, FAT32}[typSel%3]
		var entries int
		switch typ {
		case FAT12:
			entries = len(data) * 2 / 3
		case FAT16:
			entries = len(data) / 2
		default:
			entries = len(data) / 4
		}
		limit := map[FATType]int{FAT12: MinClustersFAT16 + 1, FAT16: MinClustersFAT32 + 1, FAT32: 1 << 20}[typ]
		max := min(entries, limit) - 1
		if max < 2 {
			return
		}
		g := Geometry{Type: typ, MaxCluster: uint32(max), BytesPerSector: 512}
		tab, err := NewTable(&g, slices.Clone(data))
		if err != nil {
			t.Fatal(err)
		}
		start %= uint32(max) + 2
		exts, err := tab.Chain(start)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error without ErrCorrupt: %v", err)
		}
		if err == nil {
			if err := tab.NewClusterSet().Claim(exts); err != nil {
				t.Fatalf("clean chain repeats a cluster: %v", err)
			}
			if l, _ := tab.ChainLength(start); uint64(l) != ExtentClusters(exts) {
				t.Fatalf("ChainLength %d, extents %d", l, ExtentClusters(exts))
			}
			freed, err := tab.FreeChain(start)
			if err != nil || uint64(freed) != ExtentClusters(exts) {
				t.Fatalf("FreeChain %d %v", freed, err)
			}
		}
		got, err := tab.Allocate(uint32(n%64)+1, start, 0)
		switch {
		case errors.Is(err, ErrNoSpace):
		case err != nil:
			t.Fatal(err)
		default:
			again, err := tab.Chain(got[0].Start)
			if err != nil || !slices.Equal(again, odMerge(got)) {
				t.Fatalf("allocated %v, chain %v %v", got, again, err)
			}
		}
		var zero uint32
		for c := uint32(2); c <= uint32(max); c++ {
			if v, _ := tab.Get(c); v == 0 {
				zero++
			}
		}
		if zero != tab.FreeCount() {
			t.Fatalf("%d zero entries, free count %d", zero, tab.FreeCount())
		}
	})
}

// odMerge joins adjacent extents, as Chain reports them.
func odMerge(exts []Extent) []Extent {
	var out []Extent
	for _, e := range exts {
		if k := len(out); k > 0 && out[k-1].Start+out[k-1].Len == e.Start {
			out[k-1].Len += e.Len
			continue
		}
		out = append(out, e)
	}
	return out
}

// FuzzShortName: generation never panics and gives a well-formed, unused
// short name; names stored without a long name display as themselves;
// names with one round-trip through the entries; FoldKey matches EqualFold.
func FuzzShortName(f *testing.F) {
	for _, s := range []string{"foo.txt", "Foo.TXT", "hello world.html", "日本語.txt", ".bashrc", "a..b", "x~1", "LONGFI~1.TXT"} {
		f.Add(s)
	}
	taken := map[ShortName]bool{}
	for i := 1; i <= 4; i++ {
		taken[odSN(fmt.Sprintf("LONGFI~%dTXT", i))] = true
	}
	taken[odSN("FOO     TXT")] = true
	f.Fuzz(func(t *testing.T, name string) {
		for _, other := range []string{strings.ToUpper(name), strings.ToLower(name), name + "x"} {
			if strings.EqualFold(name, other) != (FoldKey(name) == FoldKey(other)) {
				t.Fatalf("FoldKey and EqualFold disagree on %q %q", name, other)
			}
		}
		if clean, err := CleanLongName(name); err == nil && ValidateLongName(clean) != nil {
			t.Fatalf("CleanLongName(%q) = %q, invalid", name, clean)
		}
		sn, c, needLFN, err := GenerateShortName(name, func(s ShortName) bool { return taken[s] })
		if err != nil {
			if !errors.Is(err, ErrInvalidName) || ValidateLongName(name) == nil {
				t.Fatalf("%q: %v", name, err)
			}
			return
		}
		if taken[sn] {
			t.Fatalf("%q: %q is taken", name, sn[:])
		}
		for i, part := range [][]byte{sn[:8], sn[8:]} {
			trimmed := strings.TrimRight(string(part), " ")
			if (i == 0 && trimmed == "") || strings.Contains(trimmed, " ") {
				t.Fatalf("%q: malformed %q", name, sn[:])
			}
			for j := 0; j < len(trimmed); j++ {
				if !shortChar(trimmed[j]) {
					t.Fatalf("%q: %q has %q", name, sn[:], trimmed[j])
				}
			}
		}
		if !needLFN {
			if sn.Format(nil, c) != name {
				t.Fatalf("%q stored as %q case %#x without a long name", name, sn[:], c)
			}
			return
		}
		e := ShortEntry{Name: sn}
		b, err := AppendEntries(nil, name, &e)
		if err != nil {
			t.Fatal(err)
		}
		for d := range DecodeDir(b) {
			if d.LongName != name || d.Name != sn {
				t.Fatalf("%q decodes as %q %q", name, d.LongName, d.Name[:])
			}
		}
	})
}
