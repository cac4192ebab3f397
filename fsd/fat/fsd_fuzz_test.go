package fat

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/fsd/fat/internal/fattest"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/mount"
)

var fxGenSeeds = flag.Bool("fat.genseeds", false, "rewrite the FuzzMount seed corpus in testdata/fuzz/FuzzMount")

// FuzzMount mounts an image whose bytes come from the fuzzer, lists the
// tree, reads every file and makes a few changes, with a deadline: no
// panic (not even one the driver's last line of defence recovers), no
// hang. Seeds: small mkfs.fat FAT12 images in testdata/fuzz/FuzzMount (and
// one of them marked dirty, fat12-64k-tree-dirty, so that the mount runs
// the ownership pass).
func FuzzMount(f *testing.F) {
	f.Fuzz(func(t *testing.T, img []byte) {
		if len(img) < 512 || len(img) > 8<<20 {
			return
		}
		// The device is as large as the boot sector says (up to a limit), so
		// inputs can leave out trailing zeros.
		size := int64(len(img))
		bps := int64(img[11]) | int64(img[12])<<8
		total := int64(img[19]) | int64(img[20])<<8
		if total == 0 {
			total = int64(img[32]) | int64(img[33])<<8 | int64(img[34])<<16 | int64(img[35])<<24
		}
		if want := bps * total; want > size && want <= 8<<20 {
			size = want
		}
		size = (size + 511) / 512 * 512
		store, err := disk.NewMemStore(size)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.WriteAt(img, 0); err != nil {
			t.Fatal(err)
		}
		x := fxOpenStore(t, store, 512, fxOpt{}, "")
		fxWithin(t, 20*time.Second, func() { fxExercise(x) })
		x.mu.Lock()
		defer x.mu.Unlock()
		for _, l := range x.logs {
			if strings.Contains(l, "internal error") {
				t.Fatalf("the driver panicked: %s", l)
			}
		}
	})
}

// fxExercise does what FuzzMount checks: list, read, change, dismount.
func fxExercise(x *fxVol) {
	root, _, err := x.open(`\`, iomgr.GenericRead, iomgr.FileOpen, iomgr.FileDirectoryFile)
	if err != nil {
		return
	}
	budget := 300
	var walk func(dir string, depth int)
	walk = func(dir string, depth int) {
		fo, _, err := x.open(dir, iomgr.FileListDirectory, iomgr.FileOpen, iomgr.FileDirectoryFile)
		if err != nil {
			return
		}
		es, _ := fxList(fo, "*")
		fxClose(fo)
		for _, e := range es {
			if budget--; budget < 0 {
				return
			}
			p := strings.TrimSuffix(dir, `\`) + `\` + e.FileName
			if e.FileAttributes&iomgr.FileAttributeDirectory != 0 {
				if depth < 4 {
					walk(p, depth+1)
				}
				continue
			}
			if f, _, err := x.open(p, iomgr.GenericRead, iomgr.FileOpen, 0); err == nil {
				fxReadAll(f)
				fxClose(f)
			}
		}
	}
	walk(`\`, 0)
	// Changes, on whatever the volume holds.
	if fo, _, err := x.open(`\Fuzz New File.txt`, fxAll, iomgr.FileOverwriteIf, 0); err == nil {
		fxWrite(fo, 0, fxContent("fuzz", 5000))
		fxWrite(fo, 10000, []byte("tail"))
		fxSetEOF(fo, 300)
		fxRename(fo, `\renamed.txt`, true)
		fxDelete(fo)
		fxClose(fo)
	}
	if fo, _, err := x.open(`\fuzzdir`, fxAll, iomgr.FileOpenIf, iomgr.FileDirectoryFile); err == nil {
		if f2, _, err := x.open(`\fuzzdir\inner`, fxAll, iomgr.FileCreate, 0); err == nil {
			fxWrite(f2, 0, []byte("inner"))
			fxClose(f2)
		}
		fxClose(fo)
	}
	if es, _ := fxList(root, "*"); len(es) > 0 {
		e := es[0]
		if fo, _, err := x.open(`\`+e.FileName, fxAll, iomgr.FileOpen, 0); err == nil {
			fxSetEOF(fo, 1)
			fxDelete(fo)
			fxClose(fo)
		}
	}
	fxCall(root, iomgr.MajorFlushBuffers, 0, nil)
	fxClose(root)
	_ = x.mm.Dismount(x.vol, mount.DismountOptions{Force: true})
}

// TestFuzzMountSeeds writes the seed corpus (with -fat.genseeds; the same
// images start internal/ondisk's FuzzOwnership corpus) and runs the
// exercise on freshly made images of every type.
func TestFuzzMountSeeds(t *testing.T) {
	fattest.Need(t, "mkfs.fat")
	seeds := map[string][]byte{}
	for _, c := range []struct {
		name string
		kib  int
		opts []string
		fill bool
	}{
		{"fat12-64k-empty", 64, nil, false},
		{"fat12-64k-tree", 64, []string{"-n", "SEED"}, true},
		{"fat12-64k-4k-clusters", 64, []string{"-s", "8", "-f", "1", "-r", "16"}, true},
	} {
		img := fattest.Mkfs(t, c.kib, c.opts...)
		if c.fill {
			x := fxOpen(t, img, 512, fxOpt{})
			x.mkdir(`\Sub Directory`)
			x.create(`\Sub Directory\A long file name.txt`, fxContent("s", 3000))
			x.create(`\README`, []byte("readme"))
			x.create(`\ünïcode.bin`, fxContent("u", 700))
			x.create(`\empty`, nil)
			x.close()
		}
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		seeds[c.name] = b
	}
	if *fxGenSeeds {
		testsupport.WriteSeeds(t, filepath.Join("testdata", "fuzz", "FuzzMount"), seeds)
		// The ownership pass's fuzzer (internal/ondisk) starts from the
		// same images; its seed test (-odgenseeds) adds damaged copies.
		testsupport.WriteSeeds(t, filepath.Join("internal", "ondisk", "testdata", "fuzz", "FuzzOwnership"), seeds)
	}
	// Every type, through the same exercise.
	for _, l := range fxLayouts[:3] {
		img := fattest.Mkfs(t, l.kib, l.mkfs...)
		x := fxOpen(t, img, l.sectorSize, fxOpt{})
		x.create(`\x.txt`, []byte("x"))
		x.close()
		b, _ := os.ReadFile(img)
		seeds[l.name] = b
	}
	for name, b := range seeds {
		t.Run(name, func(t *testing.T) {
			store, _ := disk.NewMemStore(int64(len(b)))
			store.WriteAt(b, 0)
			x := fxOpenStore(t, store, 512, fxOpt{}, "")
			fxWithin(t, 20*time.Second, func() { fxExercise(x) })
			if v := x.vol.VPB(); v.Mounted() {
				t.Fatal("still mounted")
			}
			for _, l := range x.logs {
				if strings.Contains(l, "internal error") {
					t.Fatal(l)
				}
			}
		})
	}
}
