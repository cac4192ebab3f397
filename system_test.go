package vdisk_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/export"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// TestConcurrentAddsOfOneNameAddOneImage: images whose export names
// collide, added at the same time, are added once; every other add fails
// with the collision and leaves no device behind (issue 12, item 28).
func TestConcurrentAddsOfOneNameAddOneImage(t *testing.T) {
	const adders = 8
	var paths []string
	for i := range adders {
		dir := filepath.Join(t.TempDir(), string(rune('a'+i)))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, testworld.GPT(t, dir)) // every one is named "gpt"
	}
	for round := range 20 {
		sys := vdisk.New(vdisk.Options{Workers: 1})
		var wg sync.WaitGroup
		errs := make([]error, adders)
		start := make(chan struct{})
		for i := range adders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = sys.AddImage(paths[i], false)
			}()
		}
		close(start)
		wg.Wait()
		added := 0
		for _, err := range errs {
			switch {
			case err == nil:
				added++
			case !strings.Contains(err.Error(), `an image named "gpt" is already added`):
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if n := len(sys.Images()); added != 1 || n != 1 {
			t.Fatalf("round %d: %d adds of one name succeeded, %d images", round, added, n)
		}
		if n := len(vdisk.DiskDriver(sys).Disks()); n != 1 {
			t.Fatalf("round %d: %d disk devices left for one image", round, n)
		}
		if err := sys.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFilterOnNamesOnePartitionExactly: on=IMAGE@N takes N as vdisk writes
// it; `1x`, `01` or `+1` are no partition (issue 12, item 26).
func TestFilterOnNamesOnePartitionExactly(t *testing.T) {
	gpt := testworld.GPT(t, t.TempDir())
	sys := testworld.FilterSystem(t, vdisk.Options{}, gpt)
	for _, on := range []string{"gpt@1x", "gpt@01", "gpt@+1", "gpt@0", "gpt@-1", "gpt@4", "gpt@", "gpt@1@1", "gpt@ 1"} {
		_, err := sys.AddFilter("trace:on=" + on)
		if err == nil || !strings.Contains(err.Error(), "gpt has no partition") {
			t.Errorf("on=%s: %v, want no such partition", on, err)
		}
	}
	if n := len(sys.Filters()); n != 0 {
		t.Fatalf("refused filters left %d loaded", n)
	}
	lf, err := sys.AddFilter("trace:on=gpt@2")
	if err != nil {
		t.Fatal(err)
	}
	if devs := lf.Disk.Devices(); len(devs) != 1 || iomgr.BottomDevice(devs[0]) != sys.Images()[0].Partitions[1] {
		t.Fatalf("trace:on=gpt@2 attached to %v", devs)
	}
}

// TestFailedCOWAttachClosesItsOverlay: when the cow filter's device cannot
// attach, the overlay it opened is closed again (issue 12, item 24).
func TestFailedCOWAttachClosesItsOverlay(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("needs /proc/self/fd to see open files")
	}
	dir := t.TempDir()
	gpt := testworld.GPT(t, dir)
	sys := testworld.FilterSystem(t, vdisk.Options{}, gpt)
	// A device still initializing on top of partition 1 refuses
	// attachments above it.
	part := sys.Images()[0].Partitions[0]
	blocker, err := vdisk.IOManager(sys).CreateDevice(vdisk.IOManager(sys).CreateDriver(`\Driver\blocker`), "", part.Type, 0)
	if err != nil {
		t.Fatal(err)
	}
	var below *iomgr.Device
	if err := vdisk.IOManager(sys).AttachDeviceToDeviceStackSafe(blocker, part, &below); err != nil {
		t.Fatal(err)
	}
	unblock := sync.OnceFunc(func() {
		if err := vdisk.IOManager(sys).DetachDevice(part); err != nil {
			t.Error(err)
		}
		vdisk.IOManager(sys).DeleteDevice(blocker)
	})
	t.Cleanup(unblock) // before the System closes
	overlay := filepath.Join(dir, "ov.bin")
	if _, err := sys.AddFilter("cow:on=gpt@1,overlay=" + overlay); err == nil || !strings.Contains(err.Error(), "initializing") {
		t.Fatalf("cow over an initializing device: %v", err)
	}
	if n := openCount(t, overlay); n != 0 {
		t.Fatalf("the overlay is still open %d times after the attach failed", n)
	}
	if n := len(sys.Filters()); n != 0 {
		t.Fatalf("a failed attach left %d filters loaded", n)
	}
	unblock()
	// Now it attaches, and reopens the overlay.
	if _, err := sys.AddFilter("cow:on=gpt@1,overlay=" + overlay); err != nil {
		t.Fatal(err)
	}
	if n := openCount(t, overlay); n != 1 {
		t.Fatalf("the attached overlay is open %d times", n)
	}
}

// openCount counts this process's descriptors open on path.
func openCount(t *testing.T, path string) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && target == path {
			n++
		}
	}
	return n
}

// TestDiskFiltersGrowStackSizesAbove: after disk filters attach beneath
// existing partitions and volumes, those devices' stack sizes include them,
// so their IRPs need no re-allocation.
func TestDiskFiltersGrowStackSizesAbove(t *testing.T) {
	dir := t.TempDir()
	gpt := testworld.GPT(t, dir)
	sys := testworld.FilterSystem(t, vdisk.Options{}, gpt)
	img := sys.Images()[0]
	p0, v0 := img.Partitions[0].StackSize, img.Volumes[0].StackSize
	for _, s := range []string{"trace", "writeprotect:on=gpt"} {
		if _, err := sys.AddFilter(s); err != nil {
			t.Fatal(err)
		}
	}
	if img.Partitions[0].StackSize != p0+2 || img.Volumes[0].StackSize != v0+2 {
		t.Fatalf("stack sizes %d→%d, %d→%d", p0, img.Partitions[0].StackSize, v0, img.Volumes[0].StackSize)
	}
	for _, bad := range []string{"nope", "trace:on=other", "faults:read-error=2", "cow", "scan", "monitor:x=1"} {
		if _, err := sys.AddFilter(bad); err == nil {
			t.Errorf("AddFilter(%q) succeeded", bad)
		}
	}
}

// TestSharedImagesWithholdMultiConn: an image opened read-only without a
// lock (--force-share), which another process may be writing, is exported
// without NBD multi-conn; opened read-only with its lock, or writable, it
// keeps it.
func TestSharedImagesWithholdMultiConn(t *testing.T) {
	for _, c := range []struct {
		name      string
		add       func(sys *vdisk.System, path string) (*vdisk.Image, error)
		multiConn bool
	}{
		{"writable", func(sys *vdisk.System, p string) (*vdisk.Image, error) { return sys.AddImage(p, false) }, true},
		{"read-only", func(sys *vdisk.System, p string) (*vdisk.Image, error) { return sys.AddImage(p, true) }, true},
		{"force-share", (*vdisk.System).AddImageForceShare, false},
	} {
		sys := vdisk.New(vdisk.Options{})
		if _, err := c.add(sys, testworld.GPT(t, t.TempDir())); err != nil {
			t.Fatal(err)
		}
		exports, release, err := sys.Exports(false, export.ClaimPerConnection)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range exports {
			if e.SingleConn == c.multiConn {
				t.Errorf("%s: export %q SingleConn=%v, want multi-conn %v", c.name, e.Name, e.SingleConn, c.multiConn)
			}
		}
		release()
		if err := sys.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
