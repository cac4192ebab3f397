package ondisk

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// odBPB16 is a FAT16 boot sector: 512-byte sectors, 4 per cluster.
func odBPB16() BootSector {
	return BootSector{
		Jump: [3]byte{0xEB, 0x3C, 0x90}, OEMName: [8]byte{'M', 'S', 'W', 'I', 'N', '4', '.', '1'},
		BytesPerSector: 512, SectorsPerCluster: 4, ReservedSectors: 4, NumFATs: 2, RootEntries: 512,
		TotalSectors32: 100_000, Media: 0xF8, FATSize16: 100, SectorsPerTrack: 63, NumHeads: 255,
		DriveNumber: 0x80, BootSignature: 0x29, VolumeID: 0x12345678,
		VolumeLabel: [11]byte{'N', 'O', ' ', 'N', 'A', 'M', 'E', ' ', ' ', ' ', ' '},
		FSTypeLabel: [8]byte{'F', 'A', 'T', '1', '6', ' ', ' ', ' '},
	}
}

// odBPB32 is a FAT32 boot sector: 512-byte sectors, 8 per cluster.
func odBPB32() BootSector {
	return BootSector{
		Jump: [3]byte{0xEB, 0x58, 0x90}, OEMName: [8]byte{'m', 'k', 'f', 's', '.', 'f', 'a', 't'},
		BytesPerSector: 512, SectorsPerCluster: 8, ReservedSectors: 32, NumFATs: 2,
		TotalSectors32: 1_000_000, Media: 0xF8, FATSize32: 1000, RootCluster: 2, FSInfoSector: 1,
		BackupBootSector: 6, DriveNumber: 0x80, BootSignature: 0x29, VolumeID: 0xCAFEF00D,
		FSTypeLabel: [8]byte{'F', 'A', 'T', '3', '2', ' ', ' ', ' '},
	}
}

func odEncode(t *testing.T, bs BootSector) []byte {
	t.Helper()
	b := make([]byte, 512)
	if err := bs.Encode(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseBootSectorGeometry(t *testing.T) {
	bs16 := odBPB16()
	got, err := ParseBootSector(odEncode(t, bs16))
	if err != nil || *got != bs16 {
		t.Fatalf("FAT16 round trip: %v\n%+v\n%+v", err, got, bs16)
	}
	g, _ := got.Geometry()
	want := Geometry{Type: FAT16, BytesPerSector: 512, SectorsPerCluster: 4, ClusterSize: 2048, ReservedSectors: 4,
		NumFATs: 2, FATSectors: 100, TotalSectors: 100_000, RootEntries: 512, RootDirSector: 204, RootDirSectors: 32,
		FirstDataSector: 236, ClusterCount: 24941, MaxCluster: 24942, Mirrored: true}
	if g != want {
		t.Errorf("FAT16 geometry\n%+v\nwant\n%+v", g, want)
	}
	if g.ClusterOffset(2) != 236*512 || g.ClusterOffset(3) != 236*512+2048 || g.RootDirOffset() != 204*512 ||
		g.FATOffset(1) != 104*512 || g.VolumeBytes() != 100_000*512 || g.RootDirBytes() != 512*32 {
		t.Errorf("offsets")
	}

	bs32 := odBPB32()
	got, err = ParseBootSector(odEncode(t, bs32))
	if err != nil || *got != bs32 {
		t.Fatalf("FAT32 round trip: %v\n%+v\n%+v", err, got, bs32)
	}
	g, _ = got.Geometry()
	if g.Type != FAT32 || g.FirstDataSector != 2032 || g.ClusterCount != 124746 || g.MaxCluster != 124747 ||
		g.RootCluster != 2 || g.FSInfoSector != 1 || g.BackupBootSector != 6 || g.NonStandard || !g.Mirrored {
		t.Errorf("FAT32 geometry %+v", g)
	}
	// Too small a FAT: the clusters it cannot describe are not used.
	bs32.FATSize32 = 900
	g, err = bs32.Geometry()
	if err != nil || g.MaxCluster != 900*128-1 || g.ClusterCount != 124771 {
		t.Errorf("short FAT: %v %+v", err, g)
	}
	// Mirroring off: the active FAT.
	bs32 = odBPB32()
	bs32.ExtFlags = 0x81
	if g, err := bs32.Geometry(); err != nil || g.Mirrored || g.ActiveFAT != 1 {
		t.Errorf("ExtFlags 0x81: %v %+v", err, g)
	}
	// Without an extended boot signature, no ID, label or type string.
	bs16 = odBPB16()
	bs16.BootSignature = 0
	b := odEncode(t, bs16)
	got, _ = ParseBootSector(b)
	if got.VolumeID != 0 || got.VolumeLabel != [11]byte{} {
		t.Errorf("fields without signature: %+v", got)
	}
}

// The type follows the cluster count at the specification's limits; a
// FAT32 layout is FAT32 below them too (NonStandard), a FAT16 layout above
// them is refused.
func TestFATTypeByClusterCount(t *testing.T) {
	layout16 := func(clusters uint32) BootSector {
		bs := odBPB16()
		bs.SectorsPerCluster, bs.NumFATs, bs.ReservedSectors, bs.RootEntries = 1, 1, 1, 16
		bs.FATSize16 = uint16((clusters*2 + 4 + 511) / 512)
		bs.TotalSectors32 = 1 + uint32(bs.FATSize16) + 1 + clusters
		return bs
	}
	layout32 := func(clusters uint32) BootSector {
		bs := odBPB32()
		bs.SectorsPerCluster, bs.NumFATs = 1, 1
		bs.FATSize32 = (clusters*4 + 8 + 511) / 512
		bs.TotalSectors32 = 32 + bs.FATSize32 + clusters
		return bs
	}
	for _, c := range []struct {
		bs          BootSector
		typ         FATType
		nonStandard bool
		err         string
	}{
		{layout16(1), FAT12, false, ""},
		{layout16(4084), FAT12, false, ""},
		{layout16(4085), FAT16, false, ""},
		{layout16(65524), FAT16, false, ""},
		{layout16(65525), 0, false, "need FAT32"},
		{layout32(65524), FAT32, true, ""},
		{layout32(65525), FAT32, false, ""},
		{layout32(4000), FAT32, true, ""},
	} {
		g, err := c.bs.Geometry()
		if c.err != "" {
			if !errors.Is(err, ErrNotFAT) || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%d clusters: %v, want %q", g.ClusterCount, err, c.err)
			}
			continue
		}
		if err != nil || g.Type != c.typ || g.NonStandard != c.nonStandard {
			t.Errorf("%d clusters: %v %v nonstandard %v, want %v %v", g.ClusterCount, err, g.Type, g.NonStandard, c.typ, c.nonStandard)
		}
	}
}

// Each recognition check refuses with ErrNotFAT and says why.
func TestParseBootSectorRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		fat  int // 16 or 32
		mod  func(*BootSector)
		msg  string
	}{
		{"no jump", 16, func(b *BootSector) { b.Jump = [3]byte{0, 0, 0} }, "jump"},
		{"EB without 90", 16, func(b *BootSector) { b.Jump[2] = 0 }, "jump"},
		{"sector 256", 16, func(b *BootSector) { b.BytesPerSector = 256 }, "bytes per sector"},
		{"sector 8192", 16, func(b *BootSector) { b.BytesPerSector = 8192 }, "bytes per sector"},
		{"sector 1000", 16, func(b *BootSector) { b.BytesPerSector = 1000 }, "bytes per sector"},
		{"spc 0", 16, func(b *BootSector) { b.SectorsPerCluster = 0 }, "sectors per cluster"},
		{"spc 3", 16, func(b *BootSector) { b.SectorsPerCluster = 3 }, "sectors per cluster"},
		{"spc 255", 16, func(b *BootSector) { b.SectorsPerCluster = 255 }, "sectors per cluster"},
		{"no reserved", 16, func(b *BootSector) { b.ReservedSectors = 0 }, "reserved"},
		{"no FATs", 16, func(b *BootSector) { b.NumFATs = 0 }, "no FATs"},
		{"media 0xF1", 16, func(b *BootSector) { b.Media = 0xF1 }, "media"},
		{"media 0", 16, func(b *BootSector) { b.Media = 0 }, "media"},
		{"no sectors", 16, func(b *BootSector) { b.TotalSectors32 = 0 }, "total sector"},
		{"no root", 16, func(b *BootSector) { b.RootEntries = 0 }, "root directory"},
		{"metadata fills volume", 16, func(b *BootSector) { b.TotalSectors32 = 236 }, "fills"},
		{"FAT32 no FAT size", 32, func(b *BootSector) { b.FATSize32 = 0 }, "FAT size"},
		{"FAT32 root entries", 32, func(b *BootSector) { b.RootEntries = 512 }, "root directory entries"},
		{"FAT32 version", 32, func(b *BootSector) { b.FSVersion = 1 }, "version"},
		{"FAT32 root cluster 0", 32, func(b *BootSector) { b.RootCluster = 0 }, "root directory cluster"},
		{"FAT32 root cluster 1", 32, func(b *BootSector) { b.RootCluster = 1 }, "root directory cluster"},
		{"FAT32 root cluster beyond", 32, func(b *BootSector) { b.RootCluster = 124748 }, "root directory cluster"},
		{"FAT32 FSInfo beyond", 32, func(b *BootSector) { b.FSInfoSector = 32 }, "FSInfo"},
		{"FAT32 backup beyond", 32, func(b *BootSector) { b.BackupBootSector = 40 }, "backup boot"},
		{"FAT32 active FAT", 32, func(b *BootSector) { b.ExtFlags = 0x82 }, "active FAT"},
		{"FAT32 too many clusters", 32, func(b *BootSector) {
			b.SectorsPerCluster, b.TotalSectors32, b.FATSize32 = 1, 0xFFFFFFFF, 0x4000000
		}, "more than FAT32"},
		{"FAT holds nothing", 16, func(b *BootSector) { b.FATSize16 = 1; b.BytesPerSector = 512; b.TotalSectors32 = 5000 }, ""},
	} {
		bs := odBPB16()
		if c.fat == 32 {
			bs = odBPB32()
		}
		c.mod(&bs)
		_, err := ParseBootSector(odEncode(t, bs))
		if c.msg == "" {
			continue // only must not panic
		}
		if !errors.Is(err, ErrNotFAT) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want ErrNotFAT mentioning %q", c.name, err, c.msg)
		}
	}
	if _, err := ParseBootSector(make([]byte, 100)); !errors.Is(err, ErrNotFAT) {
		t.Errorf("short buffer: %v", err)
	}
	// FSInfo 0 or 0xFFFF: no FSInfo sector, still recognised.
	for _, s := range []uint16{0, 0xFFFF} {
		bs := odBPB32()
		bs.FSInfoSector, bs.BackupBootSector = s, s
		if g, err := bs.Geometry(); err != nil || g.FSInfoSector != 0 || g.BackupBootSector != 0 {
			t.Errorf("FSInfo %#x: %v %+v", s, err, g)
		}
	}
}

func TestBootSectorDirtyBit(t *testing.T) {
	for _, c := range []struct {
		bs  BootSector
		off int
	}{{odBPB16(), 0x25}, {odBPB32(), 0x41}} {
		b := odEncode(t, c.bs)
		b[c.off] = 0x80 // another flag bit stays alone
		if BootSectorDirty(b) {
			t.Error("clean sector reads dirty")
		}
		if !SetBootSectorDirty(b, true) || b[c.off] != 0x81 || !BootSectorDirty(b) {
			t.Errorf("set: byte %#02x", b[c.off])
		}
		if SetBootSectorDirty(b, true) {
			t.Error("setting again reports a change")
		}
		parsed, _ := ParseBootSector(b)
		if !parsed.Dirty() {
			t.Error("parsed NTFlags not dirty")
		}
		if !SetBootSectorDirty(b, false) || b[c.off] != 0x80 {
			t.Errorf("clear: byte %#02x", b[c.off])
		}
	}
	if BootSectorDirty(make([]byte, 10)) || SetBootSectorDirty(make([]byte, 10), true) {
		t.Error("short buffer")
	}
}

func TestFSInfo(t *testing.T) {
	b := make([]byte, 512)
	for i := range b {
		b[i] = byte(i)
	}
	orig := slices.Clone(b)
	if _, err := ParseFSInfo(b); !errors.Is(err, ErrCorrupt) {
		t.Errorf("no signatures: %v", err)
	}
	fi := FSInfo{FreeCount: 1234, NextFree: 99}
	if err := fi.Encode(b); err != nil {
		t.Fatal(err)
	}
	got, err := ParseFSInfo(b)
	if err != nil || got != fi {
		t.Errorf("round trip %+v %v", got, err)
	}
	for i := range b {
		field := i < 4 || (i >= 484 && i < 496) || i >= 508
		if !field && b[i] != orig[i] {
			t.Fatalf("Encode changed reserved byte %d", i)
		}
	}
	if string(b[0:4]) != "RRaA" || string(b[484:488]) != "rrAa" || b[510] != 0x55 || b[511] != 0xAA {
		t.Errorf("signatures % x % x % x", b[0:4], b[484:488], b[508:512])
	}
	g := Geometry{MaxCluster: 1001}
	for _, c := range []struct{ in, want FSInfo }{
		{FSInfo{1000, 2}, FSInfo{1000, 2}},
		{FSInfo{1001, 1001}, FSInfo{FSInfoUnknown, 1001}},
		{FSInfo{5, 1}, FSInfo{5, FSInfoUnknown}},
		{FSInfo{5, 1002}, FSInfo{5, FSInfoUnknown}},
		{FSInfo{FSInfoUnknown, FSInfoUnknown}, FSInfo{FSInfoUnknown, FSInfoUnknown}},
	} {
		if got := c.in.Sanitized(&g); got != c.want {
			t.Errorf("Sanitized(%+v) = %+v", c.in, got)
		}
	}
}
