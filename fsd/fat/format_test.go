package fat

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk/fsd/fat/internal/ondisk"
)

// fmWrite is one WriteAt call Format made.
type fmWrite struct {
	off  int64
	data []byte
}

// fmMem is a sparse in-memory volume that records Format's writes: reads
// of bytes never written give zeros, like a sparse image.
type fmMem struct {
	size   int64
	writes []fmWrite
	pages  map[int64][]byte // 4 KiB pages
}

func newFmMem(size int64) *fmMem { return &fmMem{size: size, pages: map[int64][]byte{}} }

func (m *fmMem) WriteAt(b []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(b)) > m.size {
		return 0, fmt.Errorf("write of %d bytes at %d beyond the %d-byte volume", len(b), off, m.size)
	}
	m.writes = append(m.writes, fmWrite{off, bytes.Clone(b)})
	for i := 0; i < len(b); {
		p, o := (off+int64(i))>>12, int((off+int64(i))&4095)
		pg := m.pages[p]
		if pg == nil {
			pg = make([]byte, 4096)
			m.pages[p] = pg
		}
		i += copy(pg[o:], b[i:])
	}
	return len(b), nil
}

func (m *fmMem) ReadAt(b []byte, off int64) (int, error) {
	if off+int64(len(b)) > m.size {
		return 0, io.EOF
	}
	for i := 0; i < len(b); {
		p, o := (off+int64(i))>>12, int((off+int64(i))&4095)
		n := min(4096-o, len(b)-i)
		if pg := m.pages[p]; pg != nil {
			copy(b[i:i+n], pg[o:])
		} else {
			clear(b[i : i+n])
		}
		i += n
	}
	return len(b), nil
}

func (m *fmMem) at(off, n int64) []byte {
	b := make([]byte, n)
	if _, err := m.ReadAt(b, off); err != nil {
		panic(err)
	}
	return b
}

// fmFixed are options that make Format deterministic.
func fmFixed(o FormatOptions) FormatOptions {
	o.Time = fmInvariantTime
	o.VolumeID, o.HasVolumeID = 0x1234ABCD, true
	return o
}

// fmLayouts are the layouts the self-checks below format in memory.
var fmLayouts = []struct {
	name string
	size int64
	o    FormatOptions
	typ  ondisk.FATType
}{
	{"fmtFloppy-1440", 1440 << 10, FormatOptions{Label: "FLOPPY"}, ondisk.FAT12},
	{"fat12-4m", 4 << 20, FormatOptions{}, ondisk.FAT12},
	{"fat16-64m", 64 << 20, FormatOptions{Label: "Sixteen"}, ondisk.FAT16},
	{"fat16-64m-1fat", 64 << 20, FormatOptions{NumFATs: 1, ClusterSize: 8192}, ondisk.FAT16},
	{"fat16-4k-sectors", 256 << 20, FormatOptions{SectorSize: 4096, FATType: 16}, ondisk.FAT16},
	{"fat32-1g", 1 << 30, FormatOptions{Label: "BIG ONE"}, ondisk.FAT32},
	{"fat32-300m-512", 300 << 20, FormatOptions{FATType: 32, ClusterSize: 512}, ondisk.FAT32},
	{"fat32-4k-sectors", 2 << 30, FormatOptions{SectorSize: 4096, FATType: 32, Label: "X"}, ondisk.FAT32},
	{"fat32-no-backup", 1 << 30, FormatOptions{ReservedSectors: 2}, ondisk.FAT32},
	{"fat32-1fat-5res", 1 << 30, FormatOptions{NumFATs: 1, ReservedSectors: 5}, ondisk.FAT32},
}

// TestFormatReadBack formats each layout in memory and reads it back with
// the on-disk layer: the boot sector validates to the planned geometry,
// the FAT copies are equal and hold the reserved entries (and the FAT32
// root directory's end of chain), the free count matches FSInfo and the
// result, the root directory holds the label entry and nothing else.
func TestFormatReadBack(t *testing.T) {
	for _, c := range fmLayouts {
		t.Run(c.name, func(t *testing.T) {
			m := newFmMem(c.size)
			res, err := Format(m, c.size, fmFixed(c.o))
			if err != nil {
				t.Fatal(err)
			}
			g := res.Geometry
			if g.Type != c.typ {
				t.Fatalf("type %v, want %v", g.Type, c.typ)
			}
			bs, err := ondisk.ParseBootSector(m.at(0, 512))
			if err != nil {
				t.Fatal(err)
			}
			if *bs != res.BootSector {
				t.Errorf("boot sector on disk %+v\nresult %+v", *bs, res.BootSector)
			}
			if g2, _ := bs.Geometry(); g2 != g {
				t.Errorf("geometry on disk %+v, result %+v", g2, g)
			}
			if g.VolumeBytes() > c.size || g.VolumeBytes() <= c.size-int64(bs.SectorsPerTrack)*int64(g.BytesPerSector) {
				t.Errorf("volume of %d bytes uses %d", c.size, g.VolumeBytes())
			}
			boot := m.at(0, int64(g.BytesPerSector))
			if boot[510] != 0x55 || boot[511] != 0xAA {
				t.Errorf("signature % x", boot[510:512])
			}
			if g.BytesPerSector > 512 && !fmZero(boot[512:]) {
				t.Errorf("bytes after the first 512 of a %d-byte boot sector are not zero", g.BytesPerSector)
			}
			fat0 := m.at(g.FATOffset(0), g.FATBytes())
			for i := uint32(1); i < g.NumFATs; i++ {
				if !bytes.Equal(fat0, m.at(g.FATOffset(i), g.FATBytes())) {
					t.Errorf("FAT copy %d differs from FAT 0", i)
				}
			}
			tab, err := ondisk.NewTable(&g, fat0)
			if err != nil {
				t.Fatal(err)
			}
			if tab.FreeCount() != res.FreeClusters {
				t.Errorf("FAT has %d free clusters, result says %d", tab.FreeCount(), res.FreeClusters)
			}
			if !tab.VolumeClean() {
				t.Error("FAT[1] clean bit not set")
			}
			wantFAT := map[ondisk.FATType]string{
				ondisk.FAT12: fmt.Sprintf("%02x ff ff", bs.Media),
				ondisk.FAT16: fmt.Sprintf("%02x ff ff ff", bs.Media),
				ondisk.FAT32: fmt.Sprintf("%02x ff ff 0f ff ff ff 0f ff ff ff 0f", bs.Media),
			}[g.Type]
			if got := fmt.Sprintf("% x", fat0[:len(wantFAT)/3+1]); got != wantFAT {
				t.Errorf("FAT starts % x, want %s", got, wantFAT)
			}
			var rootBytes []byte
			if g.Type == ondisk.FAT32 {
				exts, err := tab.Chain(g.RootCluster)
				if err != nil || len(exts) != 1 || exts[0] != (ondisk.Extent{Start: 2, Len: 1}) {
					t.Errorf("root chain %v %v, want cluster 2 alone", exts, err)
				}
				if res.FreeClusters != g.ClusterCount-1 {
					t.Errorf("free %d of %d clusters", res.FreeClusters, g.ClusterCount)
				}
				fi, err := ondisk.ParseFSInfo(m.at(int64(g.FSInfoSector)*int64(g.BytesPerSector), 512))
				if err != nil {
					t.Fatal(err)
				}
				if fi.FreeCount != res.FreeClusters || fi.NextFree != 2 {
					t.Errorf("FSInfo %+v, want free %d next 2", fi, res.FreeClusters)
				}
				if bk := g.BackupBootSector; bk != 0 {
					if !bytes.Equal(m.at(int64(bk)*int64(g.BytesPerSector), int64(g.BytesPerSector)), boot) {
						t.Errorf("backup boot sector %d differs", bk)
					}
				} else if c.o.ReservedSectors != 2 {
					t.Error("no backup boot sector")
				}
				rootBytes = m.at(g.ClusterOffset(g.RootCluster), int64(g.ClusterSize))
			} else {
				if res.FreeClusters != g.ClusterCount {
					t.Errorf("free %d of %d clusters", res.FreeClusters, g.ClusterCount)
				}
				rootBytes = m.at(g.RootDirOffset(), g.RootDirBytes())
			}
			var entries []ondisk.DirEntry
			for e := range ondisk.DecodeDir(rootBytes) {
				entries = append(entries, e)
			}
			if c.o.Label == "" {
				if len(entries) != 0 || !fmZero(rootBytes) {
					t.Errorf("root directory not empty: %v", entries)
				}
				if string(bs.VolumeLabel[:]) != "NO NAME    " {
					t.Errorf("boot sector label %q", bs.VolumeLabel)
				}
			} else {
				if len(entries) != 1 || !entries[0].IsVolumeLabel() || entries[0].Slot != 0 {
					t.Fatalf("root directory %+v, want the label entry alone", entries)
				}
				e := entries[0]
				if got := ondisk.FormatVolumeLabel([11]byte(e.Name), nil); got != c.o.Label || res.Label != c.o.Label {
					t.Errorf("label entry %q, result %q, want %q", got, res.Label, c.o.Label)
				}
				if e.Name != ondisk.ShortName(bs.VolumeLabel) {
					t.Errorf("label entry %q, boot sector %q", e.Name, bs.VolumeLabel)
				}
				if got := e.Modified(time.UTC); !got.Equal(fmInvariantTime.Truncate(2 * time.Second)) {
					t.Errorf("label time %v", got)
				}
				if !fmZero(rootBytes[ondisk.DirEntrySize:]) {
					t.Error("root directory has bytes after the label entry")
				}
			}
		})
	}
}

func fmZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// TestFormatWrites checks how Format writes: sector-aligned, at most 1 MiB
// at a time, exactly the metadata area once (reserved sectors, FATs, root
// directory or FAT32 root cluster; no data cluster), the boot sector last.
func TestFormatWrites(t *testing.T) {
	for _, c := range fmLayouts {
		t.Run(c.name, func(t *testing.T) {
			m := newFmMem(c.size)
			var progress []int64
			o := fmFixed(c.o)
			o.Progress = func(done, total int64) { progress = append(progress, done, total) }
			res, err := Format(m, c.size, o)
			if err != nil {
				t.Fatal(err)
			}
			g := res.Geometry
			bps := int64(g.BytesPerSector)
			end := g.DataOffset()
			if g.Type == ondisk.FAT32 {
				end = g.ClusterOffset(g.RootCluster) + int64(g.ClusterSize)
			}
			covered := int64(0)
			for i, w := range m.writes {
				if w.off%bps != 0 || int64(len(w.data))%bps != 0 || len(w.data) == 0 {
					t.Errorf("write %d: %d bytes at %d, not whole %d-byte sectors", i, len(w.data), w.off, bps)
				}
				if len(w.data) > fmtChunk {
					t.Errorf("write %d: %d bytes, more than %d", i, len(w.data), fmtChunk)
				}
				if w.off+int64(len(w.data)) > end {
					t.Errorf("write %d: %d bytes at %d reaches past the metadata (%d)", i, len(w.data), w.off, end)
				}
				if i < len(m.writes)-1 {
					if w.off != covered {
						t.Errorf("write %d at %d, want %d (one pass in order)", i, w.off, covered)
					}
					covered += int64(len(w.data))
				}
			}
			if covered != end {
				t.Errorf("wrote [0, %d), metadata is [0, %d)", covered, end)
			}
			last := m.writes[len(m.writes)-1]
			if last.off != 0 || int64(len(last.data)) != bps {
				t.Errorf("last write %d bytes at %d, want the boot sector", len(last.data), last.off)
			}
			if !fmZero(m.writes[0].data[:bps]) {
				t.Error("the first pass writes the boot sector; it must stay zero until the end")
			}
			if res.Written != end+bps {
				t.Errorf("Written %d, want %d", res.Written, end+bps)
			}
			if n := len(progress); n < 2 || progress[n-2] != progress[n-1] || progress[n-1] != res.Written {
				t.Errorf("progress ends %v, want done = total = %d", progress[max(0, n-2):], res.Written)
			}
		})
	}
}

// TestFormatDeterministic formats twice with the same options, volume ID and
// time: the writes are byte-identical. Without a volume ID, the ID comes
// from the time.
func TestFormatDeterministic(t *testing.T) {
	for _, c := range fmLayouts {
		t.Run(c.name, func(t *testing.T) {
			a, b := newFmMem(c.size), newFmMem(c.size)
			if _, err := Format(a, c.size, fmFixed(c.o)); err != nil {
				t.Fatal(err)
			}
			if _, err := Format(b, c.size, fmFixed(c.o)); err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(a.writes, b.writes, func(x, y fmWrite) bool { return x.off == y.off && bytes.Equal(x.data, y.data) }) {
				t.Fatal("two formats with the same options differ")
			}
		})
	}
	o := FormatOptions{Time: fmInvariantTime}
	r1, err := Format(newFmMem(64<<20), 64<<20, o)
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := Format(newFmMem(64<<20), 64<<20, o)
	o.Time = o.Time.Add(10 * time.Millisecond)
	r3, _ := Format(newFmMem(64<<20), 64<<20, o)
	if r1.VolumeID != r2.VolumeID || r1.VolumeID == r3.VolumeID {
		t.Errorf("volume IDs %08x %08x (same time) %08x (10 ms later)", r1.VolumeID, r2.VolumeID, r3.VolumeID)
	}
	// DOS: hi = 0x091A (09:26) + 2015 = 0x10F9, lo = 0x030E (March 14) + 0x3500 (53 s, 0 cs) = 0x380E.
	if r1.VolumeID != 0x10F9380E {
		t.Errorf("volume ID %08x from %v, want 10F9380E", r1.VolumeID, fmInvariantTime)
	}
	// Zero time: now.
	before := time.Now()
	r4, err := Format(newFmMem(64<<20), 64<<20, FormatOptions{Label: "NOW"})
	if err != nil {
		t.Fatal(err)
	}
	if r4.VolumeID == 0 || time.Since(before) > time.Minute {
		t.Errorf("volume ID %08x", r4.VolumeID)
	}
}

// TestFormatLabels checks label handling: case kept (as mkfs.fat), "NO NAME"
// is no label, code page encoding, and refusals.
func TestFormatLabels(t *testing.T) {
	cases := []struct {
		label string
		cp    *ondisk.CodePage
		want  string // stored 11 bytes, "" for none (boot sector "NO NAME")
		err   string
	}{
		{"", nil, "", ""},
		{"NO NAME", nil, "", ""},
		{"NO NAME    ", nil, "", ""},
		{"hello", nil, "hello      ", ""},
		{"Hello World", nil, "Hello World", ""},
		{"DATA-2024_1", nil, "DATA-2024_1", ""},
		{"ÄÖÜ", ondisk.CodePage850, "\x8e\x99\x9a        ", ""},
		{"é", nil, "\x82          ", ""},
		{"twelve chars", nil, "", "longer than 11 bytes"},
		{" lead", nil, "", "starts with a space"},
		{"a*b", nil, "", "contains '*'"},
		{"a.b", nil, "", "contains '.'"},
		{"tab\there", nil, "", "contains '\\t'"},
		{"日本", nil, "", "not in code page 437"},
	}
	for _, c := range cases {
		m := newFmMem(1440 << 10)
		o := fmFixed(FormatOptions{Label: c.label, CodePage: c.cp})
		res, err := Format(m, 1440<<10, o)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ondisk.ErrInvalidName) || !errors.Is(err, ErrFormatOption) {
				t.Errorf("%q: error %v, want one containing %q wrapping ErrInvalidName and ErrFormatOption", c.label, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.label, err)
			continue
		}
		bs := res.BootSector
		root := m.at(res.Geometry.RootDirOffset(), 32)
		if c.want == "" {
			if string(bs.VolumeLabel[:]) != "NO NAME    " || !fmZero(root) || res.Label != "" {
				t.Errorf("%q: boot sector %q, root entry % x, result %q; want NO NAME and no entry", c.label, bs.VolumeLabel, root[:11], res.Label)
			}
			continue
		}
		if string(bs.VolumeLabel[:]) != c.want || string(root[:11]) != c.want || root[11] != byte(ondisk.AttrVolumeID) {
			t.Errorf("%q: boot sector %q, root entry %q attr %#x, want %q", c.label, bs.VolumeLabel, root[:11], root[11], c.want)
		}
	}
}

// TestFormatErrors lists requests Format must refuse, with the kind of error
// and what the message must say.
func TestFormatErrors(t *testing.T) {
	cases := []struct {
		size int64
		o    FormatOptions
		kind error
		msg  string
	}{
		{16 << 20, FormatOptions{FATType: 32}, ErrVolumeTooSmall,
			"volume of 16 MiB is too small for FAT32 with 512-byte clusters: it would have 32232 clusters, FAT32 needs at least 65525"},
		{1 << 30, FormatOptions{FATType: 12}, ErrVolumeTooLarge,
			"volume of 1 GiB is too large for FAT12 even with 64 KiB clusters: it would have 16379 clusters, FAT12 allows at most 4084"},
		{8 << 30, FormatOptions{FATType: 16}, ErrVolumeTooLarge,
			"volume of 8 GiB is too large for FAT16 even with 64 KiB clusters"},
		{4 << 20, FormatOptions{FATType: 16}, ErrVolumeTooSmall,
			"volume of 4 MiB is too small for FAT16 with 2 KiB clusters: it would have 2035 clusters, FAT16 needs at least 4085; 512-byte clusters would do"},
		{1 << 20, FormatOptions{FATType: 16}, ErrVolumeTooSmall, "FAT16 needs at least 4085"},
		{600 << 20, FormatOptions{ClusterSize: 32 << 10}, ErrVolumeTooSmall,
			"too small for FAT32 with 32 KiB clusters: it would have 19192 clusters, FAT32 needs at least 65525; 8 KiB clusters would do"},
		{100 << 20, FormatOptions{ClusterSize: 512}, ErrVolumeTooLarge,
			"volume of 100 MiB is too large for FAT16 with 512-byte clusters: it would have 203179 clusters, FAT16 allows at most 65524; 2 KiB clusters would do"},
		{4 << 20, FormatOptions{FATType: 12, ClusterSize: 512}, ErrVolumeTooLarge, "1 KiB clusters would do"},
		{16 << 10, FormatOptions{}, ErrVolumeTooSmall, "volume of 16 KiB is too small for FAT12: the metadata (35 sectors) leaves no room"},
		{0, FormatOptions{}, ErrVolumeTooSmall, "volume of 0 bytes is too small"},
		{64 << 20, FormatOptions{SectorSize: 8192}, ErrFormatOption, "sector size 8192: want 512, 1024, 2048 or 4096"},
		{64 << 20, FormatOptions{SectorSize: 600}, ErrFormatOption, "sector size 600"},
		{64 << 20, FormatOptions{ClusterSize: 3000}, ErrFormatOption, "cluster size 3000 is not a power of two"},
		{64 << 20, FormatOptions{ClusterSize: 2048, SectorSize: 4096}, ErrFormatOption, "cluster size 2048 is smaller than the 4096-byte sector"},
		{64 << 20, FormatOptions{ClusterSize: 128 << 10}, ErrFormatOption, "cluster size 128 KiB is larger than 64 KiB"},
		{64 << 20, FormatOptions{FATType: 24}, ErrFormatOption, "FAT type 24: want 12, 16 or 32"},
		{64 << 20, FormatOptions{NumFATs: 3}, ErrFormatOption, "3 FATs: want 1 or 2"},
		{64 << 20, FormatOptions{NumFATs: -1}, ErrFormatOption, "-1 FATs"},
		{64 << 20, FormatOptions{ReservedSectors: 70000}, ErrFormatOption, "70000 reserved sectors"},
		{1 << 30, FormatOptions{FATType: 32, ReservedSectors: 1}, ErrFormatOption, "FAT32 needs at least 2 reserved sectors"},
		{1 << 30, FormatOptions{FATType: 32, RootEntries: 512}, ErrFormatOption, "FAT32 has no fixed root directory"},
		{1 << 30, FormatOptions{ReservedSectors: 1}, ErrFormatOption, "FAT32 needs at least 2 reserved sectors"},
		{64 << 20, FormatOptions{RootEntries: 65535}, ErrFormatOption, "65536 root directory entries (rounded up to whole clusters)"},
		{64 << 20, FormatOptions{Media: 0xF1}, ErrFormatOption, "media descriptor 0xf1"},
		{1 << 30, FormatOptions{BackupBootSector: 1}, ErrFormatOption, "backup boot sector 1: sector 1 holds FSInfo"},
		{1 << 30, FormatOptions{BackupBootSector: -1}, ErrFormatOption, "backup boot sector -1: want 2 or more, or 0 for the default"},
		{1 << 30, FormatOptions{BackupBootSector: 32}, ErrFormatOption, "backup boot sector 32 is outside the 32 reserved sectors"},
		{64 << 20, FormatOptions{BackupBootSector: 6}, ErrFormatOption, "FAT16 has no backup boot sector"},
		{64 << 20, FormatOptions{FATType: 12, BackupBootSector: 6}, ErrFormatOption, "FAT12 has no backup boot sector"},
		{64 << 20, FormatOptions{Label: "much too long"}, ErrFormatOption, "longer than 11 bytes"},
		{64 << 20, FormatOptions{Heads: -1}, ErrFormatOption, "geometry"},
	}
	for _, c := range cases {
		m := newFmMem(max(c.size, 1))
		_, err := Format(m, c.size, c.o)
		if err == nil {
			t.Errorf("%s %+v: no error", fmtSize(c.size), c.o)
			continue
		}
		var fe *FormatError
		if !errors.Is(err, c.kind) || !errors.As(err, &fe) || !strings.Contains(err.Error(), c.msg) || !strings.HasPrefix(err.Error(), "fat: format: ") {
			t.Errorf("%s %+v:\n got  %v\n want %v: ...%s...", fmtSize(c.size), c.o, err, c.kind, c.msg)
		}
		if len(m.writes) != 0 {
			t.Errorf("%s %+v: %d writes before failing", fmtSize(c.size), c.o, len(m.writes))
		}
	}
}

// TestFormatWriteError checks that a failing device gives an error naming
// the write.
func TestFormatWriteError(t *testing.T) {
	_, err := Format(fmFailing{}, 64<<20, FormatOptions{})
	if err == nil || !strings.Contains(err.Error(), "writing") || !errors.Is(err, io.ErrShortWrite) {
		t.Errorf("error %v", err)
	}
}

type fmFailing struct{}

func (fmFailing) WriteAt([]byte, int64) (int, error) { return 0, io.ErrShortWrite }

// TestFormatBootStub checks the boot code: the jump lands on it, it points
// SI at the message, and the message ends before the signature.
func TestFormatBootStub(t *testing.T) {
	for _, c := range []struct {
		size int64
		o    FormatOptions
	}{{1440 << 10, FormatOptions{}}, {1 << 30, FormatOptions{}}, {2 << 30, FormatOptions{SectorSize: 4096, FATType: 32}}} {
		m := newFmMem(c.size)
		if _, err := Format(m, c.size, fmFixed(c.o)); err != nil {
			t.Fatal(err)
		}
		b := m.at(0, 512)
		target := 2 + int(b[1])
		if b[0] != 0xEB || b[2] != 0x90 || (target != 0x3E && target != 0x5A) {
			t.Fatalf("jump % x", b[:3])
		}
		if string(b[3:11]) != "MSWIN4.1" {
			t.Errorf("OEM name %q", b[3:11])
		}
		code := b[target:]
		if code[4] != 0xBE {
			t.Fatalf("no mov si at % x", code[:8])
		}
		msg := int(code[5]) | int(code[6])<<8 - 0x7C00
		end := bytes.IndexByte(b[msg:], 0)
		if got := string(b[msg : msg+end]); got != fmtBootMessage || msg+end >= 510 {
			t.Errorf("message at %#x: %q", msg, got)
		}
	}
}

// TestFormatFloppies checks the standard diskette formats against the DOS
// parameters (media byte, root entries, cluster size, geometry, drive 0).
func TestFormatFloppies(t *testing.T) {
	for _, f := range fmtFloppies {
		res, err := Format(newFmMem(f.kib<<10), f.kib<<10, fmFixed(FormatOptions{}))
		if err != nil {
			t.Fatal(err)
		}
		bs := res.BootSector
		if bs.Media != f.media || uint32(bs.RootEntries) != f.rootEntries || uint32(bs.SectorsPerCluster) != f.secPerClus ||
			bs.SectorsPerTrack != f.secPerTrack || bs.NumHeads != f.heads || bs.DriveNumber != 0 || res.Geometry.Type != ondisk.FAT12 ||
			uint32(bs.TotalSectors16) != uint32(f.kib*2) || bs.ReservedSectors != 1 {
			t.Errorf("%d KiB: %+v", f.kib, bs)
		}
	}
}
