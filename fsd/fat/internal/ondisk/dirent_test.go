package ondisk

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"
)

func odHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The long-name entries mtools wrote for "hello world.html" (short name
// HELLOW~1.HTM), copied from an image's raw bytes: AppendEntries must
// produce the same 64 bytes.
func TestAppendEntriesMatchesMtools(t *testing.T) {
	want := odHex(t, `
		4274 006d 006c 0000 00ff ff0f 000f ffff ffff ffff ffff ffff ffff 0000 ffff ffff
		0168 0065 006c 006c 006f 000f 000f 2000 7700 6f00 7200 6c00 6400 0000 2e00 6800`)
	e := ShortEntry{Name: odSN("HELLOW~1HTM"), Attr: AttrArchive}
	got, err := AppendEntries(nil, "hello world.html", &e)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 96 || !bytes.Equal(got[:64], want) {
		t.Fatalf("long-name entries:\n%x\nwant\n%x", got[:min(64, len(got))], want)
	}
	if DecodeShortEntry(got[64:]) != e {
		t.Errorf("short entry does not round-trip")
	}
}

// Names outside the BMP are stored as surrogate pairs (the layout Windows
// uses), and come back.
func TestLongNameSurrogates(t *testing.T) {
	name := "a😀b"
	e := ShortEntry{Name: odSN("A_B~1      ")}
	b, err := AppendEntries(nil, name, &e)
	if err != nil {
		t.Fatal(err)
	}
	units := []uint16{'a', 0xD83D, 0xDE00, 'b', 0, 0xFFFF}
	for i, off := range lfnOffsets[:len(units)] {
		if u := binary.LittleEndian.Uint16(b[off:]); u != units[i] {
			t.Errorf("unit %d = %#04x, want %#04x", i, u, units[i])
		}
	}
	for d := range DecodeDir(b) {
		if d.LongName != name {
			t.Errorf("decoded %q", d.LongName)
		}
	}
	if LongNameSlots(strings.Repeat("😀", 7)) != 2 || LongNameSlots("") != 0 || LongNameSlots(strings.Repeat("x", 13)) != 1 {
		t.Error("LongNameSlots")
	}
}

func TestShortEntryRoundTrip(t *testing.T) {
	e := ShortEntry{
		Name: odSN("\xe5BC     TXT"), Attr: AttrArchive | AttrHidden, NTRes: 0x18 | 0x01,
		CreateCS: 199, CreateTime: 0xBF7D, CreateDate: 0x5A21, AccessDate: 0x5A22,
		FirstCluster: 0x0ABC1234, WriteTime: 0x1234, WriteDate: 0x5678, Size: 0xFFFFFFFF,
	}
	var b [32]byte
	e.Encode(b[:])
	if b[0] != 0x05 {
		t.Errorf("leading 0xE5 stored as %#02x, want 0x05", b[0])
	}
	if binary.LittleEndian.Uint16(b[20:]) != 0x0ABC || binary.LittleEndian.Uint16(b[26:]) != 0x1234 {
		t.Errorf("cluster words % x", b[20:28])
	}
	if got := DecodeShortEntry(b[:]); got != e {
		t.Errorf("round trip:\n%+v\n%+v", got, e)
	}
	if e.Case() != CaseLowerBase|CaseLowerExt {
		t.Errorf("Case %#x", e.Case())
	}
	e.SetCase(CaseLowerExt)
	if e.NTRes != 0x11 {
		t.Errorf("SetCase kept %#x", e.NTRes)
	}
	if e.StartCluster(FAT16) != 0x1234 || e.StartCluster(FAT32) != 0x0ABC1234 {
		t.Error("StartCluster")
	}
	if !(&ShortEntry{Attr: AttrVolumeID | AttrArchive}).IsVolumeLabel() || (&ShortEntry{Attr: AttrLongName}).IsVolumeLabel() {
		t.Error("IsVolumeLabel")
	}
}

func TestDotEntries(t *testing.T) {
	stamp := ShortEntry{WriteDate: 1, WriteTime: 2, CreateDate: 3, CreateTime: 4, CreateCS: 5, AccessDate: 6}
	dot, dotdot := DotEntries(100, 0, &stamp)
	if dot.Name != DotName || dotdot.Name != DotDotName || dot.FirstCluster != 100 || dotdot.FirstCluster != 0 ||
		!dot.IsDir() || !dotdot.IsDir() || dot.WriteTime != 2 || dotdot.AccessDate != 6 {
		t.Errorf("%+v %+v", dot, dotdot)
	}
}

// odDir builds directory bytes from entries given as (long name, short name).
func odDir(t *testing.T, ents ...[2]string) []byte {
	t.Helper()
	var b []byte
	for _, e := range ents {
		se := ShortEntry{Name: odSN(e[1])}
		var err error
		if b, err = AppendEntries(b, e[0], &se); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

type odSeen struct {
	long, short string
	slot, first int
}

func odScan(b []byte, blockSize int) (out []odSeen, free [][2]int) {
	s := Scanner{Free: func(f, n int) { free = append(free, [2]int{f, n}) }}
	for len(b) > 0 {
		n := min(blockSize, len(b))
		for e := range s.Entries(b[:n]) {
			out = append(out, odSeen{e.LongName, string(e.Name[:]), e.Slot, e.FirstSlot})
		}
		b = b[n:]
	}
	return out, free
}

func TestScannerLongNames(t *testing.T) {
	good := odDir(t, [2]string{"A long file name.txt", "ALONGF~1TXT"})
	mutate := func(f func(b []byte)) []byte {
		b := slices.Clone(good)
		f(b)
		return b
	}
	short := "ALONGF~1TXT"
	for _, c := range []struct {
		name string
		b    []byte
		want []odSeen
	}{
		{"valid", good, []odSeen{{"A long file name.txt", short, 2, 0}}},
		{"bad checksum", mutate(func(b []byte) { b[32+13]++ }), []odSeen{{"", short, 2, 2}}},
		{"short name changed", mutate(func(b []byte) { b[64] = 'B' }), []odSeen{{"", "BLONGF~1TXT", 2, 2}}},
		{"no 0x40 flag", mutate(func(b []byte) { b[0] &^= 0x40 }), []odSeen{{"", short, 2, 2}}},
		{"sequence gap", mutate(func(b []byte) { b[32] = 3 }), []odSeen{{"", short, 2, 2}}},
		{"sequence 0", mutate(func(b []byte) { b[0] = 0x40 }), []odSeen{{"", short, 2, 2}}},
		{"first entry deleted", mutate(func(b []byte) { b[0] = 0xE5 }), []odSeen{{"", short, 2, 2}}},
		{"last entry deleted", mutate(func(b []byte) { b[32] = 0xE5 }), []odSeen{{"", short, 2, 2}}},
		{"terminator in a middle entry", mutate(func(b []byte) { b[32+1], b[32+2] = 0, 0 }), []odSeen{{"", short, 2, 2}}},
		{"empty name", mutate(func(b []byte) {
			b[1], b[2] = 0, 0
			b[0] = 0x41
			copy(b[32:], b[64:96])
			copy(b[64:], make([]byte, 32))
		}), []odSeen{{"", short, 1, 1}}},
		{"lfn before a volume label", mutate(func(b []byte) { b[64+11] = byte(AttrVolumeID) }), []odSeen{{"", short, 2, 2}}},
		{"sequence too high", mutate(func(b []byte) { b[0] = 0x40 | 21 }), []odSeen{{"", short, 2, 2}}},
		{"stray bit in sequence", mutate(func(b []byte) { b[0] |= 0x80 }), []odSeen{{"", short, 2, 2}}},
		{"restart", append(odDir(t, [2]string{strings.Repeat("x", 30), "IGNORED    "})[:32], good...),
			[]odSeen{{"A long file name.txt", short, 3, 1}}},
		{"orphan before the end", mutate(func(b []byte) { copy(b[64:], make([]byte, 32)) }), nil},
		{"dot entries take no long name", append(odDir(t, [2]string{"x", "A          "})[:32], odDir(t, [2]string{"", ".          "})...),
			[]odSeen{{"", ".          ", 1, 1}}},
	} {
		for _, bs := range []int{32, 64, 512} {
			got, _ := odScan(c.b, bs)
			if !slices.Equal(got, c.want) {
				t.Errorf("%s (blocks of %d): %+v, want %+v", c.name, bs, got, c.want)
			}
		}
	}
}

// Every length from 1 to 255 round-trips, including the multiples of 13
// that have no terminator, across every block split.
func TestLongNameLengths(t *testing.T) {
	for n := 1; n <= MaxLongNameLen; n++ {
		name := strings.Repeat("é", n)
		b := odDir(t, [2]string{name, "E~1        "}, [2]string{"", "NEXT       "})
		want := []odSeen{{name, "E~1        ", (n + 12) / 13, 0}, {"", "NEXT       ", (n+12)/13 + 1, (n+12)/13 + 1}}
		for _, bs := range []int{32, 96, 4096} {
			if got, _ := odScan(b, bs); !slices.Equal(got, want) {
				t.Fatalf("length %d, blocks of %d: %+v", n, bs, got)
			}
		}
	}
	// 256 units do not fit: AppendEntries refuses, and a forged 20-entry
	// run of 260 units is ignored.
	if _, err := AppendEntries(nil, strings.Repeat("x", 256), &ShortEntry{}); err == nil {
		t.Error("256 units accepted")
	}
	b := odDir(t, [2]string{strings.Repeat("x", 255), "X~1        "})
	// Fill the terminator and padding of the first (highest) entry.
	for _, off := range lfnOffsets {
		binary.LittleEndian.PutUint16(b[off:], 'y')
	}
	got, _ := odScan(b, 4096)
	if len(got) != 1 || got[0].long != "" {
		t.Errorf("260-unit name: %+v", got)
	}
}

func TestScannerFreeAndEnd(t *testing.T) {
	b := odDir(t, [2]string{"", "A          "}, [2]string{"long name b", "LONGNA~1   "}, [2]string{"", "C          "},
		[2]string{"", "D          "})
	b[32] = 0xE5   // the long-name slot of b deleted: b keeps only its short name
	b[4*32] = 0xE5 // D deleted
	b = append(b, make([]byte, 64)...)
	b = append(b, odDir(t, [2]string{"", "HIDDEN     "})...) // after the end marker: ignored
	for _, bs := range []int{32, 64, 1024} {
		got, free := odScan(b, bs)
		want := []odSeen{{"", "A          ", 0, 0}, {"", "LONGNA~1   ", 2, 2}, {"", "C          ", 3, 3}}
		if !slices.Equal(got, want) {
			t.Errorf("blocks of %d: %+v", bs, got)
		}
		slots := map[int]bool{}
		for _, r := range free {
			for i := r[0]; i < r[0]+r[1]; i++ {
				slots[i] = true
			}
		}
		for _, i := range []int{1, 4, 5, 6, 7} {
			if !slots[i] {
				t.Errorf("blocks of %d: slot %d not reported free (%v)", bs, i, free)
			}
		}
		if len(slots) != 5 || slots[2] {
			t.Errorf("blocks of %d: free slots %v", bs, free)
		}
	}
	var s Scanner
	for range s.Entries(b) {
	}
	if !s.Ended() || s.Slots() != 8 {
		t.Errorf("Ended %v Slots %d", s.Ended(), s.Slots())
	}
}

func TestTimeConversions(t *testing.T) {
	utc := time.UTC
	for _, c := range []struct {
		in       time.Time
		date, tm uint16
		cs       uint8
		back     time.Time
	}{
		{time.Date(1980, 1, 1, 0, 0, 0, 0, utc), 0x0021, 0, 0, time.Date(1980, 1, 1, 0, 0, 0, 0, utc)},
		{time.Date(2024, 2, 29, 13, 37, 43, 567_000_000, utc), 44<<9 | 2<<5 | 29, 13<<11 | 37<<5 | 21, 156,
			time.Date(2024, 2, 29, 13, 37, 43, 560_000_000, utc)},
		{time.Date(2107, 12, 31, 23, 59, 59, 990_000_000, utc), 127<<9 | 12<<5 | 31, 23<<11 | 59<<5 | 29, 199,
			time.Date(2107, 12, 31, 23, 59, 59, 990_000_000, utc)},
		{time.Date(1970, 1, 1, 0, 0, 0, 0, utc), 0x0021, 0, 0, time.Date(1980, 1, 1, 0, 0, 0, 0, utc)},
		{time.Date(2200, 1, 1, 0, 0, 0, 0, utc), 127<<9 | 12<<5 | 31, 23<<11 | 59<<5 | 29, 199,
			time.Date(2107, 12, 31, 23, 59, 59, 990_000_000, utc)},
	} {
		d, tm, cs := EncodeTime(c.in, utc)
		if d != c.date || tm != c.tm || cs != c.cs {
			t.Errorf("%v: %#04x %#04x %d, want %#04x %#04x %d", c.in, d, tm, cs, c.date, c.tm, c.cs)
		}
		if back := DecodeTime(d, tm, cs, utc); !back.Equal(c.back) {
			t.Errorf("%v: back %v, want %v", c.in, back, c.back)
		}
	}
	// A zone shifts the fields: FAT times are wall-clock times.
	east := time.FixedZone("east", 3600)
	d, tm, _ := EncodeTime(time.Date(2000, 1, 1, 23, 30, 0, 0, utc), east)
	if got := DecodeTime(d, tm, 0, east); got.Hour() != 0 || got.Day() != 2 || !got.Equal(time.Date(2000, 1, 1, 23, 30, 0, 0, utc)) {
		t.Errorf("zone: %v", got)
	}
	// Corrupt fields decode to something, never panic; date 0 is "unset".
	if !DecodeTime(0, 0xFFFF, 0xFF, utc).IsZero() {
		t.Error("date 0 is not the zero time")
	}
	for _, d := range []uint16{0x0001, 0x01E0, 0xFFFF, 0x0020} {
		_ = DecodeTime(d, 0xFFFF, 0xFF, utc)
	}
	var e ShortEntry
	when := time.Date(2021, 6, 7, 8, 9, 11, 0, utc)
	e.SetCreated(when, utc)
	e.SetModified(when, utc)
	e.SetAccessed(when, utc)
	if !e.Created(utc).Equal(when) || !e.Modified(utc).Equal(when.Add(-time.Second)) ||
		!e.Accessed(utc).Equal(time.Date(2021, 6, 7, 0, 0, 0, 0, utc)) {
		t.Errorf("entry times %v %v %v", e.Created(utc), e.Modified(utc), e.Accessed(utc))
	}
}

func TestSlotMap(t *testing.T) {
	// A directory of 200 slots with free runs at 3..4, 70..79, 150..199.
	m := NewSlotMap(200)
	for _, r := range [][2]int{{3, 2}, {70, 10}, {150, 50}} {
		m.Release(r[0], r[1])
	}
	for _, c := range []struct{ k, at int }{{1, 3}, {2, 3}, {3, 70}, {10, 70}, {11, 150}, {50, 150}, {51, -1}} {
		got, ok := m.Find(c.k)
		if (c.at < 0) == ok || (ok && got != c.at) {
			t.Errorf("Find(%d) = %d %v, want %d", c.k, got, ok, c.at)
		}
	}
	m.Use(150, 50)
	m.Grow(260)
	if got, ok := m.Find(55); !ok || got != 200 || m.Len() != 260 {
		t.Errorf("after Grow: %d %v len %d", got, ok, m.Len())
	}
	if !m.InUse(150) || m.InUse(75) || !m.InUse(-1) || !m.InUse(260) {
		t.Error("InUse")
	}
	// Against a plain model, at every size and pattern.
	r := odRand(3)
	for trial := 0; trial < 200; trial++ {
		n := 1 + r.IntN(600)
		m := NewSlotMap(n)
		model := make([]bool, n)
		for i := range model {
			model[i] = true
		}
		for j := 0; j < 20; j++ {
			f, l := r.IntN(n), r.IntN(40)
			use := r.IntN(3) == 0
			if use {
				m.Use(f, l)
			} else {
				m.Release(f, l)
			}
			for i := f; i < f+l && i < n; i++ {
				model[i] = use
			}
		}
		for k := 1; k < 70; k += 3 {
			want := -1
			for i := 0; i+k <= n && want < 0; i++ {
				if !slices.Contains(model[i:i+k], true) {
					want = i
				}
			}
			got, ok := m.Find(k)
			if (want >= 0) != ok || (ok && got != want) {
				t.Fatalf("n %d k %d: %d %v, want %d", n, k, got, ok, want)
			}
		}
	}
}

func TestVolumeLabel(t *testing.T) {
	for _, c := range []struct {
		in   string
		cp   *CodePage
		want string
		ok   bool
	}{
		{"VDISK TEST", nil, "VDISK TEST ", true},
		{"boot", nil, "boot       ", true}, // case kept, as mkfs.fat and fatlabel keep it
		{" lead", nil, "", false},
		{"del\x7f", nil, "", false},
		{"", nil, "           ", true},
		{"élan", CodePage850, "\x82lan       ", true},
		{"ÉLAN", CodePage850, "\x90LAN       ", true},
		{"12345678901", nil, "12345678901", true},
		{"123456789012", nil, "", false},
		{"a.b", nil, "", false},
		{"a*b", nil, "", false},
		{"tab\t", nil, "", false},
		{"日本", nil, "", false},
	} {
		got, err := EncodeVolumeLabel(c.in, c.cp)
		if c.ok != (err == nil) || (c.ok && string(got[:]) != c.want) {
			t.Errorf("%q: %q %v", c.in, got[:], err)
		}
		if c.ok && FormatVolumeLabel(got, c.cp) != strings.TrimRight(c.in, " ") {
			t.Errorf("%q: formats as %q", c.in, FormatVolumeLabel(got, c.cp))
		}
	}
}
