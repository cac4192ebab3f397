package fattest

import (
	"errors"
	"os"
	"testing"

	"github.com/vdisk-dev/vdisk/fsd/fat/internal/ondisk"
)

// Vol is an image in memory with its parsed metadata: enough of a file
// system to read trees and to place entries by hand, built only on the
// on-disk layer's API. Flush writes what changed back to the image file.
type Vol struct {
	t    testing.TB
	path string
	Img  []byte
	Boot *ondisk.BootSector
	Geo  ondisk.Geometry
	FAT  *ondisk.Table
	CP   *ondisk.CodePage
	// pages of Img handed out for writing since the last flush (4 KiB
	// units); flush writes only those, so big sparse images stay cheap.
	pages map[int64]bool
}

// At is Img[off:off+n], marked for writing back.
func (v *Vol) At(off, n int64) []byte {
	for p := off >> 12; p <= (off+n-1)>>12; p++ {
		v.pages[p] = true
	}
	return v.Img[off : off+n]
}

// Open reads the image at path and parses its boot sector, geometry, active
// FAT and FSInfo hint; short names decode with code page 850, as mtools
// writes them.
func Open(t testing.TB, path string) *Vol {
	t.Helper()
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := &Vol{t: t, path: path, Img: img, CP: ondisk.CodePage850, pages: map[int64]bool{}}
	v.Boot, err = ondisk.ParseBootSector(img)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	v.Geo, _ = v.Boot.Geometry()
	off := v.Geo.FATOffset(v.Geo.ActiveFAT)
	fat := append([]byte(nil), img[off:off+v.Geo.FATBytes()]...)
	v.FAT, err = ondisk.NewTable(&v.Geo, fat)
	if err != nil {
		t.Fatal(err)
	}
	if v.Geo.FSInfoSector != 0 {
		s := int64(v.Geo.FSInfoSector) * int64(v.Geo.BytesPerSector)
		if fi, err := ondisk.ParseFSInfo(img[s : s+512]); err == nil {
			v.FAT.SetNextFree(fi.Sanitized(&v.Geo).NextFree)
		}
	}
	return v
}

// Cluster is the bytes of cluster c in the image.
func (v *Vol) Cluster(c uint32) []byte {
	return v.At(v.Geo.ClusterOffset(c), int64(v.Geo.ClusterSize))
}

// DirBlocks is a directory's storage as blocks in order: the fixed root
// directory (first 0 on FAT12/16) or the clusters of its chain.
func (v *Vol) DirBlocks(first uint32) [][]byte {
	v.t.Helper()
	if first == 0 && v.Geo.Type != ondisk.FAT32 {
		return [][]byte{v.At(v.Geo.RootDirOffset(), v.Geo.RootDirBytes())}
	}
	if first == 0 {
		first = v.Geo.RootCluster
	}
	exts, err := v.FAT.Chain(first)
	if err != nil {
		v.t.Fatalf("directory chain: %v", err)
	}
	var blocks [][]byte
	for _, e := range exts {
		for c := e.Start; c < e.Start+e.Len; c++ {
			blocks = append(blocks, v.Cluster(c))
		}
	}
	return blocks
}

// ReadDir decodes a directory.
func (v *Vol) ReadDir(first uint32) []ondisk.DirEntry {
	var s ondisk.Scanner
	var out []ondisk.DirEntry
	for _, b := range v.DirBlocks(first) {
		for e := range s.Entries(b) {
			out = append(out, e)
		}
	}
	return out
}

// Slot is the 32 bytes of slot i of a directory's blocks.
func Slot(blocks [][]byte, i int) []byte {
	bs := len(blocks[0]) / ondisk.DirEntrySize
	b := blocks[i/bs]
	return b[i%bs*ondisk.DirEntrySize : (i%bs+1)*ondisk.DirEntrySize]
}

// AddEntry places the slots of (long, e) in directory first: in the first
// run of free slots long enough (found with a SlotMap built from the
// scan), extending a cluster directory when needed.
func (v *Vol) AddEntry(first uint32, long string, e *ondisk.ShortEntry) {
	v.t.Helper()
	slots, err := ondisk.AppendEntries(nil, long, e)
	if err != nil {
		v.t.Fatal(err)
	}
	k := len(slots) / ondisk.DirEntrySize
	for {
		blocks := v.DirBlocks(first)
		m := ondisk.NewSlotMap(len(blocks) * len(blocks[0]) / ondisk.DirEntrySize)
		var s ondisk.Scanner
		s.Free = m.Release
		for _, b := range blocks {
			for range s.Entries(b) {
			}
		}
		if at, ok := m.Find(k); ok {
			for j := 0; j < k; j++ {
				copy(Slot(blocks, at+j), slots[j*ondisk.DirEntrySize:])
			}
			return
		}
		if first == 0 && v.Geo.Type != ondisk.FAT32 {
			v.t.Fatalf("root directory full")
		}
		dir := first
		if dir == 0 {
			dir = v.Geo.RootCluster
		}
		exts, err := v.FAT.Chain(dir)
		if err != nil {
			v.t.Fatal(err)
		}
		last := exts[len(exts)-1]
		add, err := v.FAT.Allocate(1, 0, last.Start+last.Len-1)
		if err != nil {
			v.t.Fatal(err)
		}
		clear(v.Cluster(add[0].Start))
	}
}

// Names is the set of short names in a directory, for GenerateShortName.
func (v *Vol) Names(first uint32) map[ondisk.ShortName]bool {
	m := map[ondisk.ShortName]bool{}
	for _, e := range v.ReadDir(first) {
		m[e.Name] = true
	}
	return m
}

// WriteData allocates a chain for data and fills it; 0 for empty data.
func (v *Vol) WriteData(data []byte) uint32 {
	v.t.Helper()
	if len(data) == 0 {
		return 0
	}
	cs := int(v.Geo.ClusterSize)
	exts, err := v.FAT.Allocate(uint32((len(data)+cs-1)/cs), 0, 0)
	if err != nil {
		v.t.Fatal(err)
	}
	off := 0
	for _, e := range exts {
		for c := e.Start; c < e.Start+e.Len; c++ {
			dst := v.Cluster(c)
			clear(dst)
			off += copy(dst, data[off:])
		}
	}
	return exts[0].Start
}

// ReadData reads a file's bytes through its chain.
func (v *Vol) ReadData(e *ondisk.ShortEntry) ([]byte, uint32, error) {
	exts, err := v.FAT.Chain(e.StartCluster(v.Geo.Type))
	if err != nil {
		return nil, 0, err
	}
	var out []byte
	for _, x := range exts {
		for c := x.Start; c < x.Start+x.Len; c++ {
			out = append(out, v.Cluster(c)...)
		}
	}
	n := uint32(ondisk.ExtentClusters(exts))
	if uint64(len(out)) < uint64(e.Size) {
		return out, n, errors.New("chain shorter than the file size")
	}
	return out[:e.Size], n, nil
}

// Flush writes the FAT to every copy, the FSInfo sector, and the image file.
func (v *Vol) Flush() {
	v.t.Helper()
	fat := v.FAT.Bytes()
	v.FAT.DirtySectors(func(first, n uint32) {
		lo, hi := int64(first)*int64(v.Geo.BytesPerSector), int64(first+n)*int64(v.Geo.BytesPerSector)
		for i := uint32(0); i < v.Geo.NumFATs; i++ {
			if !v.Geo.Mirrored && i != v.Geo.ActiveFAT {
				continue
			}
			copy(v.At(v.Geo.FATOffset(i)+lo, hi-lo), fat[lo:hi])
		}
	})
	v.FAT.ClearDirty()
	if v.Geo.FSInfoSector != 0 {
		s := int64(v.Geo.FSInfoSector) * int64(v.Geo.BytesPerSector)
		fi := ondisk.FSInfo{FreeCount: v.FAT.FreeCount(), NextFree: v.FAT.NextFree()}
		if err := fi.Encode(v.At(s, 512)); err != nil {
			v.t.Fatal(err)
		}
	}
	// The boot sector and its backup, which tests change in place.
	v.At(0, 512)
	if b := v.Geo.BackupBootSector; b != 0 {
		v.At(int64(b)*int64(v.Geo.BytesPerSector), 512)
	}
	f, err := os.OpenFile(v.path, os.O_WRONLY, 0)
	if err != nil {
		v.t.Fatal(err)
	}
	defer f.Close()
	for p := range v.pages {
		end := min((p+1)<<12, int64(len(v.Img)))
		if _, err := f.WriteAt(v.Img[p<<12:end], p<<12); err != nil {
			v.t.Fatal(err)
		}
	}
	clear(v.pages)
}

// MoveRoot moves a FAT32 root directory to another cluster with the on-disk
// layer's Table and BootSector (mkfs.fat always puts it in cluster 2), and
// checks the result with fsck.fat.
func MoveRoot(t *testing.T, img string, to uint32) {
	t.Helper()
	v := Open(t, img)
	from := v.Geo.RootCluster
	exts, err := v.FAT.Chain(from)
	if err != nil || ondisk.ExtentClusters(exts) != 1 {
		t.Fatalf("root chain %v %v", exts, err)
	}
	if err := v.FAT.Set(to, ondisk.EndOfChain); err != nil {
		t.Fatal(err)
	}
	copy(v.Cluster(to), v.Cluster(from))
	if err := v.FAT.Set(from, 0); err != nil {
		t.Fatal(err)
	}
	v.Boot.RootCluster = to
	for _, s := range []uint32{0, v.Geo.BackupBootSector} {
		if err := v.Boot.Encode(v.Img[int64(s)*int64(v.Geo.BytesPerSector):]); err != nil {
			t.Fatal(err)
		}
	}
	v.Flush()
	if out, code := Run(t, "fsck.fat", "-n", img); code != 0 {
		t.Fatalf("fsck.fat after moving the root to cluster %d: exit %d\n%s", to, code, out)
	}
	if g := Open(t, img).Geo; g.RootCluster != to {
		t.Fatalf("root cluster %d after move", g.RootCluster)
	}
}
