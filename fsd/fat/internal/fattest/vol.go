package fat

// Test helpers of the on-disk layer. Names start with "od" so they do not
// collide with the FSD's own test helpers in this package.

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// odNeed skips a test when an outside oracle is not installed.
func odNeed(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: the oracle tests need dosfstools and mtools (apt-get install dosfstools mtools)", tool)
		}
	}
}

// odRun runs a tool and returns its output and exit code; it fails the test
// only if the tool cannot be started.
func odRun(t testing.TB, name string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "LC_ALL=C.UTF-8", "TZ=UTC")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	}
	t.Fatalf("%s %q: %v", name, args, err)
	return "", -1
}

// odMust runs a tool that must succeed.
func odMust(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, code := odRun(t, name, args...)
	if code != 0 {
		t.Fatalf("%s %q exited %d:\n%s", name, args, code, out)
	}
	return out
}

// odMkfs makes an image with mkfs.fat: size in KiB, extra options.
func odMkfs(t testing.TB, kib int, opts ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vol.img")
	args := append([]string{"-C", "--invariant"}, opts...)
	args = append(args, p, strconv.Itoa(kib))
	odMust(t, "mkfs.fat", args...)
	return p
}

// odVol is an image in memory with its parsed metadata: enough of a file
// system to read trees and to place entries by hand, built only on the
// package's on-disk API.
type odVol struct {
	t    testing.TB
	path string
	img  []byte
	bs   *BootSector
	g    Geometry
	fat  *Table
	cp   *CodePage
	// pages of img handed out for writing since the last flush (4 KiB
	// units); flush writes only those, so big sparse images stay cheap.
	pages map[int64]bool
}

// at is img[off:off+n], marked for writing back.
func (v *odVol) at(off, n int64) []byte {
	for p := off >> 12; p <= (off+n-1)>>12; p++ {
		v.pages[p] = true
	}
	return v.img[off : off+n]
}

func odOpen(t testing.TB, path string) *odVol {
	t.Helper()
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := &odVol{t: t, path: path, img: img, cp: CodePage850, pages: map[int64]bool{}}
	v.bs, err = ParseBootSector(img)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	v.g, _ = v.bs.Geometry()
	off := v.g.FATOffset(v.g.ActiveFAT)
	fat := append([]byte(nil), img[off:off+v.g.FATBytes()]...)
	v.fat, err = NewTable(&v.g, fat)
	if err != nil {
		t.Fatal(err)
	}
	if v.g.FSInfoSector != 0 {
		s := int64(v.g.FSInfoSector) * int64(v.g.BytesPerSector)
		if fi, err := ParseFSInfo(img[s : s+512]); err == nil {
			v.fat.SetNextFree(fi.Sanitized(&v.g).NextFree)
		}
	}
	return v
}

// cluster is the bytes of cluster c in the image.
func (v *odVol) cluster(c uint32) []byte {
	return v.at(v.g.ClusterOffset(c), int64(v.g.ClusterSize))
}

// dirBlocks is a directory's storage as blocks in order: the fixed root
// directory (first 0 on FAT12/16) or the clusters of its chain.
func (v *odVol) dirBlocks(first uint32) [][]byte {
	v.t.Helper()
	if first == 0 && v.g.Type != FAT32 {
		return [][]byte{v.at(v.g.RootDirOffset(), v.g.RootDirBytes())}
	}
	if first == 0 {
		first = v.g.RootCluster
	}
	exts, err := v.fat.Chain(first)
	if err != nil {
		v.t.Fatalf("directory chain: %v", err)
	}
	var blocks [][]byte
	for _, e := range exts {
		for c := e.Start; c < e.Start+e.Len; c++ {
			blocks = append(blocks, v.cluster(c))
		}
	}
	return blocks
}

// readDir decodes a directory.
func (v *odVol) readDir(first uint32) []DirEntry {
	var s Scanner
	var out []DirEntry
	for _, b := range v.dirBlocks(first) {
		for e := range s.Entries(b) {
			out = append(out, e)
		}
	}
	return out
}

// slot is the 32 bytes of slot i of a directory's blocks.
func odSlot(blocks [][]byte, i int) []byte {
	bs := len(blocks[0]) / DirEntrySize
	b := blocks[i/bs]
	return b[i%bs*DirEntrySize : (i%bs+1)*DirEntrySize]
}

// addEntry places the slots of (long, e) in directory first: in the first
// run of free slots long enough (found with a SlotMap built from the
// scan), extending a cluster directory when needed.
func (v *odVol) addEntry(first uint32, long string, e *ShortEntry) {
	v.t.Helper()
	slots, err := AppendEntries(nil, long, e)
	if err != nil {
		v.t.Fatal(err)
	}
	k := len(slots) / DirEntrySize
	for {
		blocks := v.dirBlocks(first)
		m := NewSlotMap(len(blocks) * len(blocks[0]) / DirEntrySize)
		var s Scanner
		s.Free = m.Release
		for _, b := range blocks {
			for range s.Entries(b) {
			}
		}
		if at, ok := m.Find(k); ok {
			for j := 0; j < k; j++ {
				copy(odSlot(blocks, at+j), slots[j*DirEntrySize:])
			}
			return
		}
		if first == 0 && v.g.Type != FAT32 {
			v.t.Fatalf("root directory full")
		}
		dir := first
		if dir == 0 {
			dir = v.g.RootCluster
		}
		exts, err := v.fat.Chain(dir)
		if err != nil {
			v.t.Fatal(err)
		}
		last := exts[len(exts)-1]
		add, err := v.fat.Allocate(1, 0, last.Start+last.Len-1)
		if err != nil {
			v.t.Fatal(err)
		}
		clear(v.cluster(add[0].Start))
	}
}

// names is the set of short names in a directory, for GenerateShortName.
func (v *odVol) names(first uint32) map[ShortName]bool {
	m := map[ShortName]bool{}
	for _, e := range v.readDir(first) {
		m[e.Name] = true
	}
	return m
}

// writeData allocates a chain for data and fills it; 0 for empty data.
func (v *odVol) writeData(data []byte) uint32 {
	v.t.Helper()
	if len(data) == 0 {
		return 0
	}
	cs := int(v.g.ClusterSize)
	exts, err := v.fat.Allocate(uint32((len(data)+cs-1)/cs), 0, 0)
	if err != nil {
		v.t.Fatal(err)
	}
	off := 0
	for _, e := range exts {
		for c := e.Start; c < e.Start+e.Len; c++ {
			dst := v.cluster(c)
			clear(dst)
			off += copy(dst, data[off:])
		}
	}
	return exts[0].Start
}

// readData reads a file's bytes through its chain.
func (v *odVol) readData(e *ShortEntry) ([]byte, uint32, error) {
	exts, err := v.fat.Chain(e.StartCluster(v.g.Type))
	if err != nil {
		return nil, 0, err
	}
	var out []byte
	for _, x := range exts {
		for c := x.Start; c < x.Start+x.Len; c++ {
			out = append(out, v.cluster(c)...)
		}
	}
	n := uint32(ExtentClusters(exts))
	if uint64(len(out)) < uint64(e.Size) {
		return out, n, errors.New("chain shorter than the file size")
	}
	return out[:e.Size], n, nil
}

// flush writes the FAT to every copy, the FSInfo sector, and the image file.
func (v *odVol) flush() {
	v.t.Helper()
	fat := v.fat.Bytes()
	v.fat.DirtySectors(func(first, n uint32) {
		lo, hi := int64(first)*int64(v.g.BytesPerSector), int64(first+n)*int64(v.g.BytesPerSector)
		for i := uint32(0); i < v.g.NumFATs; i++ {
			if !v.g.Mirrored && i != v.g.ActiveFAT {
				continue
			}
			copy(v.at(v.g.FATOffset(i)+lo, hi-lo), fat[lo:hi])
		}
	})
	v.fat.ClearDirty()
	if v.g.FSInfoSector != 0 {
		s := int64(v.g.FSInfoSector) * int64(v.g.BytesPerSector)
		fi := FSInfo{FreeCount: v.fat.FreeCount(), NextFree: v.fat.NextFree()}
		if err := fi.Encode(v.at(s, 512)); err != nil {
			v.t.Fatal(err)
		}
	}
	// The boot sector and its backup, which tests change in place.
	v.at(0, 512)
	if b := v.g.BackupBootSector; b != 0 {
		v.at(int64(b)*int64(v.g.BytesPerSector), 512)
	}
	f, err := os.OpenFile(v.path, os.O_WRONLY, 0)
	if err != nil {
		v.t.Fatal(err)
	}
	defer f.Close()
	for p := range v.pages {
		end := min((p+1)<<12, int64(len(v.img)))
		if _, err := f.WriteAt(v.img[p<<12:end], p<<12); err != nil {
			v.t.Fatal(err)
		}
	}
	clear(v.pages)
}

func odRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed*7+1)) }

var odGenSeeds = flag.Bool("odgenseeds", false, "rewrite the on-disk fuzz seed corpora in testdata/fuzz")

// TestOndiskFuzzSeeds rewrites the seed corpora from mkfs.fat images filled
// by mtools: boot sectors of every format, directory clusters with long
// names, and FAT prefixes with real chains.
func TestOndiskFuzzSeeds(t *testing.T) {
	if !*odGenSeeds {
		t.Skip("run with -odgenseeds to rewrite testdata/fuzz")
	}
	odNeed(t, "mkfs.fat", "mcopy")
	write := func(fuzzer, name string, vals ...any) {
		dir := filepath.Join("testdata", "fuzz", fuzzer)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		sb.WriteString("go test fuzz v1\n")
		for _, v := range vals {
			switch v := v.(type) {
			case []byte:
				fmt.Fprintf(&sb, "[]byte(%q)\n", v)
			case uint8:
				fmt.Fprintf(&sb, "uint8(%d)\n", v)
			case uint16:
				fmt.Fprintf(&sb, "uint16(%d)\n", v)
			case uint32:
				fmt.Fprintf(&sb, "uint32(%d)\n", v)
			case string:
				fmt.Fprintf(&sb, "string(%q)\n", v)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range odFormats {
		img := odMkfs(t, f.kib, f.opts...)
		if f.name != "fat32-small" {
			odFill(t, img)
		}
		v := odOpen(t, img)
		write("FuzzBootSector", f.name, v.img[:512])
		// The first cluster of the root directory, or 2 KiB of the fixed one.
		blocks := v.dirBlocks(0)
		root := blocks[0][:min(2048, len(blocks[0]))]
		write("FuzzDirEntries", f.name, root, uint16(7))
		fat := v.fat.Bytes()
		write("FuzzFATChain", f.name, fat[:min(768, len(fat))], uint8(f.typ/16), uint32(2), uint8(5))
	}
	for i, s := range []string{"foo.txt", "Foo.TXT", "hello world.html", "日本語.txt", "emoji 😀.txt", ".bashrc", "a+b=c;d [1].txt",
		"two..dots", "trailing. . ", strings.Repeat("x", 255), "a\x01b", "LONGFI~1.TXT"} {
		write("FuzzShortName", fmt.Sprintf("seed%02d", i), s)
	}
}
