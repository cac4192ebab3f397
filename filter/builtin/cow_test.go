package builtin_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// cowRun opens path with a cow filter over on, hands the System to fn and
// closes it, as one vdisk command with --filter cow does.
func cowRun(t *testing.T, path, on, overlay string, fn func(*vdisk.System)) {
	t.Helper()
	sys := vdisk.New(vdisk.Options{Requestor: "test", Workers: 2})
	if _, err := sys.AddImage(path, false); err != nil {
		t.Fatal(err)
	}
	if _, err := sys.AddFilter("cow:on=" + on + ",overlay=" + overlay); err != nil {
		sys.Close()
		t.Fatal(err)
	}
	fn(sys)
	if err := sys.Close(); err != nil {
		t.Fatalf("System.Close: %v", err)
	}
}

// TestCOWOverlayOfADirtyVolumeStaysAFileSystem is issue 12's item 7: with
// the dirty bit set on a FAT32 volume, the FAT driver's first write through
// a cow overlay is one sector of the boot sector's block. Reopened, the
// overlay must give back that block whole: the volume mounts again, holds
// the file, and the volume seen through the overlay passes fsck.fat -n and
// lists the file with mtools. The base image never changes.
func TestCOWOverlayOfADirtyVolumeStaysAFileSystem(t *testing.T) {
	testsupport.NeedTool(t, "fsck.fat")
	testsupport.NeedTool(t, "mdir")
	dir := t.TempDir()
	path := testworld.FATImage(t, dir, "32", 64<<20)
	p := testsupport.Sfdisk(t, path)[0]
	testsupport.WriteAt(t, path, []byte{0x01}, p.Start+0x41) // the FAT32 dirty bit, as Linux leaves it mounted
	before := testsupport.HashFile(t, path)
	overlay := filepath.Join(dir, "ov.bin")
	data := []byte("written through the overlay\n")

	cowRun(t, path, "fat32@1", overlay, func(sys *vdisk.System) {
		v, err := testworld.VolumeNamed(sys, "fat32@1", "test")
		if err != nil {
			t.Fatal(err)
		}
		if err := v.WriteFile("h.txt", data); err != nil {
			t.Fatal(err)
		}
	})
	cowRun(t, path, "fat32@1", overlay, func(sys *vdisk.System) {
		v, err := testworld.VolumeNamed(sys, "fat32@1", "test")
		if err != nil {
			t.Fatalf("the volume under the reopened overlay: %v", err)
		}
		if got, err := v.ReadFile("h.txt"); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("h.txt through the reopened overlay: %q, %v", got, err)
		}
	})
	// Materialise the volume as the overlay shows it, with no file system
	// mounted, and let dosfstools and mtools judge it.
	vol := filepath.Join(dir, "vol.img")
	cowRun(t, path, "fat32@1", overlay, func(sys *vdisk.System) {
		b := make([]byte, p.Size)
		io := &iomgr.BlockIO{Device: sys.Images()[0].Partitions[0], Requestor: "test"}
		if _, err := io.ReadAt(b, 0); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vol, b, 0o644); err != nil {
			t.Fatal(err)
		}
	})
	if testsupport.HashFile(t, path) != before {
		t.Fatal("the base image changed under the cow filter")
	}
	// The dirty bit is the test's own doing, and a volume found dirty
	// stays dirty (the FAT driver clears the clean-shutdown bit of FAT[1]
	// too): clean it as fsck.fat -a would, so that fsck.fat -n judges
	// everything else.
	clearFAT32Dirty(t, vol)
	if r := testsupport.Run(t, "fsck.fat", "-n", vol); r.Code != 0 {
		t.Fatalf("fsck.fat -n on the volume through the overlay: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r := testsupport.Run(t, "mdir", "-b", "-i", vol, "::/")
	if r.Code != 0 || !strings.Contains(strings.ToLower(r.Stdout), "h.txt") {
		t.Fatalf("mdir -i volume ::/: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if got := testsupport.Must(t, "mtype", "-i", vol, "::/h.txt"); got != string(data) {
		t.Fatalf("mtype h.txt: %q", got)
	}
}

// TestCOWConcurrentSubBlockWrites: goroutines write different sectors of
// the same blocks at once, each block's first and last sector left alone.
// Every sector written reads back, every other reads as the base, both
// through the filter and after the overlay is reopened (when only the
// overlay's allocation says what is in it); the base never changes.
func TestCOWConcurrentSubBlockWrites(t *testing.T) {
	const (
		size    = 4 << 20
		chunk   = 4096 // a block of most file systems, whatever the overlay's is
		writers = 6    // sectors 1-6 of each chunk; 0 and 7 stay the base's
		chunks  = 128
	)
	d := newCOWRawDisk(t, size, 7)
	want := bytes.Clone(d.base)
	sector := func(c, w int) (int64, []byte) {
		off := int64(c*chunk + (w+1)*512)
		b := bytes.Repeat([]byte(fmt.Sprintf("c%04dw%d.", c, w)), 512/8)
		return off, b
	}
	for c := range chunks {
		for w := range writers {
			off, b := sector(c, w)
			copy(want[off:], b)
		}
	}
	d.run(t, func(sys *vdisk.System) {
		io := &iomgr.BlockIO{Device: sys.Images()[0].Disk, Requestor: "test"}
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for c := range chunks {
					off, b := sector(c, w)
					if _, err := io.WriteAt(b, off); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		d.expect(t, sys, want, "through the filter")
	})
	d.run(t, func(sys *vdisk.System) { d.expect(t, sys, want, "after reopening the overlay") })
	d.baseUnchanged(t)
}

// clearFAT32Dirty clears the dirty flags of a FAT32 volume image: byte 0x41
// of the boot sector and of its backup, and the clean-shutdown bit of FAT[1]
// in every FAT is set.
func clearFAT32Dirty(t *testing.T, path string) {
	t.Helper()
	bs := testsupport.ReadAt(t, path, 0, 512)
	bps := int64(binary.LittleEndian.Uint16(bs[11:]))
	reserved := int64(binary.LittleEndian.Uint16(bs[14:])) * bps
	fats := int64(bs[16])
	fatSize := int64(binary.LittleEndian.Uint32(bs[36:])) * bps
	backup := int64(binary.LittleEndian.Uint16(bs[50:])) * bps
	testsupport.WriteAt(t, path, []byte{0}, 0x41)
	testsupport.WriteAt(t, path, []byte{0}, backup+0x41)
	for i := range fats {
		at := reserved + i*fatSize + 7 // the top byte of FAT[1]
		testsupport.WriteAt(t, path, []byte{testsupport.ReadAt(t, path, at, 1)[0] | 0x08}, at)
	}
}

// TestCOWZeroedRangesStayZero: zeroed ranges, whole blocks and parts of
// blocks, read as zeros after the overlay is reopened, where only its
// allocation says what it holds (file systems report preallocated zeros as
// holes, unless their pages happen to be cached); the rest reads as the
// base. A trim is a hint the overlay ignores; a fast zero, which it can
// only do by writing, is refused.
func TestCOWZeroedRangesStayZero(t *testing.T) {
	d := newCOWRawDisk(t, 4<<20, 9)
	want := bytes.Clone(d.base)
	zeros := []struct{ off, n int64 }{
		{1 << 20, 1 << 20},  // whole blocks
		{2560, 1024},        // inside one block
		{3<<20 - 512, 1536}, // across a block boundary
	}
	for _, r := range zeros {
		clear(want[r.off : r.off+r.n])
	}
	d.run(t, func(sys *vdisk.System) {
		io := &iomgr.BlockIO{Device: sys.Images()[0].Disk, Requestor: "test"}
		for _, r := range zeros {
			req := &disk.DataSetRequest{Action: disk.DataSetZero, Offset: r.off, Length: r.n}
			if err := io.Control(disk.IOCTLStorageManageDataSetAttributes, req, nil); err != nil {
				t.Fatal(err)
			}
		}
		req := &disk.DataSetRequest{Action: disk.DataSetTrim, Offset: 0, Length: 1 << 20}
		if err := io.Control(disk.IOCTLStorageManageDataSetAttributes, req, nil); err != nil {
			t.Fatalf("trim: %v", err)
		}
		req = &disk.DataSetRequest{Action: disk.DataSetZero, Offset: 0, Length: 4096, Flags: disk.ZeroFast}
		if err := io.Control(disk.IOCTLStorageManageDataSetAttributes, req, nil); !errors.Is(err, iomgr.StatusNotSupported) {
			t.Fatalf("fast zero: %v, want STATUS_NOT_SUPPORTED", err)
		}
	})
	d.run(t, func(sys *vdisk.System) { d.expect(t, sys, want, "after reopening the overlay") })
	d.baseUnchanged(t)
}

// cowRawDisk is an image of random bytes (no partition table) with a cow
// overlay beside it.
type cowRawDisk struct {
	path, overlay string
	base          []byte
}

func newCOWRawDisk(t *testing.T, size int, seed byte) *cowRawDisk {
	dir := t.TempDir()
	d := &cowRawDisk{path: filepath.Join(dir, "raw.img"), overlay: filepath.Join(dir, "ov.bin"), base: testsupport.Random(size, seed, false)}
	if err := os.WriteFile(d.path, d.base, 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// run opens the disk with its overlay for fn, as one vdisk command does.
func (d *cowRawDisk) run(t *testing.T, fn func(*vdisk.System)) {
	t.Helper()
	cowRun(t, d.path, "raw", d.overlay, fn)
}

// expect checks, sector by sector, that the disk reads as want through
// the filter.
func (d *cowRawDisk) expect(t *testing.T, sys *vdisk.System, want []byte, when string) {
	t.Helper()
	got := make([]byte, len(d.base))
	io := &iomgr.BlockIO{Device: sys.Images()[0].Disk, Requestor: "test"}
	if _, err := io.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(got); off += 512 {
		if !bytes.Equal(got[off:off+512], want[off:off+512]) {
			t.Fatalf("%s: sector at byte %d reads %q, want %q", when, off, got[off:off+16], want[off:off+16])
		}
	}
}

// baseUnchanged checks that the image itself was never written.
func (d *cowRawDisk) baseUnchanged(t *testing.T) {
	t.Helper()
	if !bytes.Equal(testsupport.ReadAt(t, d.path, 0, int64(len(d.base))), d.base) {
		t.Fatal("the base image changed under the cow filter")
	}
}
