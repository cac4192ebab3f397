package filter_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/vdisk-dev/vdisk/filter"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/mount"
)

// stackAbove lists the drivers of the devices above the file system volume.
func stackAbove(w *testworld.World) []string {
	fsVol, ok := w.Volume.VPB().Device()
	if !ok {
		return nil
	}
	var names []string
	for d := fsVol; d != nil; d = d.AttachedDevice() {
		names = append(names, d.Driver.Name)
	}
	return names
}

func TestMountCaptureAttachesOneFilterDevicePerVolumeAtTheRightHeight(t *testing.T) {
	w := testworld.New(t, false)
	a, err := filter.Load(w.Mounts, "A", filter.Hooks{}) // before the file system registers
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mount.NewRawFileSystem(w.Mounts); err != nil {
		t.Fatal(err)
	}
	b, err := filter.Load(w.Mounts, "B", filter.Hooks{}) // after: replayed registration
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []*filter.Legacy{a, b} {
		if n := len(f.Devices()); n != 1 {
			t.Fatalf("%s has %d devices before any mount, want 1 (on RAW's control device)", f.Name, n)
		}
	}
	before := w.IO.DeviceCount()
	fo := w.Open(t)
	got := stackAbove(w)
	want := []string{`\FileSystem\RAW`, `\FileSystem\Filters\A`, `\FileSystem\Filters\B`}
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("volume stack %q, want %q", got, want)
	}
	if w.IO.DeviceCount() != before+3 {
		t.Fatalf("mount added %d devices, want 3 (FS volume + one per filter)", w.IO.DeviceCount()-before)
	}
	// Requests on the volume go through both filters to RAW.
	if iomgr.RelatedDevice(fo).Driver != b.Driver {
		t.Fatal("the open does not route through the top filter")
	}
	fo.CloseHandle("test")

	// Dismount deletes the FS volume device: every filter device above it
	// detaches and is deleted through fast I/O detach.
	if err := w.Mounts.Dismount(w.Volume, mount.DismountOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := w.IO.DeviceCount(); got != before {
		t.Fatalf("device count %d after dismount, want %d", got, before)
	}
	for _, f := range []*filter.Legacy{a, b} {
		if n := len(f.Devices()); n != 1 {
			t.Fatalf("%s kept %d devices after dismount, want 1", f.Name, n)
		}
	}
	// A second mount is captured again.
	fo = w.Open(t)
	if len(stackAbove(w)) != 3 {
		t.Fatalf("remount stack %q", stackAbove(w))
	}
	fo.CloseHandle("test")
}

func TestUnloadingAFilterFromTheMiddleIsRefused(t *testing.T) {
	w := testworld.New(t, true)
	a, _ := filter.Load(w.Mounts, "A", filter.Hooks{})
	b, _ := filter.Load(w.Mounts, "B", filter.Hooks{})
	fo := w.Open(t)
	before := w.IO.DeviceCount()
	if err := a.Unload(); !errors.Is(err, filter.ErrNotOnTop) {
		t.Fatalf("unload of the lower filter: %v", err)
	}
	if w.IO.DeviceCount() != before || len(a.Devices()) != 2 {
		t.Fatal("a refused unload changed something")
	}
	if err := b.Unload(); err != nil {
		t.Fatal(err)
	}
	if err := a.Unload(); err != nil {
		t.Fatalf("unload after the upper filter left: %v", err)
	}
	if got := stackAbove(w); len(got) != 1 {
		t.Fatalf("stack after unloads %q", got)
	}
	if w.IO.DeviceCount() != before-4 {
		t.Fatalf("device count %d, want %d", w.IO.DeviceCount(), before-4)
	}
	fo.CloseHandle("test")
}

func TestFilterLoadedAfterMountAttachesToMountedVolumes(t *testing.T) {
	w := testworld.New(t, true)
	fo := w.Open(t)
	var mu sync.Mutex
	attached := 0
	f, err := filter.Load(w.Mounts, "Late", filter.Hooks{VolumeAttached: func(*iomgr.Device) {
		mu.Lock()
		attached++
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if attached != 1 || len(stackAbove(w)) != 2 {
		t.Fatalf("attached %d, stack %q", attached, stackAbove(w))
	}
	ext := f.Devices()
	found := false
	for _, d := range ext {
		if x := d.Extension.(*filter.Extension); x.Role == filter.VolumeRole && x.Real == w.Volume {
			found = true
		}
	}
	if !found {
		t.Fatal("the volume filter does not know its storage volume")
	}
	fo.CloseHandle("test")
}

func TestFilterDispatchSeesVolumeRequests(t *testing.T) {
	w := testworld.New(t, true)
	var mu sync.Mutex
	var seen []iomgr.MajorFunction
	_, err := filter.Load(w.Mounts, "Spy", filter.Hooks{Dispatch: func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		if dev.Extension.(*filter.Extension).Role == filter.VolumeRole {
			mu.Lock()
			seen = append(seen, irp.CurrentStackLocation().Major)
			mu.Unlock()
		}
		return filter.PassThrough(dev, irp)
	}})
	if err != nil {
		t.Fatal(err)
	}
	fo := w.Open(t)
	top := iomgr.RelatedDevice(fo)
	buf := make([]byte, 512)
	irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorRead, top, buf, 0)
	irp.NextStackLocation().FileObject = fo
	if st := iomgr.CallDriverAndWait(top, irp).Status; st != iomgr.StatusSuccess {
		t.Fatal(st)
	}
	iomgr.FreeIRP(irp)
	fo.CloseHandle("test")
	want := []iomgr.MajorFunction{iomgr.MajorCreate, iomgr.MajorRead, iomgr.MajorCleanup, iomgr.MajorClose}
	if len(seen) != len(want) {
		t.Fatalf("saw %v", seen)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("saw %v, want %v", seen, want)
		}
	}
}
