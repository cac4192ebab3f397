package partition

// What genimage writes, and vdisk build through this package: entry arrays
// moved out of a boot loader's way, no backup GPT, boot code kept in
// sector 0, hybrid MBRs, and a hand-made hybrid (a type EE primary). The
// oracles are util-linux's sfdisk and fdisk, reading both views.

import (
	"bytes"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
)

// genimageTable is a GPT like genimage's hdimage7 and hdimage-hybrid tests
// write: the entry array at 768 KiB, partitions in the order of the
// configuration rather than of their offsets, two of them in a hybrid MBR.
func genimageTable(t *testing.T) *Table {
	t.Helper()
	linux, _ := GPTTypeByName("L")
	esp, _ := GPTTypeByName("esp")
	tab := &Table{Kind: GPT, SectorSize: 512, DiskSize: 32 * MiB,
		DiskGUID: mustGUID("AFCFEA87-E41A-40E0-85AE-295C60773C7A"), DiskID: 0x12345678,
		EntryCount: 128, EntrySize: 128, EntryLBA: 1536, FirstUsableLBA: 1568, LastUsableLBA: 32*2048 - 34,
		HybridMBR: true, BootCode: bytes.Repeat([]byte{0xEB}, 440)}
	add := func(name string, start, size int64, typ GUID, mbr byte, attrs uint64) {
		tab.Partitions = append(tab.Partitions, Partition{Index: len(tab.Partitions) + 1, Number: len(tab.Partitions) + 1,
			Start: start, Size: size, Type: Type{GPT: typ}, Name: name, MBRType: mbr, Attributes: attrs,
			GUID: NewSeeded("genimage").GUID(name)})
	}
	add("rootfs", 8*MiB, 8*MiB, linux, 0x83, AttrReadOnly|AttrNoAutomount)
	add("boot", 2*MiB, 4*MiB, esp, 0x0c, AttrLegacyBIOSBootable)
	add("env", 800<<10, 16<<10, linux, 0, AttrHidden|AttrRequired)
	return tab
}

func TestGenimageGPTFeatures(t *testing.T) {
	testsupport.NeedTool(t, "sfdisk")
	tab := genimageTable(t)
	img := writeImage(t, tab)
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data[:440], tab.BootCode) {
		t.Errorf("sector 0's boot code was not kept")
	}
	// The GPT view: sfdisk sees the moved array through first-lba and the
	// partitions in entry order, with their attributes.
	dump := testsupport.Must(t, "sfdisk", "-d", img)
	for _, want := range []string{
		"label: gpt", "label-id: AFCFEA87-E41A-40E0-85AE-295C60773C7A", "first-lba: 1568",
		`start=       16384, size=       16384, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=` + tab.Partitions[0].GUID.String() + `, name="rootfs", attrs="GUID:60,63"`,
		`start=        4096, size=        8192, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=` + tab.Partitions[1].GUID.String() + `, name="boot", attrs="LegacyBIOSBootable"`,
		`start=        1600, size=          32, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=` + tab.Partitions[2].GUID.String() + `, name="env", attrs="RequiredPartition GUID:62"`,
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("sfdisk -d lacks %q:\n%s", want, dump)
		}
	}
	for i, p := range tab.Partitions {
		if got := AttributeNames(p.Attributes); !strings.Contains(dump, `attrs="`+got+`"`) {
			t.Errorf("partition %d: AttributeNames = %q, which sfdisk does not print", i+1, got)
		}
	}
	// The MBR view: the hybrid entries first, in table order, then the EE
	// entry over the header and the moved array.
	out := testsupport.Must(t, "fdisk", "-l", "-t", "dos", img)
	var rows []string
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, img); ok {
			rows = append(rows, strings.Join(strings.Fields(rest), " "))
		}
	}
	wantRows := []string{"1 16384 32767 16384 8M 83 Linux", "2 * 4096 12287 8192 4M c W95 FAT32 (LBA)", "3 1 1567 1567 783.5K ee GPT"}
	if !strings.Contains(out, "Disk identifier: 0x12345678") || !reflect.DeepEqual(rows, wantRows) {
		t.Errorf("fdisk -t dos: %q, want %q:\n%s", rows, wantRows, out)
	}
	// Read gives the table back (boot code aside, which Read leaves nil).
	got, warns := readImage(t, img, 0)
	want := *tab
	want.BootCode = nil
	if !reflect.DeepEqual(got, &want) {
		t.Errorf("Read after Write:\n%+v\nwant\n%+v\nwarnings %v", got, &want, warns)
	}
}

func TestGenimageNoBackup(t *testing.T) {
	testsupport.NeedTool(t, "sfdisk")
	tab := genimageTable(t)
	tab.NoBackup, tab.HybridMBR, tab.BootCode = true, false, nil
	for i := range tab.Partitions {
		tab.Partitions[i].MBRType = 0
	}
	img := writeImage(t, tab)
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if tail := data[len(data)-33*512:]; !bytes.Equal(tail, make([]byte, len(tail))) {
		t.Errorf("a backup GPT was written")
	}
	if alt := le.Uint64(data[512+32:]); alt != 1 {
		t.Errorf("primary header names LBA %d as its backup, want 1 as genimage writes", alt)
	}
	// sfdisk complains about the missing backup but reads the table.
	cmd := exec.Command("sfdisk", "-d", img)
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "first-lba: 1568") || !strings.Contains(string(out), `name="env"`) {
		t.Errorf("sfdisk -d of a GPT without backup:\n%s", out)
	}
	got, warns := readImage(t, img, 0)
	if len(got.Partitions) != 3 || got.EntryLBA != 1536 || len(warns) == 0 {
		t.Errorf("Read of a GPT without backup: %+v, warnings %v", got, warns)
	}
}

// TestHandMadeHybrid writes what genimage's hdimage-hybrid test compares a
// hybrid MBR with: an MBR whose fourth entry is type EE over the GPT.
func TestHandMadeHybrid(t *testing.T) {
	hybrid := genimageTable(t)
	hybrid.EntryLBA, hybrid.FirstUsableLBA, hybrid.BootCode = 0, 34, nil
	d := writeMem(t, hybrid)
	plain := &Table{Kind: MBR, SectorSize: 512, DiskSize: hybrid.DiskSize, DiskID: hybrid.DiskID, Partitions: []Partition{
		{Index: 1, Number: 1, Start: 8 * MiB, Size: 8 * MiB, Type: Type{MBR: 0x83}},
		{Index: 2, Number: 2, Start: 2 * MiB, Size: 4 * MiB, Type: Type{MBR: 0x0c}, Bootable: true},
		{Index: 3, Number: 3, Start: 512, Size: 33 * 512, Type: Type{MBR: 0xee}},
	}}
	p := writeMem(t, plain)
	if !bytes.Equal(d[:512], p[:512]) {
		t.Errorf("hybrid MBR and the hand-made one differ:\n%x\n%x", d[:512], p[:512])
	}
}

// TestTypeNamesMatchSfdisk compares the descriptions of every MBR byte and
// of the GPT types both know with util-linux's.
func TestTypeNamesMatchSfdisk(t *testing.T) {
	testsupport.NeedTool(t, "sfdisk")
	for _, label := range []string{"dos", "gpt"} {
		n := 0
		for _, line := range strings.Split(testsupport.Must(t, "sfdisk", "--label", label, "-T"), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 || f[0] == "Id" || f[0] == "0" {
				continue
			}
			id, name := f[0], strings.TrimSpace(line[strings.Index(line, f[0])+len(f[0]):])
			var ty Type
			if label == "gpt" {
				g, err := ParseGUID(id)
				if err != nil {
					continue
				}
				if _, known := gptNames[g]; !known {
					continue // sfdisk knows more GPT types than genimage names
				}
				ty.GPT = g
			} else {
				var b byte
				if _, err := fmtSscanHex(id, &b); err != nil {
					t.Fatalf("sfdisk -T line %q", line)
				}
				ty.MBR = b
			}
			if got := ty.Description(); got != name {
				t.Errorf("%s type %s: Description %q, sfdisk says %q", label, id, got, name)
			}
			n++
		}
		if n < 50 {
			t.Errorf("%s: only %d types compared", label, n)
		}
	}
}

// TestGPTTypeByName checks genimage's shortcut names, case included.
func TestGPTTypeByName(t *testing.T) {
	for name, want := range map[string]string{
		"L": "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "linux-generic": "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
		"u": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "ESP": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
		"root-x86-64": "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", "usr-loongarch64-verity-sig": "B024F315-D330-444C-8461-44BBDE524E99",
		"F": "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", "u-boot-env": "3DE21764-95BD-54BD-A5C3-4ABE786F38A8",
	} {
		if g, ok := GPTTypeByName(name); !ok || g.String() != want {
			t.Errorf("GPTTypeByName(%q) = %v, %v; want %s", name, g, ok, want)
		}
	}
	if _, ok := GPTTypeByName("unknown-shortcut"); ok {
		t.Errorf("an unknown name resolved")
	}
}

// TestNameGUID checks the RFC 9562 name-based derivation against the RFC's
// own example and against Python's uuid.uuid5.
func TestNameGUID(t *testing.T) {
	dns := mustGUID("6BA7B810-9DAD-11D1-80B4-00C04FD430C8")
	if got := NameGUID(dns, "www.example.com"); got.String() != "2ED6657D-E927-568B-95E1-2665A8AEA6A2" {
		t.Errorf("NameGUID(DNS, www.example.com) = %v, want RFC 9562's 2ED6657D-E927-568B-95E1-2665A8AEA6A2", got)
	}
	py := testsupport.NeedTool(t, "python3")
	names := []string{"", "disk", "sdcard.img/rootfs", "Ünïcödé ✓", strings.Repeat("x", 300)}
	var script strings.Builder
	script.WriteString("import uuid,sys\nns=uuid.UUID(sys.argv[1])\n")
	for _, n := range names {
		script.WriteString("print(uuid.uuid5(ns, " + pyString(n) + "))\n")
	}
	ns := NewSeeded("seed").GUID("ns")
	out, err := exec.Command(py, "-c", script.String(), ns.String()).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(out))
	for i, n := range names {
		if got := NameGUID(ns, n).String(); !strings.EqualFold(got, lines[i]) {
			t.Errorf("NameGUID(%v, %q) = %s, Python says %s", ns, n, got, lines[i])
		}
	}
	s := NewSeeded("a")
	if s.GUID("x") == NewSeeded("b").GUID("x") || s.GUID("x") == s.GUID("y") || s.Sub("i").GUID("x") == s.GUID("x") {
		t.Errorf("different seeds or names gave the same GUID")
	}
	if s.GUID("x") != NewSeeded("a").GUID("x") || s.Uint32("x") == 0 {
		t.Errorf("the same seed and name gave different identities")
	}
}

func pyString(s string) string {
	var b strings.Builder
	b.WriteString(`"`)
	for _, r := range s {
		b.WriteString(`\U` + strings.ToUpper(strings.TrimLeft(hex8(uint32(r)), "")))
	}
	b.WriteString(`"`)
	return b.String()
}

func hex8(v uint32) string {
	const digits = "0123456789abcdef"
	var b [8]byte
	for i := 7; i >= 0; i-- {
		b[i] = digits[v&15]
		v >>= 4
	}
	return string(b[:])
}

func fmtSscanHex(s string, b *byte) (int, error) {
	var v uint64
	for _, c := range s {
		v = v*16 + uint64(hexDigit(byte(c)))
		if hexDigit(byte(c)) < 0 || v > 255 {
			return 0, os.ErrInvalid
		}
	}
	*b = byte(v)
	return 1, nil
}

func hexDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// TestNewSeeded: with Seeded, New's identities are name-based: the same
// seed gives the same table, another seed another one, and a partition
// keeps its GUID when one is added after it.
func TestNewSeeded(t *testing.T) {
	specs := []Spec{{MiB, "esp", "EFI"}, {2 * MiB, "linux", "root"}}
	s := NewSeeded("seed")
	a, err := New(GPT, 16*MiB, 512, specs, &Options{Seeded: &s})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New(GPT, 16*MiB, 512, append(specs, Spec{MiB, "linux", "home"}), &Options{Seeded: &s})
	if a.DiskGUID != s.GUID("disk") || a.Partitions[0].GUID != b.Partitions[0].GUID || a.Partitions[1].GUID != b.Partitions[1].GUID {
		t.Errorf("seeded GUIDs changed: %+v / %+v", a, b)
	}
	o := NewSeeded("other")
	c, _ := New(GPT, 16*MiB, 512, specs, &Options{Seeded: &o})
	if c.DiskGUID == a.DiskGUID || c.Partitions[0].GUID == a.Partitions[0].GUID {
		t.Errorf("another seed gave the same GUIDs")
	}
	m, _ := New(MBR, 16*MiB, 512, specs, &Options{Seeded: &s})
	if m.DiskID != s.Uint32("disk") {
		t.Errorf("MBR disk signature %08x, want the seed's %08x", m.DiskID, s.Uint32("disk"))
	}
}
