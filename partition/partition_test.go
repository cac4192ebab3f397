package partition

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

const MiB = 1 << 20

// memDisk is an in-memory disk image of fixed size.
type memDisk []byte

func (m memDisk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(m)) {
		return 0, io.EOF
	}
	n := copy(p, m[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m memDisk) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m)) {
		return 0, fmt.Errorf("write of %d bytes at %d beyond %d-byte disk", len(p), off, len(m))
	}
	return copy(m[off:], p), nil
}

// writeOnly hides ReadAt, as a pipe-like target would.
type writeOnly struct{ io.WriterAt }

func seeded(seed uint64) io.Reader {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	return rand.NewChaCha8(s)
}

func mustNew(t testing.TB, kind Kind, size int64, ss int, specs []Spec, seed uint64) *Table {
	t.Helper()
	tab, err := New(kind, size, ss, specs, &Options{Rand: seeded(seed)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return tab
}

func writeMem(t testing.TB, tab *Table) memDisk {
	t.Helper()
	d := make(memDisk, tab.DiskSize)
	if err := tab.Write(d); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return d
}

func TestGUID(t *testing.T) {
	g, err := ParseGUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
	if err != nil || g != GUIDESP || g.String() != "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" {
		t.Fatalf("ParseGUID = %v, %v", g, err)
	}
	// UEFI spec: the first three fields are stored little-endian.
	var b [16]byte
	putGUID(b[:], GUIDESP)
	want := []byte{0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b}
	if !bytes.Equal(b[:], want) || getGUID(b[:]) != GUIDESP {
		t.Fatalf("on-disk ESP GUID % x, want % x", b, want)
	}
	for _, bad := range []string{"", "C12A7328F81F11D2BA4B00A0C93EC93B", "C12A7328-F81F-11D2-BA4B-00A0C93EC93G", "C12A7328-F81F-11D2-BA4B_00A0C93EC93B"} {
		if _, err := ParseGUID(bad); err == nil {
			t.Errorf("ParseGUID(%q) accepted", bad)
		}
	}
	r, _ := NewGUID(seeded(1))
	if r[6]>>4 != 4 || r[8]>>6 != 2 {
		t.Errorf("NewGUID %v is not a version 4, RFC 4122 variant GUID", r)
	}
	txt, _ := r.MarshalText()
	var back GUID
	if err := back.UnmarshalText(txt); err != nil || back != r {
		t.Errorf("text round trip %v -> %s -> %v, %v", r, txt, back, err)
	}
}

func TestNewLayout(t *testing.T) {
	type part struct {
		num         int
		start, size int64
		typ         Type
		logical     bool
		ebr         int64
	}
	mbr := func(b byte) Type { return Type{MBR: b} }
	gpt := func(g GUID) Type { return Type{GPT: g} }
	cases := []struct {
		name  string
		kind  Kind
		size  int64
		ss    int
		specs []Spec
		want  []part
		ext   *part
	}{
		{"gpt esp+rest", GPT, 100 * MiB, 512,
			[]Spec{{64 * MiB, "esp", "EFI"}, {Rest, "fat32", "DATA"}},
			[]part{{1, 1 * MiB, 64 * MiB, gpt(GUIDESP), false, 0}, {2, 65 * MiB, 34 * MiB, gpt(GUIDBasicData), false, 0}}, nil},
		{"gpt 4k rest in the middle", GPT, 64 * MiB, 4096,
			[]Spec{{8 * MiB, "linux", ""}, {Rest, "raw", ""}, {10 * MiB, "fat16", ""}},
			[]part{{1, 1 * MiB, 8 * MiB, gpt(GUIDLinux), false, 0}, {2, 9 * MiB, 44 * MiB, gpt(GUIDLinuxReserved), false, 0},
				{3, 53 * MiB, 10 * MiB, gpt(GUIDBasicData), false, 0}}, nil},
		{"mbr primaries", MBR, 32 * MiB, 512,
			[]Spec{{1000, "fat12", ""}, {4 * MiB, "fat16", ""}, {Rest, "fat32", ""}},
			[]part{{1, 1 * MiB, 1024, mbr(0x01), false, 0}, {2, 2 * MiB, 4 * MiB, mbr(0x06), false, 0}, {3, 6 * MiB, 26 * MiB, mbr(0x0c), false, 0}}, nil},
		{"mbr four primaries", MBR, 32 * MiB, 512,
			[]Spec{{MiB, "esp", ""}, {MiB, "linux", ""}, {MiB, "raw", ""}, {MiB, "fat32", ""}},
			[]part{{1, 1 * MiB, MiB, mbr(0xef), false, 0}, {2, 2 * MiB, MiB, mbr(0x83), false, 0},
				{3, 3 * MiB, MiB, mbr(0xda), false, 0}, {4, 4 * MiB, MiB, mbr(0x0c), false, 0}}, nil},
		{"mbr logicals", MBR, 64 * MiB, 512,
			[]Spec{{MiB, "esp", ""}, {MiB, "linux", ""}, {MiB, "raw", ""}, {5 * MiB, "fat32", ""}, {Rest, "fat16", ""}, {3 * MiB, "linux", ""}},
			[]part{{1, 1 * MiB, MiB, mbr(0xef), false, 0}, {2, 2 * MiB, MiB, mbr(0x83), false, 0}, {3, 3 * MiB, MiB, mbr(0xda), false, 0},
				{5, 5 * MiB, 5 * MiB, mbr(0x0c), true, 4 * MiB}, {6, 11 * MiB, 49 * MiB, mbr(0x06), true, 10 * MiB},
				{7, 61 * MiB, 3 * MiB, mbr(0x83), true, 60 * MiB}},
			&part{4, 4 * MiB, 60 * MiB, mbr(0x05), false, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab := mustNew(t, c.kind, c.size, c.ss, c.specs, 1)
			if len(tab.Partitions) != len(c.want) {
				t.Fatalf("%d partitions, want %d", len(tab.Partitions), len(c.want))
			}
			for i, w := range c.want {
				p := tab.Partitions[i]
				got := part{p.Number, p.Start, p.Size, p.Type, p.Logical, p.EBR}
				if got != w {
					t.Errorf("partition %d = %+v, want %+v", i+1, got, w)
				}
				if p.Index != i+1 {
					t.Errorf("partition %d: Index %d", i+1, p.Index)
				}
				if c.kind == GPT && (p.Name != c.specs[i].Label || p.GUID.IsZero()) {
					t.Errorf("partition %d: name %q GUID %v", i+1, p.Name, p.GUID)
				}
			}
			if c.ext != nil {
				e := tab.Extended
				if e == nil || (part{e.Number, e.Start, e.Size, e.Type, e.Logical, e.EBR}) != *c.ext {
					t.Errorf("extended = %+v, want %+v", e, c.ext)
				}
			} else if tab.Extended != nil {
				t.Errorf("unexpected extended partition %+v", tab.Extended)
			}
			if c.kind == GPT {
				arr := int64(16384 / c.ss)
				if tab.FirstUsableLBA != 2+arr || tab.LastUsableLBA != c.size/int64(c.ss)-2-arr || tab.DiskGUID.IsZero() {
					t.Errorf("GPT geometry %d-%d, disk GUID %v", tab.FirstUsableLBA, tab.LastUsableLBA, tab.DiskGUID)
				}
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	cases := []struct {
		name  string
		kind  Kind
		size  int64
		ss    int
		specs []Spec
		is    error
		msg   string
	}{
		{"too big", GPT, 100 * MiB, 512, []Spec{{64 * MiB, "esp", ""}, {40 * MiB, "fat32", ""}}, ErrNoSpace,
			"partition 2 (40 MiB fat32) does not fit: 35.0 MiB (36683264 bytes) left at offset 65 MiB"},
		{"too big mbr logical", MBR, 16 * MiB, 512, []Spec{{MiB, "raw", ""}, {MiB, "raw", ""}, {MiB, "raw", ""}, {MiB, "raw", ""}, {12 * MiB, "raw", ""}},
			ErrNoSpace, "partition 5 (12 MiB raw) does not fit: 9 MiB left"},
		{"no room for rest", MBR, 8 * MiB, 512, []Spec{{Rest, "linux", ""}, {7 * MiB, "linux", ""}}, ErrNoSpace, "partition 1 (rest): no space left"},
		{"bigger than disk", MBR, 100 * MiB, 512, []Spec{{1 << 62, "linux", ""}}, ErrNoSpace, "partition 1 (4 EiB linux) is larger than the 100 MiB disk"},
		{"two rests", GPT, 100 * MiB, 512, []Spec{{Rest, "esp", ""}, {Rest, "fat32", ""}}, ErrInvalid, "partitions 1 and 2 both"},
		{"unknown type", GPT, 100 * MiB, 512, []Spec{{MiB, "ntfs", ""}}, ErrInvalid, `partition 1: partition: invalid partition table: unknown partition type "ntfs"`},
		{"zero size", MBR, 100 * MiB, 512, []Spec{{0, "linux", ""}}, ErrInvalid, "partition 1: size 0"},
		{"long label", GPT, 100 * MiB, 512, []Spec{{MiB, "linux", strings.Repeat("x", 37)}}, ErrInvalid, "37 UTF-16 units"},
		{"none with parts", None, 100 * MiB, 512, []Spec{{MiB, "linux", ""}}, ErrInvalid, "cannot hold partitions"},
		{"bad sector size", GPT, 100 * MiB, 520, nil, ErrInvalid, "sector size 520"},
		{"tiny gpt", GPT, 16384, 512, nil, ErrNoSpace, "too small for a GPT"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.kind, c.size, c.ss, c.specs, &Options{Rand: seeded(1)})
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err = %v, want %v containing %q", err, c.is, c.msg)
			}
		})
	}
}

func TestNewDeterministic(t *testing.T) {
	specs := []Spec{{MiB, "esp", "EFI"}, {Rest, "linux", "root"}}
	for _, kind := range []Kind{MBR, GPT} {
		a := writeMem(t, mustNew(t, kind, 16*MiB, 512, specs, 7))
		b := writeMem(t, mustNew(t, kind, 16*MiB, 512, specs, 7))
		c := writeMem(t, mustNew(t, kind, 16*MiB, 512, specs, 8))
		if !bytes.Equal(a, b) {
			t.Errorf("%v: same seed gave different images", kind)
		}
		if bytes.Equal(a, c) {
			t.Errorf("%v: different seeds gave identical images", kind)
		}
	}
}

var roundTripCases = []struct {
	name  string
	kind  Kind
	size  int64
	ss    int
	specs []Spec
}{
	{"gpt512", GPT, 100 * MiB, 512, []Spec{{64 * MiB, "esp", "EFI system"}, {MiB, "raw", "Données ☃"}, {Rest, "linux", "root"}}},
	{"gpt4096", GPT, 100 * MiB, 4096, []Spec{{64 * MiB, "esp", "EFI"}, {Rest, "fat32", "DATA"}}},
	{"gpt-empty", GPT, 10 * MiB, 512, nil},
	{"mbr", MBR, 100 * MiB, 512, []Spec{{16 * MiB, "fat16", ""}, {Rest, "fat32", ""}}},
	{"mbr-logicals", MBR, 100 * MiB, 512, []Spec{{8 * MiB, "esp", ""}, {8 * MiB, "fat12", ""}, {8 * MiB, "fat16", ""},
		{8 * MiB, "fat32", ""}, {8 * MiB, "linux", ""}, {Rest, "raw", ""}}},
	{"mbr4096-logicals", MBR, 100 * MiB, 4096, []Spec{{8 * MiB, "esp", ""}, {8 * MiB, "fat12", ""}, {8 * MiB, "fat16", ""},
		{8 * MiB, "fat32", ""}, {Rest, "raw", ""}}},
	{"mbr-empty", MBR, 10 * MiB, 512, nil},
}

func TestRoundTrip(t *testing.T) {
	for _, c := range roundTripCases {
		t.Run(c.name, func(t *testing.T) {
			tab := mustNew(t, c.kind, c.size, c.ss, c.specs, 3)
			d := writeMem(t, tab)
			got, warns, err := ReadSectorSize(d, c.size, c.ss)
			if err != nil || len(warns) > 0 {
				t.Fatalf("Read: %v, warnings %q", err, warns)
			}
			if !reflect.DeepEqual(got, tab) {
				t.Fatalf("read back\n%+v\nwant\n%+v", got, tab)
			}
			if c.kind == GPT || c.ss == 512 {
				if got, _, err := Read(d, c.size); err != nil || !reflect.DeepEqual(got, tab) {
					t.Fatalf("Read with detection: %v\n%+v", err, got)
				}
			}
		})
	}
}

func TestMBRCHS(t *testing.T) {
	// The values sfdisk writes (255 heads, 63 sectors; FE FF FF past 1023).
	for _, c := range []struct {
		lba  int64
		want [3]byte
	}{{0, [3]byte{0, 1, 0}}, {2048, [3]byte{0x20, 0x21, 0x00}}, {45056, [3]byte{0xcd, 0x0c, 0x02}},
		{1024*255*63 - 1, [3]byte{0xfe, 0xff, 0xff}}, {1024 * 255 * 63, [3]byte{0xfe, 0xff, 0xff}}, {1 << 40, [3]byte{0xfe, 0xff, 0xff}}} {
		if got := chs(c.lba); got != c.want {
			t.Errorf("chs(%d) = % x, want % x", c.lba, got, c.want)
		}
	}
}

// patchGPT edits the header and entry array at both ends of a 512- or
// 4096-byte-sector GPT and fixes their CRCs, to build tables that are
// malformed yet pass the checksums.
func patchGPT(d memDisk, ss int64, hdr func(h []byte), ents func(e []byte)) {
	last := int64(len(d))/ss - 1
	for _, lba := range []int64{1, last} {
		h := d[lba*ss : lba*ss+ss]
		entLBA, count, esize := int64(le.Uint64(h[72:])), int64(le.Uint32(h[80:])), int64(le.Uint32(h[84:]))
		if ents != nil {
			e := d[entLBA*ss : entLBA*ss+count*esize]
			ents(e)
			le.PutUint32(h[88:], crc32.ChecksumIEEE(e))
		}
		if hdr != nil {
			hdr(h)
		}
		le.PutUint32(h[16:], 0)
		le.PutUint32(h[16:], crc32.ChecksumIEEE(h[:min(int64(le.Uint32(h[12:])), ss)]))
	}
}

func TestDamagedGPT(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		s := int64(ss)
		tab := mustNew(t, GPT, 20*MiB, ss, []Spec{{4 * MiB, "esp", "EFI"}, {Rest, "linux", "root"}}, 5)
		last := tab.DiskSize/s - 1
		arr := 16384 / s
		cases := []struct {
			name   string
			damage func(d memDisk)
			warn   string // "" means the read must fail
		}{
			{"primary header CRC", func(d memDisk) { d[s+16] ^= 1 }, "primary GPT is damaged (header CRC"},
			{"primary header field", func(d memDisk) { d[s+56] ^= 1 }, "primary GPT is damaged (header CRC"},
			{"primary signature", func(d memDisk) { d[s] = 'X' }, "primary GPT is damaged (no GPT signature"},
			{"primary entries", func(d memDisk) { d[2*s+56] ^= 1 }, "primary GPT is damaged (entry array CRC"},
			{"protective MBR lost", func(d memDisk) { clear(d[:s]) }, "no protective MBR"},
			{"backup header", func(d memDisk) { d[last*s+60] ^= 1 }, "backup GPT is damaged (header CRC"},
			{"backup entries", func(d memDisk) { d[(last-arr)*s] ^= 1 }, "backup GPT is damaged (entry array CRC"},
			{"both headers", func(d memDisk) { d[s+16] ^= 1; d[last*s+16] ^= 1 }, ""},
			{"primary header and backup entries", func(d memDisk) { d[s] = 0; d[(last-arr)*s] ^= 1 }, ""},
			{"both entries", func(d memDisk) { d[2*s] ^= 1; d[(last-arr)*s] ^= 1 }, ""},
		}
		for _, c := range cases {
			t.Run(fmt.Sprintf("%d/%s", ss, c.name), func(t *testing.T) {
				d := writeMem(t, tab)
				c.damage(d)
				got, warns, err := Read(d, tab.DiskSize)
				if c.warn == "" {
					if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "primary") || !strings.Contains(err.Error(), "backup") {
						t.Fatalf("Read = %v, %v; want ErrCorrupt naming both headers", got, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
				if len(warns) != 1 || !strings.Contains(string(warns[0]), c.warn) {
					t.Fatalf("warnings %q, want one containing %q", warns, c.warn)
				}
				if !reflect.DeepEqual(got, tab) {
					t.Fatalf("read %+v, want %+v", got, tab)
				}
				// Writing the table back repairs the disk.
				if err := got.Write(d); err != nil {
					t.Fatal(err)
				}
				if _, warns, err := Read(d, tab.DiskSize); err != nil || len(warns) > 0 {
					t.Fatalf("after repair: %v, %q", err, warns)
				}
			})
		}
	}
}

func TestGrownDisk(t *testing.T) {
	tab := mustNew(t, GPT, 8*MiB, 512, []Spec{{Rest, "linux", ""}}, 1)
	d := append(writeMem(t, tab), make(memDisk, MiB)...)
	got, warns, err := Read(d, int64(len(d)))
	if err != nil || len(warns) != 1 || !strings.Contains(string(warns[0]), "disk grown") {
		t.Fatalf("Read: %v, %q", err, warns)
	}
	tab.DiskSize = int64(len(d))
	if !reflect.DeepEqual(got, tab) {
		t.Fatalf("read %+v, want %+v", got, tab)
	}
}

func TestMalformed(t *testing.T) {
	gptDisk := func(ss int) memDisk {
		return writeMem(t, mustNew(t, GPT, 4*MiB, ss, []Spec{{MiB, "esp", "a"}, {MiB, "linux", "b"}}, 1))
	}
	mbrDisk := func() memDisk {
		return writeMem(t, mustNew(t, MBR, 16*MiB, 512, []Spec{{MiB, "esp", ""}, {MiB, "raw", ""}, {MiB, "raw", ""},
			{MiB, "linux", ""}, {MiB, "linux", ""}, {MiB, "linux", ""}}, 1))
	}
	u32 := func(off int, v uint32) func([]byte) { return func(b []byte) { le.PutUint32(b[off:], v) } }
	u64 := func(off int, v uint64) func([]byte) { return func(b []byte) { le.PutUint64(b[off:], v) } }
	mbrEntry := func(d memDisk, base int64, slot int, typ byte, start, size uint32) {
		b := d[base+446+16*int64(slot):]
		b[4] = typ
		le.PutUint32(b[8:], start)
		le.PutUint32(b[12:], size)
	}
	cases := []struct {
		name string
		disk func() memDisk
		msg  string
	}{
		{"entry size 127", func() memDisk { d := gptDisk(512); patchGPT(d, 512, u32(84, 127), nil); return d }, "entry size 127"},
		{"entry size 132", func() memDisk { d := gptDisk(512); patchGPT(d, 512, u32(84, 132), nil); return d }, "entry size 132"},
		{"entry size huge", func() memDisk { d := gptDisk(512); patchGPT(d, 512, u32(84, 1<<31), nil); return d }, "entry size"},
		{"too many entries", func() memDisk { d := gptDisk(512); patchGPT(d, 512, u32(80, 1<<30), nil); return d }, "entries of 128 bytes"},
		{"header size", func() memDisk { d := gptDisk(512); patchGPT(d, 512, u32(12, 600), nil); return d }, "header size 600"},
		{"usable beyond disk", func() memDisk { d := gptDisk(512); patchGPT(d, 512, u64(48, 1<<62), nil); return d }, "usable LBAs"},
		{"usable reversed", func() memDisk { d := gptDisk(512); patchGPT(d, 512, u64(40, 5000), nil); return d }, "usable LBAs"},
		{"usable over entries", func() memDisk { d := gptDisk(4096); patchGPT(d, 4096, u64(40, 3), nil); return d }, "entry array at LBA"},
		{"entries LBA huge", func() memDisk { d := gptDisk(512); patchGPT(d, 512, u64(72, 1<<63), nil); return d }, "entry array at LBA"},
		{"partition outside usable", func() memDisk {
			d := gptDisk(512)
			patchGPT(d, 512, nil, func(e []byte) { le.PutUint64(e[128+40:], 1<<60) })
			return d
		}, "entry 2: LBAs"},
		{"partition reversed", func() memDisk {
			d := gptDisk(512)
			patchGPT(d, 512, nil, func(e []byte) { le.PutUint64(e[32:], le.Uint64(e[40:])+1) })
			return d
		}, "entry 1: LBAs"},
		{"partitions overlap", func() memDisk {
			d := gptDisk(4096)
			patchGPT(d, 4096, nil, func(e []byte) { le.PutUint64(e[128+32:], le.Uint64(e[40:])) })
			return d
		}, "overlaps partition 1"},
		{"no GPT behind protective MBR", func() memDisk { d := gptDisk(512); clear(d[512:1024]); clear(d[len(d)-512:]); return d }, "protective MBR but no GPT header"},
		{"mbr beyond disk", func() memDisk { d := mbrDisk(); mbrEntry(d, 0, 0, 0x83, 2048, 1<<30); return d }, "beyond the"},
		{"mbr in sector 0", func() memDisk { d := mbrDisk(); mbrEntry(d, 0, 0, 0x83, 0, 10); return d }, "starts in the MBR sector"},
		{"mbr overlap", func() memDisk { d := mbrDisk(); mbrEntry(d, 0, 1, 0x83, 2047, 10); return d }, "overlaps"},
		{"two extended", func() memDisk { d := mbrDisk(); mbrEntry(d, 0, 0, 0x0f, 2048, 10); return d }, "both extended"},
		{"ebr loop", func() memDisk { d := mbrDisk(); le.PutUint32(d[6*MiB+446+16+8:], 0); return d }, "loops back"},
		{"ebr outside extended", func() memDisk { d := mbrDisk(); le.PutUint32(d[6*MiB+446+16+8:], 1<<20); return d }, "outside the extended"},
		{"logical outside extended", func() memDisk { d := mbrDisk(); le.PutUint32(d[6*MiB+446+8:], 16000); return d }, "outside the extended"},
		{"logical over its EBR", func() memDisk { d := mbrDisk(); le.PutUint32(d[6*MiB+446+8:], 0); return d }, "EBR at byte"},
		{"nested extended", func() memDisk { d := mbrDisk(); d[6*MiB+446+4] = 0x05; return d }, "nested extended"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := c.disk()
			tab, _, err := Read(d, int64(len(d)))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("Read = %+v, %v; want ErrCorrupt containing %q", tab, err, c.msg)
			}
		})
	}
}

func TestEBRChainQuirks(t *testing.T) {
	tab := mustNew(t, MBR, 16*MiB, 512, []Spec{{MiB, "esp", ""}, {MiB, "raw", ""}, {MiB, "raw", ""},
		{MiB, "linux", ""}, {MiB, "linux", ""}}, 1)
	// An empty head EBR that only links on, as some tools leave after
	// deleting the first logical partition: the logicals are still found and
	// Write keeps an empty head EBR.
	tab.Partitions = append(tab.Partitions[:2], tab.Partitions[3:]...)
	for i := range tab.Partitions {
		tab.Partitions[i].Index = i + 1
	}
	head := tab.Extended.Start
	tab.Extended.Start -= MiB
	tab.Extended.Size += MiB
	d := writeMem(t, tab)
	got, warns, err := Read(d, tab.DiskSize)
	if err != nil || len(warns) > 0 || !reflect.DeepEqual(got, tab) {
		t.Fatalf("Read = %+v, %q, %v", got, warns, err)
	}
	if d[head-MiB+510] != 0x55 || d[head-MiB+446+4] != 0 || d[head-MiB+446+16+4] != 0x05 {
		t.Errorf("head EBR is not an empty link")
	}
	// A missing signature ends the chain with a warning.
	d[tab.Partitions[3].EBR+510] = 0
	got, warns, err = Read(d, tab.DiskSize)
	if err != nil || len(warns) != 1 || len(got.Partitions) != 3 {
		t.Fatalf("Read = %+v, %q, %v", got, warns, err)
	}
}

func TestEmptyExtended(t *testing.T) {
	tab := mustNew(t, MBR, 16*MiB, 512, []Spec{{MiB, "linux", ""}}, 1)
	tab.Extended = &Partition{Number: 3, Start: 4 * MiB, Size: 4 * MiB, Type: Type{MBR: 0x0f}, Bootable: true}
	d := writeMem(t, tab)
	if d[4*MiB+510] != 0x55 {
		t.Errorf("no EBR written for an empty extended partition")
	}
	clear(d[4*MiB : 4*MiB+512]) // a zeroed head EBR is a valid empty chain
	got, warns, err := Read(d, tab.DiskSize)
	if err != nil || len(warns) > 0 || !reflect.DeepEqual(got, tab) {
		t.Fatalf("Read = %+v, %q, %v", got, warns, err)
	}
	d[4*MiB+100] = 1 // not empty, yet no signature: worth a warning
	if got, warns, err := Read(d, tab.DiskSize); err != nil || len(warns) != 1 || !reflect.DeepEqual(got, tab) {
		t.Fatalf("Read = %+v, %q, %v", got, warns, err)
	}
}

func TestReadNone(t *testing.T) {
	fat := make(memDisk, MiB)
	copy(fat, []byte{0xeb, 0x3c, 0x90, 'm', 'k', 'f', 's', '.', 'f', 'a', 't', 0x00, 0x02, 4, 1, 0, 2})
	fat[510], fat[511] = 0x55, 0xaa
	garbage := make(memDisk, MiB)
	copy(garbage[446:], bytes.Repeat([]byte{0x41}, 64))
	garbage[510], garbage[511] = 0x55, 0xaa
	for name, d := range map[string]memDisk{"zero": make(memDisk, MiB), "tiny": make(memDisk, 100), "fat": fat, "bad boot flags": garbage} {
		tab, warns, err := Read(d, int64(len(d)))
		if err != nil || len(warns) > 0 || tab.Kind != None || len(tab.Partitions) != 0 {
			t.Errorf("%s: Read = %+v, %q, %v", name, tab, warns, err)
		}
	}
}

// TestReadFakeMBRSuperfloppy: mkfs.fat --mbr writes, into the boot sector
// of a volume that fills the disk, a partition table whose one partition
// is the volume itself, starting at sector 0. The disk is a superfloppy, as
// mtools and fsck.fat take it. An entry at sector 0 beside others, or in a
// sector that is no boot sector, is still a corrupt table (TestMalformed).
func TestReadFakeMBRSuperfloppy(t *testing.T) {
	fat := func() memDisk {
		d := make(memDisk, 4*MiB)
		copy(d, []byte{0xeb, 0x3c, 0x90, 'm', 'k', 'f', 's', '.', 'f', 'a', 't', 0x00, 0x02, 4, 1, 0, 2})
		b := d[446:]
		b[0], b[4] = 0x80, 0x06
		le.PutUint32(b[8:], 0)
		le.PutUint32(b[12:], uint32(len(d)/512))
		d[510], d[511] = 0x55, 0xaa
		return d
	}
	d := fat()
	tab, warns, err := Read(d, int64(len(d)))
	if err != nil || len(warns) > 0 || tab.Kind != None || len(tab.Partitions) != 0 {
		t.Fatalf("Read = %+v, %q, %v; want a superfloppy", tab, warns, err)
	}
	d = fat()
	b := d[446+16:]
	b[4] = 0x83
	le.PutUint32(b[8:], 4096)
	le.PutUint32(b[12:], 100)
	if tab, _, err := Read(d, int64(len(d))); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "starts in the MBR sector") {
		t.Fatalf("a second partition beside one at sector 0: Read = %+v, %v; want ErrCorrupt", tab, err)
	}
}

func TestWriteNoneAndWipe(t *testing.T) {
	d := writeMem(t, mustNew(t, GPT, 16*MiB, 512, []Spec{{Rest, "linux", ""}}, 1))
	before := append(memDisk(nil), d...)
	if err := (&Table{Kind: None, SectorSize: 512, DiskSize: 16 * MiB}).Write(d); err != nil || !bytes.Equal(d, before) {
		t.Fatalf("writing a None table changed the disk (%v)", err)
	}
	// An MBR written over a GPT erases the GPT headers when it can read ...
	mbr := mustNew(t, MBR, 16*MiB, 512, []Spec{{MiB, "linux", ""}}, 1)
	if err := mbr.Write(d); err != nil {
		t.Fatal(err)
	}
	if string(d[512:520]) == gptSignature || string(d[len(d)-512:len(d)-504]) == gptSignature {
		t.Errorf("GPT headers survive an MBR write")
	}
	got, warns, err := Read(d, int64(len(d)))
	if err != nil || len(warns) > 0 || !reflect.DeepEqual(got, mbr) {
		t.Errorf("Read = %+v, %q, %v", got, warns, err)
	}
	// ... and leaves alone what lies inside a partition.
	d = writeMem(t, mustNew(t, GPT, 16*MiB, 512, nil, 1))
	mbr = mustNew(t, MBR, 16*MiB, 512, []Spec{{Rest, "linux", ""}}, 1)
	mbr.Partitions[0].Size = 15 * MiB
	if err := mbr.Write(writeOnly{d}); err != nil {
		t.Fatal(err)
	}
	if string(d[512:520]) != gptSignature {
		t.Errorf("a write-only target was read")
	}
	if err := mbr.Write(d); err != nil {
		t.Fatal(err)
	}
	if string(d[512:520]) == gptSignature || string(d[len(d)-512:len(d)-504]) != gptSignature {
		t.Errorf("wipe touched the wrong sectors")
	}
}

func TestValidate(t *testing.T) {
	base := func(kind Kind) *Table {
		specs := []Spec{{MiB, "linux", ""}, {MiB, "linux", ""}, {MiB, "linux", ""}, {MiB, "linux", ""}, {MiB, "linux", ""}}
		return mustNew(t, kind, 16*MiB, 512, specs, 1)
	}
	cases := []struct {
		name string
		kind Kind
		edit func(t *Table)
		msg  string
	}{
		{"gpt bootable", GPT, func(t *Table) { t.Partitions[0].Bootable = true }, "active flag need an MBR"},
		{"gpt no type", GPT, func(t *Table) { t.Partitions[0].Type = Type{} }, "needs a type GUID"},
		{"gpt misaligned", GPT, func(t *Table) { t.Partitions[0].Start++ }, "multiples of the 512-byte sector"},
		{"gpt numbers", GPT, func(t *Table) { t.Partitions[1].Number = 1 }, "numbers must rise"},
		{"gpt name NUL", GPT, func(t *Table) { t.Partitions[1].Name = "a\x00b" }, "contains NUL"},
		{"gpt overlap", GPT, func(t *Table) { t.Partitions[1].Start -= 512 }, "overlaps"},
		{"gpt extended", GPT, func(t *Table) { t.Extended = &Partition{} }, "extended partition"},
		{"mbr name", MBR, func(t *Table) { t.Partitions[0].Name = "x" }, "need a GPT"},
		{"mbr type 0", MBR, func(t *Table) { t.Partitions[0].Type.MBR = 0 }, "cannot hold data"},
		{"mbr logical type 5", MBR, func(t *Table) { t.Partitions[4].Type.MBR = 0x05 }, "cannot hold data"},
		{"mbr hybrid type", MBR, func(t *Table) { t.Partitions[0].MBRType = 0x83 }, "need a GPT"},
		{"mbr entry array", MBR, func(t *Table) { t.EntryLBA = 64 }, "need a GPT"},
		{"boot code too long", MBR, func(t *Table) { t.BootCode = make([]byte, 441) }, "room for 440"},
		{"gpt entry array in header", GPT, func(t *Table) { t.EntryLBA = 1 }, "overlaps the protective MBR or the header"},
		{"gpt entry array in data", GPT, func(t *Table) { t.EntryLBA = 2048 }, "overlaps the primary entry array"},
		{"gpt MBR type without hybrid", GPT, func(t *Table) { t.Partitions[0].MBRType = 0x83 }, "needs a hybrid MBR"},
		{"gpt hybrid without entries", GPT, func(t *Table) { t.HybridMBR = true }, "without partitions"},
		{"gpt hybrid EE", GPT, func(t *Table) { t.HybridMBR = true; t.Partitions[0].MBRType = 0xee }, "cannot be a hybrid MBR entry"},
		{"gpt hybrid four", GPT, func(t *Table) {
			t.HybridMBR = true
			for i := range 4 {
				t.Partitions[i].MBRType = 0x83
			}
		}, "room for 3"},
		{"mbr slot", MBR, func(t *Table) { t.Partitions[1].Number = 1 }, "distinct MBR slots"},
		{"mbr logical number", MBR, func(t *Table) { t.Partitions[4].Number = 7 }, "want 6"},
		{"mbr no extended", MBR, func(t *Table) { t.Extended = nil }, "without an extended partition"},
		{"mbr logical outside", MBR, func(t *Table) { t.Extended.Size -= MiB }, "outside the extended"},
		{"mbr EBR in data", MBR, func(t *Table) { t.Partitions[4].EBR = t.Partitions[3].Start }, "overlaps"},
		{"mbr 32-bit", MBR, func(t *Table) { t.DiskSize = 4 << 40; t.Partitions[0].Size = 3 << 40 }, "32-bit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab := base(c.kind)
			c.edit(tab)
			err := tab.Write(make(memDisk, 16*MiB))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("Write = %v, want ErrInvalid containing %q", err, c.msg)
			}
		})
	}
	// A logical's EBR may be left for Write to place.
	tab := base(MBR)
	for i := range tab.Partitions {
		tab.Partitions[i].EBR = 0
	}
	d := writeMem(t, tab)
	got, _, err := Read(d, tab.DiskSize)
	if err != nil || got.Partitions[3].EBR != tab.Extended.Start || got.Partitions[4].EBR != tab.Partitions[4].Start-512 {
		t.Fatalf("default EBRs: %+v, %v", got, err)
	}
}

func TestTypes(t *testing.T) {
	for _, c := range []struct {
		kind Kind
		name string
		want string
		desc string
	}{
		{MBR, "fat12", "1", "FAT12"}, {MBR, "fat16", "6", "FAT16"}, {MBR, "fat32", "c", "W95 FAT32 (LBA)"},
		{MBR, "esp", "ef", "EFI (FAT-12/16/32)"}, {MBR, "linux", "83", "Linux"}, {MBR, "raw", "da", "Non-FS data"},
		{GPT, "fat12", "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", "Microsoft basic data"},
		{GPT, "fat32", "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", "Microsoft basic data"},
		{GPT, "esp", "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "EFI System"},
		{GPT, "linux", "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "Linux filesystem"},
		{GPT, "raw", "8DA63339-0007-60C0-C436-083AC8230908", "Linux reserved"},
	} {
		ty, err := TypeFor(c.kind, c.name)
		if err != nil || ty.String() != c.want || ty.Description() != c.desc {
			t.Errorf("TypeFor(%v, %s) = %v (%q), %v; want %s (%q)", c.kind, c.name, ty, ty.Description(), err, c.want, c.desc)
		}
	}
	for _, s := range []string{"gpt", "MBR", "dos", "none"} {
		if k, err := ParseKind(s); err != nil || (k.String() != strings.ToLower(s) && s != "dos") {
			t.Errorf("ParseKind(%s) = %v, %v", s, k, err)
		}
	}
	if _, err := ParseKind("apm"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseKind(apm) = %v", err)
	}
}
