package vdisk_test

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/partition"
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
		paths = append(paths, e2eGPT(t, dir)) // every one is named "gpt"
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
		if n := len(sys.Disks.Disks()); n != 1 {
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
	gpt := e2eGPT(t, t.TempDir())
	sys := filterSystem(t, vdisk.Options{}, gpt)
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
	gpt := e2eGPT(t, dir)
	sys := filterSystem(t, vdisk.Options{}, gpt)
	// A device still initializing on top of partition 1 refuses
	// attachments above it.
	part := sys.Images()[0].Partitions[0]
	blocker, err := sys.Manager.CreateDevice(sys.Manager.CreateDriver(`\Driver\blocker`), "", part.Type, 0)
	if err != nil {
		t.Fatal(err)
	}
	var below *iomgr.Device
	if err := sys.Manager.AttachDeviceToDeviceStackSafe(blocker, part, &below); err != nil {
		t.Fatal(err)
	}
	unblock := sync.OnceFunc(func() {
		if err := sys.Manager.DetachDevice(part); err != nil {
			t.Error(err)
		}
		sys.Manager.DeleteDevice(blocker)
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

// TestImageLockReleasedAtOnceWhileProcessesStart: an image that
// CreateImage (which formats it through a System of its own) or a closed
// System held can be opened for writing at once in the same process, while
// other goroutines start processes (as parallel tests run fsck.fat and
// mtools). Closing the file alone left its lock to a child between its
// fork and its exec: AddImage right after CreateImage failed with "in use
// by another process that writes it". The garbage collector is off, so
// that no finalizer closes a store the code left open.
func TestImageLockReleasedAtOnceWhileProcessesStart(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	started := testsupport.StartProcesses(t)
	path := filepath.Join(t.TempDir(), "img.img")
	const rounds = 60
	for i := range rounds {
		if _, err := vdisk.CreateImage(path, vdisk.CreateOptions{Size: 8 << 20, Table: partition.MBR, Overwrite: true,
			Parts: []partition.Spec{{Size: partition.Rest, Type: "fat12"}}}); err != nil {
			t.Fatalf("round %d: CreateImage: %v", i, err)
		}
		for _, readOnly := range []bool{false, true} {
			sys := vdisk.New(vdisk.Options{Workers: 1})
			_, err := sys.AddImage(path, readOnly)
			if cerr := sys.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatalf("round %d: AddImage (read-only %v) right after the image was closed (%d processes started meanwhile): %v",
					i, readOnly, started(), err)
			}
		}
	}
	if started() == 0 {
		t.Fatal("no process started meanwhile: the test proves nothing")
	}
	t.Logf("%d rounds, %d processes started meanwhile", rounds, started())
}
