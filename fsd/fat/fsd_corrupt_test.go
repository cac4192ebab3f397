package fat

// Corrupt volumes: each gives a clear error (STATUS_FILE_CORRUPT_ERROR, or
// an unrecognised volume for a bad BPB) within a deadline, never a hang or
// a panic.

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk/fsd/fat/internal/fattest"
	"github.com/vdisk-dev/vdisk/fsd/fat/internal/ondisk"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/vpb"
)

// fxImage is an image file held in memory for patching, with its FAT.
type fxImage struct {
	t   *testing.T
	b   []byte
	g   ondisk.Geometry
	fat *ondisk.Table
}

func fxLoadImage(t *testing.T, path string) *fxImage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := ondisk.ParseBootSector(b)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := bs.Geometry()
	fat, err := ondisk.NewTable(&g, append([]byte(nil), b[g.FATOffset(0):g.FATOffset(0)+g.FATBytes()]...))
	if err != nil {
		t.Fatal(err)
	}
	return &fxImage{t: t, b: b, g: g, fat: fat}
}

// dirBytes returns the bytes of the directory at cluster c (0: the root)
// and the volume offset of each of its bytes' clusters.
func (im *fxImage) dirOffsets(c uint32) []int64 {
	if c == 0 && im.g.Type != ondisk.FAT32 {
		return []int64{im.g.RootDirOffset()}
	}
	if c == 0 {
		c = im.g.RootCluster
	}
	exts, err := im.fat.Chain(c)
	if err != nil {
		im.t.Fatal(err)
	}
	var offs []int64
	for _, e := range exts {
		for k := uint32(0); k < e.Len; k++ {
			offs = append(offs, im.g.ClusterOffset(e.Start+k))
		}
	}
	return offs
}

// find returns the volume offset of the short entry of name in the
// directory at cluster dir, and the entry.
func (im *fxImage) find(dir uint32, name string) (int64, ondisk.ShortEntry) {
	size := int64(im.g.ClusterSize)
	if dir == 0 && im.g.Type != ondisk.FAT32 {
		size = im.g.RootDirBytes()
	}
	var s ondisk.Scanner
	for _, off := range im.dirOffsets(dir) {
		for e := range s.Entries(im.b[off : off+size]) {
			if strings.EqualFold(e.DisplayName(nil), name) {
				return off + int64(e.Slot%int(size/ondisk.DirEntrySize))*ondisk.DirEntrySize, e.ShortEntry
			}
		}
	}
	im.t.Fatalf("%s not found in directory %d", name, dir)
	return 0, ondisk.ShortEntry{}
}

func (im *fxImage) setFAT(c, v uint32) {
	if err := im.fat.Set(c, v); err != nil {
		im.t.Fatal(err)
	}
}

// rawFAT stores a raw FAT16 entry value (for values Set refuses).
func (im *fxImage) rawFAT16(c uint32, v uint16) {
	for i := uint32(0); i < im.g.NumFATs; i++ {
		off := im.g.FATOffset(i) + int64(c)*2
		im.b[off], im.b[off+1] = byte(v), byte(v>>8)
	}
	copy(im.fat.Bytes()[c*2:], im.b[im.g.FATOffset(0)+int64(c)*2:][:2])
}

func (im *fxImage) save(path string) {
	for i := uint32(0); i < im.g.NumFATs; i++ {
		copy(im.b[im.g.FATOffset(i):], im.fat.Bytes())
	}
	if err := os.WriteFile(path, im.b, 0o644); err != nil {
		im.t.Fatal(err)
	}
}

// fxWithin fails the test if fn does not return within the deadline.
func fxWithin(t *testing.T, d time.Duration, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("no answer within %v: a hang", d)
	}
}

func TestCorruptVolumes(t *testing.T) {
	fattest.Need(t, "mkfs.fat")
	// The base: \a.bin (3 clusters), \b.bin (2), \sub\in.txt, on FAT16
	// with 1 KiB clusters.
	base := func(t *testing.T) string {
		img := fattest.Mkfs(t, 16384, "-F", "16", "-s", "2")
		x := fxOpen(t, img, 512, fxOpt{})
		x.create(`\a.bin`, fxContent("a", 3000))
		x.create(`\b.bin`, fxContent("b", 2000))
		x.mkdir(`\sub`)
		x.create(`\sub\in.txt`, []byte("inside"))
		x.close()
		return img
	}
	cases := []struct {
		name  string
		patch func(im *fxImage)
		check func(t *testing.T, x *fxVol)
	}{
		{"circular chain", func(im *fxImage) {
			_, e := im.find(0, "a.bin")
			c := e.StartCluster(ondisk.FAT16)
			im.setFAT(c+2, c) // third cluster back to the first
		}, fxExpectCorrupt(`\a.bin`)},
		{"chain into a free cluster", func(im *fxImage) {
			_, e := im.find(0, "a.bin")
			im.setFAT(e.StartCluster(ondisk.FAT16)+1, 0)
		}, fxExpectCorrupt(`\a.bin`)},
		{"cluster out of range", func(im *fxImage) {
			_, e := im.find(0, "a.bin")
			im.rawFAT16(e.StartCluster(ondisk.FAT16), 0xFFF0)
		}, fxExpectCorrupt(`\a.bin`)},
		{"start cluster out of range", func(im *fxImage) {
			off, e := im.find(0, "b.bin")
			e.FirstCluster = im.g.MaxCluster + 10
			e.Encode(im.b[off:])
		}, fxExpectCorrupt(`\b.bin`)},
		{"size larger than the chain", func(im *fxImage) {
			off, e := im.find(0, "b.bin")
			e.Size = 100000
			e.Encode(im.b[off:])
		}, fxExpectCorrupt(`\b.bin`)},
		{"cross-linked files", func(im *fxImage) {
			_, a := im.find(0, "a.bin")
			off, e := im.find(0, "b.bin")
			e.FirstCluster = a.FirstCluster
			e.Encode(im.b[off:])
		}, func(t *testing.T, x *fxVol) {
			a := x.mustOpen(`\a.bin`, iomgr.GenericRead, iomgr.FileOpen, 0)
			defer fxClose(a)
			fxExpectCorrupt(`\b.bin`)(t, x)
			if err := x.volume().lastError(); err == nil || !strings.Contains(err.Error(), "cross-linked") {
				t.Fatalf("last error %v", err)
			}
		}},
		{"duplicate dot entries", func(im *fxImage) {
			_, sub := im.find(0, "sub")
			off := im.dirOffsets(sub.StartCluster(ondisk.FAT16))[0]
			copy(im.b[off+3*ondisk.DirEntrySize:], im.b[off:off+ondisk.DirEntrySize]) // a second "."
		}, func(t *testing.T, x *fxVol) {
			fxExpectCorrupt(`\sub\in.txt`)(t, x)
			d := x.mustOpen(`\sub`, iomgr.FileListDirectory, iomgr.FileOpen, 0)
			defer fxClose(d)
			if _, st := fxQueryDir(d, "*", iomgr.SLRestartScan, 0); st != iomgr.StatusFileCorruptError {
				t.Fatalf("list: %v", st)
			}
		}},
		{"directory containing itself", func(im *fxImage) {
			_, sub := im.find(0, "sub")
			off, e := im.find(sub.StartCluster(ondisk.FAT16), "in.txt")
			e.Attr = ondisk.AttrDirectory
			e.Size = 0
			e.FirstCluster = sub.FirstCluster
			e.Encode(im.b[off:])
		}, func(t *testing.T, x *fxVol) {
			fxExpectCorrupt(`\sub\in.txt`)(t, x)
			fxExpectCorrupt(`\sub\in.txt\in.txt\in.txt`)(t, x)
		}},
		{"bad BPB", func(im *fxImage) {
			im.b[11], im.b[12] = 0x00, 0x03 // 768 bytes per sector
		}, func(t *testing.T, x *fxVol) {
			fo, _, err := x.open(``, iomgr.GenericRead, iomgr.FileOpen, 0)
			if err != nil {
				t.Fatal(err)
			}
			fxClose(fo)
			if x.vol.VPB().Flags()&vpb.RawMount == 0 {
				t.Fatal("not mounted by RAW")
			}
			if err := x.fs.lastMountError(); !errors.Is(err, ondisk.ErrNotFAT) || !strings.Contains(err.Error(), "768 bytes per sector") {
				t.Fatalf("reason: %v", err)
			}
		}},
		{"root chain cycle (FAT16 is fixed: a subdirectory cycle)", func(im *fxImage) {
			_, sub := im.find(0, "sub")
			im.setFAT(sub.StartCluster(ondisk.FAT16), sub.StartCluster(ondisk.FAT16))
		}, fxExpectCorrupt(`\sub\in.txt`)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := base(t)
			im := fxLoadImage(t, img)
			c.patch(im)
			im.save(img)
			x := fxOpen(t, img, 512, fxOpt{})
			fxWithin(t, 10*time.Second, func() {
				c.check(t, x)
				// The rest of the volume is still usable.
				if x.vol.VPB().Flags()&vpb.RawMount == 0 {
					x.walkTolerant(`\`)
				}
			})
		})
	}
}

func fxExpectCorrupt(path string) func(t *testing.T, x *fxVol) {
	return func(t *testing.T, x *fxVol) {
		t.Helper()
		fo, _, err := x.open(path, iomgr.GenericRead, iomgr.FileOpen, 0)
		if err == nil {
			_, st := fxReadAll(fo)
			fxClose(fo)
			err = st.Err()
		}
		if !errors.Is(err, iomgr.StatusFileCorruptError) {
			t.Fatalf("open %s: %v, want STATUS_FILE_CORRUPT_ERROR", path, err)
		}
		if x.volume().lastError() == nil {
			t.Fatal("the corruption was not recorded")
		}
		t.Logf("%s: %v", path, x.volume().lastError())
	}
}

// walkTolerant lists and reads what can be read, ignoring corrupt parts.
func (x *fxVol) walkTolerant(dir string) {
	fo, _, err := x.open(dir, iomgr.FileListDirectory, iomgr.FileOpen, iomgr.FileDirectoryFile)
	if err != nil {
		return
	}
	es, _ := fxList(fo, "*")
	fxClose(fo)
	for _, e := range es {
		p := strings.TrimSuffix(dir, `\`) + `\` + e.FileName
		if e.FileAttributes&iomgr.FileAttributeDirectory != 0 {
			if strings.Count(p, `\`) < 8 {
				x.walkTolerant(p)
			}
			continue
		}
		if f, _, err := x.open(p, iomgr.GenericRead, iomgr.FileOpen, 0); err == nil {
			fxReadAll(f)
			fxClose(f)
		}
	}
}

func TestCorruptFAT32RootChainFailsTheMount(t *testing.T) {
	img := fattest.Mkfs(t, 40000, "-F", "32", "-s", "1")
	im := fxLoadImage(t, img)
	r := im.g.RootCluster
	im.setFAT(r, r) // the root directory's chain loops
	im.save(img)
	x := fxOpen(t, img, 512, fxOpt{})
	fxWithin(t, 10*time.Second, func() {
		_, _, err := x.open(`\x`, iomgr.GenericRead, iomgr.FileOpen, 0)
		if !errors.Is(err, iomgr.StatusFileCorruptError) {
			t.Fatalf("open on a volume whose root loops: %v", err)
		}
		if err := x.fs.lastMountError(); err == nil || !strings.Contains(err.Error(), "cycle") {
			t.Fatalf("reason: %v", err)
		}
	})
}
