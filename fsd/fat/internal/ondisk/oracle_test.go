package ondisk_test

// Outside oracles for the on-disk layer: images made by mkfs.fat and filled
// by mtools are read with this package and must agree with what fsck.fat -v
// and minfo print and what mdir lists; entries this package encodes, placed
// by hand into mkfs.fat images, must pass fsck.fat -n and be listed by mdir
// with the same long and short names.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk/fsd/fat/internal/fattest"
	"github.com/vdisk-dev/vdisk/fsd/fat/internal/ondisk"
)

// odFormats are the volumes the oracle tests run on: every FAT type,
// several sector and cluster sizes, one FAT, many reserved sectors.
type odFormat struct {
	name string
	kib  int
	opts []string
	typ  ondisk.FATType
}

var odFormats = []odFormat{
	{"fat12-floppy", 1440, nil, ondisk.FAT12},
	{"fat12-4k-clusters", 8000, []string{"-F", "12", "-s", "8", "-f", "1"}, ondisk.FAT12},
	{"fat16", 20000, []string{"-F", "16", "-n", "VDISK TEST", "-i", "1234abcd"}, ondisk.FAT16},
	{"fat16-2k-sectors", 40000, []string{"-F", "16", "-S", "2048", "-r", "1024"}, ondisk.FAT16},
	{"fat32", 300000, []string{"-F", "32", "-R", "40"}, ondisk.FAT32},
	{"fat32-4k-sectors", 280000, []string{"-F", "32", "-S", "4096"}, ondisk.FAT32},
	// Below 65525 clusters: FAT32 by its BPB layout, as fsck.fat and Linux
	// decide. mtools 4.0.32 cannot use it ("No directory slots"), so the
	// mtools tests leave it out.
	{"fat32-small", 33000, []string{"-F", "32", "-I"}, ondisk.FAT32},
}

// odMtoolsFormats are the formats mtools can fill.
func odMtoolsFormats() []odFormat {
	var fs []odFormat
	for _, f := range odFormats {
		if f.name != "fat32-small" {
			fs = append(fs, f)
		}
	}
	return fs
}

func TestOracleBootSector(t *testing.T) {
	fattest.Need(t, "mkfs.fat", "fsck.fat", "minfo")
	for _, f := range odFormats {
		t.Run(f.name, func(t *testing.T) {
			img := fattest.Mkfs(t, f.kib, f.opts...)
			v := fattest.Open(t, img)
			g, bs := v.Geo, v.Boot
			out, code := fattest.Run(t, "fsck.fat", "-v", "-n", img)
			if code != 0 {
				t.Fatalf("fsck.fat on a fresh image exited %d:\n%s", code, out)
			}
			fk := fattest.FsckFields(t, out)
			want := map[string]int64{
				"media":      int64(bs.Media),
				"bps":        int64(g.BytesPerSector),
				"cluster":    int64(g.ClusterSize),
				"reserved":   int64(g.ReservedSectors),
				"fatoff":     g.FATOffset(0),
				"nfats":      int64(g.NumFATs),
				"bits":       int64(g.Type),
				"fatbytes":   g.FATBytes(),
				"dataoff":    g.DataOffset(),
				"clusters":   int64(g.ClusterCount),
				"spt":        int64(bs.SectorsPerTrack),
				"heads":      int64(bs.NumHeads),
				"hidden":     int64(bs.HiddenSectors),
				"total":      int64(g.TotalSectors),
				"totalclus2": int64(g.MaxCluster - 1),
				"usedclus":   int64(g.MaxCluster - 1 - v.FAT.FreeCount()),
			}
			if g.Type == ondisk.FAT32 {
				want["rootclus"] = int64(g.RootCluster)
			} else {
				want["rootoff"] = g.RootDirOffset()
				want["rootents"] = int64(g.RootEntries)
			}
			for k, w := range want {
				if got, ok := fk[k]; !ok || got != w {
					t.Errorf("%s: fsck.fat says %d (found %v), we say %d", k, got, ok, w)
				}
			}
			if g.Type != f.typ {
				t.Errorf("type %v, want %v", g.Type, f.typ)
			}
			if want := g.Type == ondisk.FAT32 && g.ClusterCount < ondisk.MinClustersFAT32; g.NonStandard != want {
				t.Errorf("NonStandard = %v with %d clusters", g.NonStandard, g.ClusterCount)
			}
			if !strings.Contains(out, fmt.Sprintf("System ID %q", strings.TrimRight(string(bs.OEMName[:]), "\x00"))) {
				t.Errorf("OEM name %q not in fsck output", bs.OEMName)
			}

			mi := fattest.Must(t, "minfo", "-i", img, "::")
			mfield := func(pat string) string {
				s := regexp.MustCompile(`(?m)^` + pat).FindStringSubmatch(mi)
				if s == nil {
					t.Fatalf("minfo has no %q:\n%s", pat, mi)
				}
				return s[1]
			}
			if got := mfield(`serial number: ([0-9A-F]+)`); got != fmt.Sprintf("%08X", bs.VolumeID) {
				t.Errorf("serial %s, we say %08X", got, bs.VolumeID)
			}
			if got := mfield(`disk label="(.*)"`); got != string(bs.VolumeLabel[:]) {
				t.Errorf("label %q, we say %q", got, bs.VolumeLabel)
			}
			if l, err := ondisk.EncodeVolumeLabel(ondisk.FormatVolumeLabel(bs.VolumeLabel, ondisk.CodePage850), ondisk.CodePage850); err != nil || l != bs.VolumeLabel {
				t.Errorf("label %q re-encodes as %q, %v", bs.VolumeLabel, l, err)
			}
			if got := mfield(`disk type="(.*)"`); got != string(bs.FSTypeLabel[:]) {
				t.Errorf("type label %q, we say %q", got, bs.FSTypeLabel)
			}
			if got := mfield(`physical drive id: (0x[0-9a-f]+)`); got != fmt.Sprintf("%#x", bs.DriveNumber) {
				t.Errorf("drive %s, we say %#x", got, bs.DriveNumber)
			}
			if got := mfield(`dos4=(0x[0-9a-f]+)`); got != fmt.Sprintf("%#x", bs.BootSignature) {
				t.Errorf("dos4 %s, we say %#x", got, bs.BootSignature)
			}
			if g.Type == ondisk.FAT32 {
				checks := map[string]string{
					`Big fatlen=(\d+)`:             fmt.Sprint(bs.FATSize32),
					`rootCluster=(\d+)`:            fmt.Sprint(bs.RootCluster),
					`infoSector location=(\d+)`:    fmt.Sprint(bs.FSInfoSector),
					`backup boot sector=(\d+)`:     fmt.Sprint(bs.BackupBootSector),
					`Extended flags=(0x[0-9a-f]+)`: fmt.Sprintf("0x%04x", bs.ExtFlags),
				}
				s := int64(g.FSInfoSector) * int64(g.BytesPerSector)
				fi, err := ondisk.ParseFSInfo(v.Img[s : s+512])
				if err != nil {
					t.Fatal(err)
				}
				checks[`free clusters=(\d+)`] = fmt.Sprint(fi.FreeCount)
				checks[`last allocated cluster=(\d+)`] = fmt.Sprint(fi.NextFree)
				for pat, w := range checks {
					if got := mfield(pat); got != w {
						t.Errorf("minfo %s: %s, we say %s", pat, got, w)
					}
				}
				if fi.FreeCount != v.FAT.FreeCount() {
					t.Errorf("FSInfo free count %d, counted %d", fi.FreeCount, v.FAT.FreeCount())
				}
			}
			// The boot sector re-encodes to the same bytes.
			b := make([]byte, 512)
			copy(b, v.Img)
			if err := bs.Encode(b); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, v.Img[:512]) {
				t.Errorf("Encode changed the boot sector")
			}
		})
	}
}

// TestOracleDirtyBits: fsck.fat notices both dirty marks where the helpers
// put them, and nothing once they are cleared.
func TestOracleDirtyBits(t *testing.T) {
	fattest.Need(t, "mkfs.fat", "fsck.fat")
	for _, f := range odFormats {
		t.Run(f.name, func(t *testing.T) {
			img := fattest.Mkfs(t, f.kib, f.opts...)
			v := fattest.Open(t, img)
			check := func(what string, wantDirty bool) {
				t.Helper()
				out, code := fattest.Run(t, "fsck.fat", "-n", img)
				dirty := strings.Contains(out, "Dirty bit is set")
				if dirty != wantDirty || (code != 0) != wantDirty {
					t.Errorf("%s: fsck.fat exit %d, dirty %v, want dirty %v:\n%s", what, code, dirty, wantDirty, out)
				}
			}
			if ondisk.BootSectorDirty(v.Img) || !v.FAT.VolumeClean() {
				t.Fatalf("fresh volume dirty")
			}
			if !ondisk.SetBootSectorDirty(v.Img, true) || !ondisk.BootSectorDirty(v.Img) {
				t.Fatal("SetBootSectorDirty did not change the byte")
			}
			if g := v.Geo; g.BackupBootSector != 0 {
				// Windows marks only the primary; fsck.fat would report the
				// difference, so keep the backup in step for this test.
				off := int64(g.BackupBootSector) * int64(g.BytesPerSector)
				ondisk.SetBootSectorDirty(v.Img[off:], true)
			}
			v.Flush()
			check("boot sector dirty bit", true)
			ondisk.SetBootSectorDirty(v.Img, false)
			if g := v.Geo; g.BackupBootSector != 0 {
				ondisk.SetBootSectorDirty(v.Img[int64(g.BackupBootSector)*int64(g.BytesPerSector):], false)
			}
			v.Flush()
			check("cleared", false)
			if v.Geo.Type == ondisk.FAT12 {
				return // no FAT[1] flags on FAT12
			}
			v.FAT.SetVolumeClean(false)
			if v.FAT.VolumeClean() {
				t.Fatal("SetVolumeClean(false) ignored")
			}
			v.Flush()
			check("FAT[1] clean bit cleared", true)
			v.FAT.SetVolumeClean(true)
			v.Flush()
			check("FAT[1] clean bit set", false)
		})
	}
}

// odTree is the source tree the read tests copy in with mcopy.
type odFile struct {
	path string // slash separated; a trailing slash makes a directory
	size int
}

func odTreeFiles() []odFile {
	files := []odFile{
		{"empty.txt", 0},
		{"README", 10},
		{"lower.txt", 5},
		{"UPPER.txt", 6},
		{"MiXeD.TxT", 7},
		{"hello world.html", 20},
		{"ÕX", 3},             // short name only, stored with the 0x05 escape (code page 850)
		{"Õlong name.txt", 4}, // long name whose short name starts with 0x05
		{"日本語のファイル名.txt", 100},
		{"emoji 😀 name.txt", 9},
		{"abcdefghijklm", 13},              // fills one LFN entry exactly: no terminator
		{"abcdefghijklmnopqrstuvwxyz", 26}, // two
		{strings.Repeat("L", 251) + ".txt", 255},
		{".hidden", 1},
		{"a+b=c;d [1].txt", 2},
		{"archive.tar.gz", 4097},
		{"big.bin", 200_000},
		{"d1/", 0},
		{"d1/Sub Dir/", 0},
		{"empty dir/", 0},
	}
	deep := "d1/Sub Dir"
	for i := 0; i < 12; i++ {
		deep += fmt.Sprintf("/level %d", i)
		files = append(files, odFile{deep + "/", 0})
	}
	files = append(files, odFile{deep + "/deep file.txt", 42})
	files = append(files, odFile{"many/", 0})
	for i := 0; i < 150; i++ {
		files = append(files, odFile{fmt.Sprintf("many/long file name number %03d.txt", i), i})
	}
	return files
}

func odContent(path string, size int) []byte {
	r := rand.New(rand.NewPCG(uint64(len(path)), uint64(size)))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

// odFill creates the tree under a temporary directory and mcopies it in.
func odFill(t *testing.T, img string) {
	t.Helper()
	src := t.TempDir()
	for _, f := range odTreeFiles() {
		p := filepath.Join(src, filepath.FromSlash(f.path))
		if strings.HasSuffix(f.path, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, odContent(f.path, f.size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-i", img, "-s"}
	for _, e := range ents {
		args = append(args, filepath.Join(src, e.Name()))
	}
	fattest.Must(t, "mcopy", append(args, "::/")...)
}

// odWalk lists a tree the way mdir -/ -b does ("::/a/b", directories with a
// trailing slash), checks every file's data and chain length, and that no
// cluster is in two chains.
func odWalk(t *testing.T, v *fattest.Vol, want map[string][]byte) []string {
	t.Helper()
	claims := v.FAT.NewClusterSet()
	var out []string
	var walk func(first uint32, prefix string, depth int)
	walk = func(first uint32, prefix string, depth int) {
		if depth > 64 {
			t.Fatalf("directory tree deeper than 64 at %s", prefix)
		}
		ents := v.ReadDir(first)
		for i, e := range ents {
			if e.IsVolumeLabel() {
				continue
			}
			if e.Name.IsDot() {
				// "." and ".." come first, pointing at this directory and
				// its parent (0 for the root).
				if i > 1 || (e.Name == ondisk.DotName && e.StartCluster(v.Geo.Type) != first) {
					t.Errorf("%s: misplaced or wrong %q entry %+v", prefix, e.Name.String(), e.ShortEntry)
				}
				continue
			}
			name := e.DisplayName(v.CP)
			p := prefix + name
			c := e.StartCluster(v.Geo.Type)
			exts, err := v.FAT.Chain(c)
			if err != nil {
				t.Errorf("%s: %v", p, err)
				continue
			}
			if err := claims.Claim(exts); err != nil {
				t.Errorf("%s: %v", p, err)
			}
			if e.IsDir() {
				out = append(out, p+"/")
				sub := v.ReadDir(c)
				if len(sub) < 2 || sub[1].Name != ondisk.DotDotName {
					t.Errorf("%s: no '..' entry", p)
				} else if pc := sub[1].StartCluster(v.Geo.Type); pc != first {
					t.Errorf("%s: '..' points at %d, parent is %d", p, pc, first)
				}
				walk(c, p+"/", depth+1)
				continue
			}
			out = append(out, p)
			data, n, err := v.ReadData(&e.ShortEntry)
			if err != nil {
				t.Errorf("%s: %v", p, err)
				continue
			}
			if wantN := (uint64(e.Size) + uint64(v.Geo.ClusterSize) - 1) / uint64(v.Geo.ClusterSize); uint64(n) != wantN {
				t.Errorf("%s: %d bytes in %d clusters, want %d", p, e.Size, n, wantN)
			}
			if w, ok := want[p]; ok && !bytes.Equal(w, data) {
				t.Errorf("%s: data read through the chain differs from what mcopy wrote", p)
			}
		}
	}
	root := uint32(0)
	walk(root, "::/", 0)
	return out
}

// odMdirNames is mdir -/ -b's listing.
func odMdirNames(t *testing.T, img string) []string {
	t.Helper()
	out := fattest.Must(t, "mdir", "-i", img, "-/", "-b", "::/")
	var names []string
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if l != "" {
			names = append(names, l)
		}
	}
	return names
}

// TestOracleReadTree reads trees mtools wrote (long, Unicode, mixed-case,
// lower-case 8.3, 0x05-escaped, deep, many-entry, empty and multi-cluster
// files) and must list exactly what mdir lists, with every file's data
// intact through its chain.
func TestOracleReadTree(t *testing.T) {
	fattest.Need(t, "mkfs.fat", "fsck.fat", "mcopy", "mdir")
	want := map[string][]byte{}
	for _, f := range odTreeFiles() {
		if !strings.HasSuffix(f.path, "/") {
			want["::/"+f.path] = odContent(f.path, f.size)
		}
	}
	formats := append(odMtoolsFormats(), odFormat{"fat32-root-moved", 300000, []string{"-F", "32"}, ondisk.FAT32})
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			img := fattest.Mkfs(t, f.kib, f.opts...)
			if f.name == "fat32-root-moved" {
				fattest.MoveRoot(t, img, 777)
			}
			odFill(t, img)
			if out, code := fattest.Run(t, "fsck.fat", "-n", img); code != 0 {
				t.Fatalf("fsck.fat on the mtools image: exit %d\n%s", code, out)
			}
			v := fattest.Open(t, img)
			got := odWalk(t, v, want)
			mdir := odMdirNames(t, img)
			slices.Sort(got)
			slices.Sort(mdir)
			if !slices.Equal(got, mdir) {
				for _, n := range mdir {
					if !slices.Contains(got, n) {
						t.Errorf("mdir lists %q, we do not", n)
					}
				}
				for _, n := range got {
					if !slices.Contains(mdir, n) {
						t.Errorf("we list %q, mdir does not", n)
					}
				}
			}
			if n := len(odTreeFiles()); len(got) != n {
				t.Errorf("%d names, want %d", len(got), n)
			}
			// The 0x05 escape: the short-only entry "ÕX" is stored with
			// 0x05 and read back as 0xE5 (Õ in code page 850).
			found := false
			for _, e := range v.ReadDir(0) {
				if e.LongName == "" && e.Name[0] == 0xE5 {
					found = true
					if e.DisplayName(ondisk.CodePage850) != "ÕX" {
						t.Errorf("0xE5 entry reads %q", e.DisplayName(ondisk.CodePage850))
					}
				}
			}
			if !found {
				t.Errorf("no short name starting with 0xE5 in the root")
			}
		})
	}
}

// odMdirEntries parses mdir -/ -a: for each path, the short name as
// "BASE.EXT" (as mdir shows it) and the long name ("" if none).
func odMdirEntries(t *testing.T, img string) map[string][2]string {
	t.Helper()
	out := fattest.Must(t, "mdir", "-i", img, "-/", "-a", "::/")
	reDir := regexp.MustCompile(`^Directory for (::/.*)$`)
	reEnt := regexp.MustCompile(`^(.{8}) (.{3}) +(?:<DIR>|\d+) +\d{4}-\d\d-\d\d +\d+:\d\d(.*)$`)
	m := map[string][2]string{}
	dir := ""
	for _, l := range strings.Split(out, "\n") {
		if s := reDir.FindStringSubmatch(l); s != nil {
			dir = strings.TrimSuffix(s[1], "/") + "/"
			continue
		}
		s := reEnt.FindStringSubmatch(l)
		if s == nil || dir == "" {
			continue
		}
		short := strings.TrimRight(s[1], " ")
		if ext := strings.TrimRight(s[2], " "); ext != "" {
			short += "." + ext
		}
		if short == "." || short == ".." {
			continue
		}
		long := ""
		if len(s[3]) > 2 {
			long = s[3][2:]
		}
		name := long
		if name == "" {
			name = short
		}
		m[dir+name] = [2]string{short, long}
	}
	return m
}

// TestOracleWriteEntries places entries this package encodes (short names
// from GenerateShortName, long names, "." and "..", chains from Allocate)
// into mkfs.fat images; fsck.fat -n must accept them and mdir must list the
// same long and short names, sizes and times, and mcopy must read the data.
func TestOracleWriteEntries(t *testing.T) {
	fattest.Need(t, "mkfs.fat", "fsck.fat", "mcopy", "mdir")
	stamp := time.Date(2024, 2, 29, 13, 37, 42, 0, time.UTC)
	names := []string{
		"hello world.html", "Foo.txt", "lower.txt", "UPPER.txt", "other.TXT", "README", "MAKEFILE",
		"x.tar.gz", ".bashrc", "a+b=c;d [1].txt", "résumé.doc", "日本語.txt",
		"abcdefghijklm", "abcdefghijklmnopqrstuvwxyz", strings.Repeat("n", 255), " leading space",
		"two..dots", "a.b.c.d", "~tilde", "UPPERCASELONGNAME.TEXT",
	}
	for i := 0; i < 9; i++ { // ~1..~4, then the hashed form
		names = append(names, fmt.Sprintf("Long File Name %d.txt", i))
	}
	// Not here: names outside the Basic Multilingual Plane. This package
	// stores them as UTF-16 surrogate pairs, as Windows does; mtools 4.0.32
	// truncates them to one 16-bit unit when writing and shows a pair as
	// "__" (TestLongNameSurrogates checks the layout instead).
	for _, f := range odMtoolsFormats() {
		t.Run(f.name, func(t *testing.T) {
			img := fattest.Mkfs(t, f.kib, f.opts...)
			v := fattest.Open(t, img)
			type placed struct {
				path  string
				short ondisk.ShortName
				c     ondisk.CaseFlags
				long  string
				data  []byte
			}
			var all []placed
			add := func(dir uint32, prefix, name string, isDir bool, data []byte) uint32 {
				t.Helper()
				have := v.Names(dir)
				sn, c, needLFN, err := ondisk.GenerateShortName(name, func(s ondisk.ShortName) bool { return have[s] })
				if err != nil {
					t.Fatalf("%q: %v", name, err)
				}
				e := ondisk.ShortEntry{Name: sn, Attr: ondisk.AttrArchive, Size: uint32(len(data))}
				e.SetCase(c)
				e.SetCreated(stamp, time.UTC)
				e.SetModified(stamp, time.UTC)
				e.SetAccessed(stamp, time.UTC)
				first := v.WriteData(data)
				if isDir {
					e.Attr, e.Size = ondisk.AttrDirectory, 0
					ex, err := v.FAT.Allocate(1, 0, 0)
					if err != nil {
						t.Fatal(err)
					}
					first = ex[0].Start
					cl := v.Cluster(first)
					clear(cl)
					parent := dir
					if v.Geo.Type == ondisk.FAT32 && parent == v.Geo.RootCluster {
						parent = 0
					}
					dot, dotdot := ondisk.DotEntries(first, parent, &e)
					dot.Encode(cl[0:])
					dotdot.Encode(cl[32:])
				}
				e.FirstCluster = first
				long := ""
				if needLFN {
					long = name
				}
				v.AddEntry(dir, long, &e)
				all = append(all, placed{prefix + name, sn, c, long, data})
				return first
			}
			for i, n := range names {
				add(0, "::/", n, false, odContent(n, i*1000))
			}
			// Delete an entry (slots marked 0xE5, chain freed): a new entry of
			// the same slot count takes its place.
			var old ondisk.DirEntry
			for _, e := range v.ReadDir(0) {
				if e.LongName == "hello world.html" {
					old = e
				}
			}
			blocks := v.DirBlocks(0)
			for i := old.FirstSlot; i <= old.Slot; i++ {
				fattest.Slot(blocks, i)[0] = 0xE5
			}
			if _, err := v.FAT.FreeChain(old.StartCluster(v.Geo.Type)); err != nil {
				t.Fatal(err)
			}
			all = slices.DeleteFunc(all, func(p placed) bool { return p.long == "hello world.html" })
			add(0, "::/", "reused name.txt", false, []byte("reused"))
			for _, e := range v.ReadDir(0) {
				if e.LongName == "reused name.txt" && (e.FirstSlot != old.FirstSlot || e.Slot != old.Slot) {
					t.Errorf("new entry in slots %d..%d, the deleted one had %d..%d", e.FirstSlot, e.Slot, old.FirstSlot, old.Slot)
				}
			}
			d := add(0, "::/", "A Directory", true, nil)
			for i := 0; i < 40; i++ { // more than a cluster of entries on small clusters
				add(d, "::/A Directory/", fmt.Sprintf("entry with a long name %d", i), false, []byte{byte(i)})
			}
			sub := add(d, "::/A Directory/", "sub", true, nil)
			add(sub, "::/A Directory/sub/", "Deep File.Txt", false, []byte("deep"))
			v.Flush()

			if out, code := fattest.Run(t, "fsck.fat", "-n", img); code != 0 {
				t.Fatalf("fsck.fat on entries we wrote: exit %d\n%s", code, out)
			}
			mdir := odMdirEntries(t, img)
			for _, p := range all {
				shown := p.path
				if p.long == "" {
					// mdir shows a short-only name with the case flags applied.
					dir := p.path[:strings.LastIndex(p.path, "/")+1]
					shown = dir + p.short.Format(nil, p.c)
				}
				got, ok := mdir[shown]
				if !ok {
					t.Errorf("mdir does not list %q", shown)
					continue
				}
				wantShort := p.short.String()
				if p.long == "" {
					wantShort = p.short.Format(nil, p.c)
				}
				if got[0] != wantShort || got[1] != p.long {
					t.Errorf("%s: mdir shows short %q long %q, we wrote %q %q", p.path, got[0], got[1], wantShort, p.long)
				}
				delete(mdir, shown)
			}
			for p := range mdir {
				t.Errorf("mdir lists %q, which we did not write", p)
			}
			var shorts []string
			for _, p := range all[:len(names)-1] {
				shorts = append(shorts, p.short.String())
			}
			t.Logf("%d entries agree with mdir; root short names: %s", len(all), strings.Join(shorts, " "))
			// Times: mdir prints the stored write time as it is.
			out := fattest.Must(t, "mdir", "-i", img, "::/README")
			if !strings.Contains(out, stamp.Format("2006-01-02  15:04")) {
				t.Errorf("mdir shows another time than %v:\n%s", stamp, out)
			}
			// Data: mcopy reads back what the chains hold.
			dst := t.TempDir()
			for _, p := range all[:5] {
				if len(p.data) == 0 {
					continue
				}
				o := filepath.Join(dst, "out")
				fattest.Must(t, "mcopy", "-n", "-o", "-i", img, p.path, o)
				b, err := os.ReadFile(o)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b, p.data) {
					t.Errorf("%s: mcopy reads %d bytes that differ from what we wrote", p.path, len(b))
				}
			}
			// And this package reads its own tree back the same way.
			if got := len(odWalk(t, fattest.Open(t, img), nil)); got != len(all) {
				t.Errorf("walk finds %d names, wrote %d", got, len(all))
			}
		})
	}
}
