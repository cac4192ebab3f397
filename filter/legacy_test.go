package filter_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/filter"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/mount"
	"github.com/vdisk-dev/vdisk/volume"
)

type world struct {
	io  *iomgr.Manager
	mm  *mount.Manager
	vol *iomgr.Device
}

// newWorld builds a disk with one volume (\DosDevices\v); the raw file
// system is registered when raw is set (otherwise the caller registers it,
// to test filters loaded before a file system).
func newWorld(t *testing.T, raw bool) *world {
	t.Helper()
	io := iomgr.NewManager()
	dd := disk.NewDriver(io, disk.Options{})
	store, _ := disk.NewMemStore(1 << 20)
	d, err := dd.AddDisk(store, 512, false)
	if err != nil {
		t.Fatal(err)
	}
	vol, err := volume.NewDriver(io).AddVolume(d, 1<<20, `\DosDevices\v`)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{io: io, mm: mount.New(io), vol: vol}
	if raw {
		if _, err := mount.NewRawFileSystem(w.mm); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func (w *world) open(t *testing.T) *iomgr.FileObject {
	t.Helper()
	fo, _, err := w.mm.Open(`\DosDevices\v`, mount.OpenOptions{Requestor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return fo
}

// stackAbove lists the drivers of the devices above the file system volume.
func stackAbove(w *world) []string {
	fsVol, ok := w.vol.VPB().Device()
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
	w := newWorld(t, false)
	a, err := filter.Load(w.mm, "A", filter.Hooks{}) // before the file system registers
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mount.NewRawFileSystem(w.mm); err != nil {
		t.Fatal(err)
	}
	b, err := filter.Load(w.mm, "B", filter.Hooks{}) // after: replayed registration
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []*filter.Legacy{a, b} {
		if n := len(f.Devices()); n != 1 {
			t.Fatalf("%s has %d devices before any mount, want 1 (on RAW's control device)", f.Name, n)
		}
	}
	before := w.io.DeviceCount()
	fo := w.open(t)
	got := stackAbove(w)
	want := []string{`\FileSystem\RAW`, `\FileSystem\Filters\A`, `\FileSystem\Filters\B`}
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("volume stack %q, want %q", got, want)
	}
	if w.io.DeviceCount() != before+3 {
		t.Fatalf("mount added %d devices, want 3 (FS volume + one per filter)", w.io.DeviceCount()-before)
	}
	// Requests on the volume go through both filters to RAW.
	if iomgr.RelatedDevice(fo).Driver != b.Driver {
		t.Fatal("the open does not route through the top filter")
	}
	fo.CloseHandle("test")

	// Dismount deletes the FS volume device: every filter device above it
	// detaches and is deleted through fast I/O detach.
	if err := w.mm.Dismount(w.vol, mount.DismountOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := w.io.DeviceCount(); got != before {
		t.Fatalf("device count %d after dismount, want %d", got, before)
	}
	for _, f := range []*filter.Legacy{a, b} {
		if n := len(f.Devices()); n != 1 {
			t.Fatalf("%s kept %d devices after dismount, want 1", f.Name, n)
		}
	}
	// A second mount is captured again.
	fo = w.open(t)
	if len(stackAbove(w)) != 3 {
		t.Fatalf("remount stack %q", stackAbove(w))
	}
	fo.CloseHandle("test")
}

func TestUnloadingAFilterFromTheMiddleIsRefused(t *testing.T) {
	w := newWorld(t, true)
	a, _ := filter.Load(w.mm, "A", filter.Hooks{})
	b, _ := filter.Load(w.mm, "B", filter.Hooks{})
	fo := w.open(t)
	before := w.io.DeviceCount()
	if err := a.Unload(); !errors.Is(err, filter.ErrNotOnTop) {
		t.Fatalf("unload of the lower filter: %v", err)
	}
	if w.io.DeviceCount() != before || len(a.Devices()) != 2 {
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
	if w.io.DeviceCount() != before-4 {
		t.Fatalf("device count %d, want %d", w.io.DeviceCount(), before-4)
	}
	fo.CloseHandle("test")
}

func TestFilterLoadedAfterMountAttachesToMountedVolumes(t *testing.T) {
	w := newWorld(t, true)
	fo := w.open(t)
	var mu sync.Mutex
	attached := 0
	f, err := filter.Load(w.mm, "Late", filter.Hooks{VolumeAttached: func(*iomgr.Device) {
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
		if x := d.Extension.(*filter.Extension); x.Role == filter.VolumeRole && x.Real == w.vol {
			found = true
		}
	}
	if !found {
		t.Fatal("the volume filter does not know its storage volume")
	}
	fo.CloseHandle("test")
}

func TestFilterDispatchSeesVolumeRequests(t *testing.T) {
	w := newWorld(t, true)
	var mu sync.Mutex
	var seen []iomgr.MajorFunction
	_, err := filter.Load(w.mm, "Spy", filter.Hooks{Dispatch: func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
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
	fo := w.open(t)
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
