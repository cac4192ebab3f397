package partition

// Outside oracles: util-linux's sfdisk and fdisk (libfdisk) and partx
// (libblkid) must agree with this package about every table either side
// writes.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
)

// newImage makes a sparse image file.
func newImage(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeImage(t *testing.T, tab *Table) string {
	t.Helper()
	p := newImage(t, tab.DiskSize)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := tab.Write(f); err != nil {
		t.Fatal(err)
	}
	return p
}

func readImage(t *testing.T, path string, ss int) (*Table, []Warning) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	tab, warns, err := ReadSectorSize(f, st.Size(), ss)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return tab, warns
}

// oTable is what an oracle reports, in sectors, with every partition
// (the MBR extended container included) in Linux-number order.
type oTable struct {
	Label      string
	ID         string
	FirstLBA   int64
	LastLBA    int64
	SectorSize int
	Parts      []oPart
}

type oPart struct {
	Number      int
	Start, Size int64
	Type        string
	UUID, Name  string
	Attrs       uint64
	Bootable    bool
}

// expect turns a Table into what the oracles should report. Fields an
// oracle cannot see are cleared by the caller.
func expect(tab *Table) oTable {
	ss := int64(tab.SectorSize)
	o := oTable{SectorSize: tab.SectorSize}
	all := append([]Partition(nil), tab.Partitions...)
	if tab.Kind == MBR {
		o.Label, o.ID = "dos", fmt.Sprintf("0x%08x", tab.DiskID)
		if tab.Extended != nil {
			all = append(all, *tab.Extended)
		}
	} else {
		o.Label, o.ID = "gpt", tab.DiskGUID.String()
		o.FirstLBA, o.LastLBA = tab.FirstUsableLBA, tab.LastUsableLBA
	}
	for _, p := range all {
		q := oPart{Number: p.Number, Start: p.Start / ss, Size: p.Size / ss, Type: p.Type.String(),
			Name: p.Name, Attrs: p.Attributes, Bootable: p.Bootable}
		if tab.Kind == GPT {
			q.UUID = p.GUID.String()
		}
		o.Parts = append(o.Parts, q)
	}
	sortParts(o.Parts)
	return o
}

func sortParts(ps []oPart) {
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && ps[j].Number < ps[j-1].Number; j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}

var nodeNumber = regexp.MustCompile(`[0-9]+$`)

// sfdiskJSON runs sfdisk -J on a 512-byte-sector image (or a device).
func sfdiskJSON(t *testing.T, path string) oTable {
	t.Helper()
	var j struct {
		PT struct {
			Label, ID, Device string
			FirstLBA, LastLBA int64
			SectorSize        int
			Partitions        []struct {
				Node, Type, UUID, Name, Attrs string
				Start, Size                   int64
				Bootable                      bool
			}
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal([]byte(testsupport.Must(t, "sfdisk", "-J", path)), &j); err != nil {
		t.Fatal(err)
	}
	o := oTable{Label: j.PT.Label, ID: j.PT.ID, FirstLBA: j.PT.FirstLBA, LastLBA: j.PT.LastLBA, SectorSize: j.PT.SectorSize}
	for _, p := range j.PT.Partitions {
		n, _ := strconv.Atoi(nodeNumber.FindString(p.Node))
		o.Parts = append(o.Parts, oPart{Number: n, Start: p.Start, Size: p.Size, Type: p.Type, UUID: p.UUID,
			Name: p.Name, Attrs: sfdiskAttrs(t, p.Attrs), Bootable: p.Bootable})
	}
	sortParts(o.Parts)
	return o
}

// sfdiskAttrs decodes sfdisk's attribute text, e.g.
// "RequiredPartition LegacyBIOSBootable GUID:60,63".
func sfdiskAttrs(t *testing.T, s string) uint64 {
	var a uint64
	for _, f := range strings.Fields(s) {
		switch {
		case f == "RequiredPartition":
			a |= 1
		case f == "NoBlockIOProtocol":
			a |= 2
		case f == "LegacyBIOSBootable":
			a |= 4
		case strings.HasPrefix(f, "GUID:"):
			for _, b := range strings.Split(f[5:], ",") {
				n, err := strconv.Atoi(b)
				if err != nil {
					t.Fatalf("attrs %q", s)
				}
				a |= 1 << n
			}
		default:
			t.Fatalf("unknown attribute %q", f)
		}
	}
	return a
}

var (
	partxField = regexp.MustCompile(`([A-Z]+)="([^"]*)"`)
	partxHex   = regexp.MustCompile(`\\x[0-9a-f]{2}`)
	fdiskID    = regexp.MustCompile(`(?m)^Disk identifier: (\S+)$`)
)

// partxList asks libblkid (through partx) for the partitions of an image with
// any sector size, and fdisk for the disk identifier: sfdisk 2.38 cannot
// override the sector size of an image file.
func partxList(t *testing.T, path string, ss int) oTable {
	t.Helper()
	s := strconv.Itoa(ss)
	o := oTable{SectorSize: ss}
	if m := fdiskID.FindStringSubmatch(testsupport.Must(t, "fdisk", "-b", s, "-l", path)); m != nil {
		o.ID = m[1]
	}
	out := testsupport.Must(t, "partx", "-P", "-S", s, "-o", "NR,START,SECTORS,TYPE,UUID,NAME,FLAGS,SCHEME", path)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := map[string]string{}
		for _, m := range partxField.FindAllStringSubmatch(line, -1) {
			f[m[1]] = partxHex.ReplaceAllStringFunc(m[2], func(h string) string {
				b, _ := strconv.ParseUint(h[2:], 16, 8)
				return string([]byte{byte(b)})
			})
		}
		o.Label = f["SCHEME"]
		n, _ := strconv.Atoi(f["NR"])
		start, _ := strconv.ParseInt(f["START"], 10, 64)
		size, _ := strconv.ParseInt(f["SECTORS"], 10, 64)
		flags, _ := strconv.ParseUint(f["FLAGS"], 0, 64)
		// partx counts in 512-byte units whatever the sector size.
		p := oPart{Number: n, Start: start * 512 / int64(ss), Size: size * 512 / int64(ss), Name: f["NAME"]}
		if o.Label == "gpt" {
			p.Type, p.UUID, p.Attrs = strings.ToUpper(f["TYPE"]), strings.ToUpper(f["UUID"]), flags
		} else {
			p.Type, p.Bootable = strings.TrimPrefix(f["TYPE"], "0x"), flags == 0x80
		}
		o.Parts = append(o.Parts, p)
	}
	sortParts(o.Parts)
	return o
}

func compareOracle(t *testing.T, oracle string, got, want oTable) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s reports\n%+v\nwant\n%+v", oracle, got, want)
	}
}

// vdiskTables are written by this package and read by the oracles.
func vdiskTables(t *testing.T, ss int) map[string]*Table {
	gpt := mustNew(t, GPT, 200*MiB, ss, []Spec{{64 * MiB, "esp", "EFI system"}, {8 * MiB, "fat12", "Données ☃"},
		{8 * MiB, "raw", strings.Repeat("n", 36)}, {Rest, "linux", "root"}}, 11)
	gpt.Partitions[0].Attributes = 1 | 4 | 1<<60 | 1<<63
	gpt.Partitions[2].Number = 7 // gaps in the entry array
	gpt.Partitions[3].Number = 9
	mbr := mustNew(t, MBR, 200*MiB, ss, []Spec{{32 * MiB, "esp", ""}, {8 * MiB, "fat16", ""}}, 12)
	mbr.Partitions[0].Bootable = true
	logical := mustNew(t, MBR, 200*MiB, ss, []Spec{{8 * MiB, "fat12", ""}, {8 * MiB, "fat16", ""}, {8 * MiB, "fat32", ""},
		{8 * MiB, "esp", ""}, {8 * MiB, "linux", ""}, {8 * MiB, "raw", ""}, {Rest, "fat32", ""}}, 13)
	logical.Partitions[4].Bootable = true
	big := mustNew(t, MBR, 20<<30, ss, []Spec{{MiB, "esp", ""}, {MiB, "raw", ""}, {MiB, "raw", ""},
		{Rest, "linux", ""}, {MiB, "fat32", ""}}, 14)
	return map[string]*Table{"gpt": gpt, "mbr": mbr, "mbr-logicals": logical, "mbr-20GiB": big}
}

func TestSfdiskReadsVdisk(t *testing.T) {
	testsupport.NeedTool(t, "sfdisk")
	for name, tab := range vdiskTables(t, 512) {
		t.Run(name, func(t *testing.T) {
			img := writeImage(t, tab)
			compareOracle(t, "sfdisk -J", sfdiskJSON(t, img), expect(tab))
			if out := testsupport.Must(t, "sfdisk", "--verify", img); !strings.Contains(out, "No errors detected") {
				t.Errorf("sfdisk --verify:\n%s", out)
			}
		})
	}
}

func TestPartxReadsVdisk4096(t *testing.T) {
	testsupport.NeedTool(t, "fdisk")
	testsupport.NeedTool(t, "partx")
	for name, tab := range vdiskTables(t, 4096) {
		t.Run(name, func(t *testing.T) {
			img := writeImage(t, tab)
			want := expect(tab)
			want.FirstLBA, want.LastLBA = 0, 0
			compareOracle(t, "partx -S 4096", partxList(t, img, 4096), want)
		})
	}
}

// TestMBRBytesMatchSfdisk has sfdisk write the same layout and compares the
// sectors: partition entries, CHS fields, EBR links.
func TestMBRBytesMatchSfdisk(t *testing.T) {
	testsupport.NeedTool(t, "sfdisk")
	for _, name := range []string{"mbr", "mbr-logicals", "mbr-20GiB"} {
		t.Run(name, func(t *testing.T) {
			tab := vdiskTables(t, 512)[name]
			mine := writeImage(t, tab)
			dump := testsupport.Must(t, "sfdisk", "-d", mine)
			theirs := newImage(t, tab.DiskSize)
			testsupport.Cmd{Stdin: dump}.Must(t, "sfdisk", "--no-reread", "--no-tell-kernel", "-q", theirs)
			sectors := []int64{0}
			for _, p := range tab.Partitions {
				if p.Logical {
					sectors = append(sectors, p.EBR)
				}
			}
			for _, off := range sectors {
				if x, y := testsupport.ReadAt(t, mine, off+440, 72), testsupport.ReadAt(t, theirs, off+440, 72); !bytes.Equal(x, y) {
					t.Errorf("sector at byte %d:\nvdisk  % x\nsfdisk % x", off, x, y)
				}
			}
		})
	}
}

func TestVdiskReadsSfdisk(t *testing.T) {
	testsupport.NeedTool(t, "sfdisk")
	scripts := map[string]string{
		"dos": `label: dos
label-id: 0x12345678
size=10MiB, type=c, bootable
size=10MiB, type=83
type=5
size=5MiB, type=83
size=5MiB, type=6, bootable
size=3MiB, type=da
size=7MiB, type=ef
`,
		"dos-slots": `label: dos
disk.img3 : start=2048, size=2048, type=83
disk.img1 : size=1MiB, type=c
disk.img4 : type=f
disk.img5 : size=1MiB, type=1
`,
		"gpt": `label: gpt
label-id: 01234567-89AB-CDEF-0123-456789ABCDEF
size=10MiB, type=U, name="EFI System", uuid=11111111-2222-3333-4444-555555555555
size=10MiB, type=L, name="Données ☃", attrs="RequiredPartition,LegacyBIOSBootable,GUID:60,63"
size=1MiB, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="abcdefghijklmnopqrstuvwxyz0123456789"
type=L
`,
		"gpt-small-array": `label: gpt
table-length: 8
first-lba: 34
disk.img3 : start=34, size=100, type=L, name="three"
disk.img1 : size=1MiB, name="one"
`,
	}
	for name, script := range scripts {
		t.Run(name, func(t *testing.T) {
			img := newImage(t, 100*MiB)
			testsupport.Cmd{Stdin: script}.Must(t, "sfdisk", "--no-reread", "--no-tell-kernel", "-q", img)
			tab, warns := readImage(t, img, 0)
			if len(warns) > 0 {
				t.Errorf("warnings: %q", warns)
			}
			want := sfdiskJSON(t, img)
			if name == "gpt-small-array" && (tab.EntryCount != 8 || tab.FirstUsableLBA != 34) {
				t.Errorf("entries %d, first LBA %d", tab.EntryCount, tab.FirstUsableLBA)
			}
			compareOracle(t, "vdisk (against sfdisk -J)", expect(tab), want)
			checkIndexes(t, tab)
			// What Read accepted, Write reproduces for sfdisk too.
			again := writeImage(t, tab)
			compareOracle(t, "sfdisk -J of the rewritten table", sfdiskJSON(t, again), want)
		})
	}
}

func checkIndexes(t *testing.T, tab *Table) {
	t.Helper()
	for i, p := range tab.Partitions {
		if p.Index != i+1 {
			t.Errorf("partition %d has Index %d", i+1, p.Index)
		}
	}
}

func TestVdiskReadsFdisk4096(t *testing.T) {
	testsupport.NeedTool(t, "fdisk")
	testsupport.NeedTool(t, "partx")
	scripts := map[string]string{
		// fdisk dialogue: new GPT, two partitions, ESP type, names in the
		// expert menu.
		"gpt": "g\nn\n1\n\n+10M\nt\n1\nn\n2\n\n+20M\nn\n4\n\n+8M\nx\nn\n1\nmy esp\nn\n2\nhello wörld\nr\nw\n",
		// new DOS table: bootable primary, extended, three logicals.
		"dos": "o\nn\np\n1\n\n+10M\na\nn\ne\n2\n\n\nn\n\n+5M\nn\n\n+5M\nt\n5\n6\nn\n\n+3M\nw\n",
	}
	for name, script := range scripts {
		t.Run(name, func(t *testing.T) {
			img := newImage(t, 100*MiB)
			testsupport.Cmd{Stdin: script}.Must(t, "fdisk", "-b", "4096", img)
			ss := 0 // a GPT's sector size is detected
			if name == "dos" {
				ss = 4096
			}
			tab, warns := readImage(t, img, ss)
			if len(warns) > 0 {
				t.Errorf("warnings: %q", warns)
			}
			if tab.SectorSize != 4096 {
				t.Fatalf("sector size %d", tab.SectorSize)
			}
			got := expect(tab)
			got.FirstLBA, got.LastLBA = 0, 0
			compareOracle(t, "vdisk (against partx -S 4096)", got, partxList(t, img, 4096))
			checkIndexes(t, tab)
		})
	}
}

// TestVdiskReadsMkfsFatMBR: an image made by mkfs.fat --mbr=y (dosfstools),
// whose MBR's one partition is the volume at sector 0, is a superfloppy,
// for FAT12, 16 and 32 alike.
func TestVdiskReadsMkfsFatMBR(t *testing.T) {
	testsupport.NeedTool(t, "mkfs.fat")
	for _, fat := range []string{"12", "16", "32"} {
		t.Run("FAT"+fat, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "disk.img")
			testsupport.Must(t, "mkfs.fat", "--mbr=y", "-F", fat, "-C", img, "65536")
			if b := readSector0(t, img); b[446+4] == 0 || le.Uint32(b[446+8:]) != 0 {
				t.Fatalf("mkfs.fat --mbr=y wrote no partition at sector 0: % x", b[446:462])
			}
			tab, warns := readImage(t, img, 0)
			if tab.Kind != None || len(warns) > 0 {
				t.Fatalf("Read = %+v, %q; want a superfloppy", tab, warns)
			}
		})
	}
}

func readSector0(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 512)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}
