package mount_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/mount"
	"github.com/vdisk-dev/vdisk/volume"
	"github.com/vdisk-dev/vdisk/vpb"
)

// toyFS is a minimal file system for the mount manager's tests: it claims
// volumes whose first sector starts with its magic, has files named by any
// path, and records the IRPs it sees.
type toyFS struct {
	name    string
	magic   []byte
	corrupt bool // answer MOUNT with FILE_CORRUPT_ERROR instead of claiming
	m       *iomgr.Manager
	drv     *iomgr.Driver
	cdo     *iomgr.Device

	mu     sync.Mutex
	events []string
}

type toyVolume struct {
	mount.VolumeState
}

func (f *toyFS) log(format string, args ...any) {
	f.mu.Lock()
	f.events = append(f.events, fmt.Sprintf(format, args...))
	f.mu.Unlock()
}

func (f *toyFS) get() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.events...)
}

func newToyFS(t *testing.T, mm *mount.Manager, name, magic string) *toyFS {
	t.Helper()
	io := mm.IOManager()
	f := &toyFS{name: name, magic: []byte(magic), m: io}
	f.drv = io.CreateDriver(`\FileSystem\` + name)
	cdo, err := io.CreateDevice(f.drv, `\`+name, iomgr.DeviceDiskFileSystem, 0)
	if err != nil {
		t.Fatal(err)
	}
	cdo.ClearFlags(iomgr.DeviceInitializing)
	f.cdo = cdo
	f.drv.SetDispatchAll(f.dispatch)
	mm.RegisterFileSystem(cdo)
	return f
}

func (f *toyFS) dispatch(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
	sl := irp.CurrentStackLocation()
	if dev == f.cdo {
		if sl.Major == iomgr.MajorFileSystemControl && sl.Minor == iomgr.MinorMountVolume {
			return irp.Complete(f.mount(sl.Parameters.MountVolume, irp.Requestor), 0)
		}
		return irp.Complete(iomgr.StatusInvalidDeviceRequest, 0)
	}
	vol := dev.Extension.(*toyVolume)
	f.log("%v %s", sl.Major, sl.FileObject.FileName)
	if vol.Dismounted() && sl.Major != iomgr.MajorCleanup && sl.Major != iomgr.MajorClose {
		return irp.Complete(iomgr.StatusVolumeDismounted, 0)
	}
	switch sl.Major {
	case iomgr.MajorCreate:
		return irp.Complete(iomgr.StatusSuccess, iomgr.FileOpened)
	case iomgr.MajorCleanup:
		_ = vol.Unlock(sl.FileObject)
		return irp.Complete(iomgr.StatusSuccess, 0)
	case iomgr.MajorClose:
		st := irp.Complete(iomgr.StatusSuccess, 0)
		vol.Closed(f.m)
		return st
	case iomgr.MajorFileSystemControl:
		p := sl.Parameters.FileSystemControl
		switch p.ControlCode {
		case iomgr.FSCTLDismountVolume:
			in, _ := p.Input.(*mount.DismountInput)
			return irp.Complete(vol.Dismount(sl.FileObject, in != nil && in.Force), 0)
		case iomgr.FSCTLLockVolume:
			return irp.Complete(vol.Lock(sl.FileObject), 0)
		case iomgr.FSCTLUnlockVolume:
			return irp.Complete(vol.Unlock(sl.FileObject), 0)
		}
	case iomgr.MajorRead:
		return irp.Complete(iomgr.StatusSuccess, 0)
	}
	return irp.Complete(iomgr.StatusInvalidDeviceRequest, 0)
}

func (f *toyFS) mount(p iomgr.MountParameters, requestor string) iomgr.Status {
	f.log("MOUNT")
	buf := make([]byte, 512)
	rd := &iomgr.BlockIO{Device: p.Device, Requestor: requestor}
	if _, err := rd.ReadAt(buf, 0); err != nil {
		return iomgr.StatusOf(err)
	}
	if !bytes.HasPrefix(buf, f.magic) {
		return iomgr.StatusUnrecognizedVolume
	}
	if f.corrupt {
		return iomgr.StatusFileCorruptError
	}
	dev, err := f.m.CreateDevice(f.drv, "", iomgr.DeviceDiskFileSystem, 0)
	if err != nil {
		return iomgr.StatusInsufficientResources
	}
	v := p.Device.VPB()
	dev.Extension = &toyVolume{mount.VolumeState{VPB: v, Real: p.Device, Device: dev}}
	dev.StackSize = iomgr.GetAttachedDevice(p.Device).StackSize + 1
	if err := v.Mount(dev, 0xC0FFEE, f.name, false); err != nil {
		f.m.DeleteDevice(dev)
		return iomgr.StatusUnrecognizedVolume
	}
	dev.ClearFlags(iomgr.DeviceInitializing)
	return iomgr.StatusSuccess
}

// fixture is an I/O manager with a disk, a volume named \DosDevices\v, the
// raw file system and two toy file systems (A registered before B).
type fixture struct {
	io    *iomgr.Manager
	mm    *mount.Manager
	store *disk.MemStore
	vol   *iomgr.Device
	a, b  *toyFS
	raw   *mount.RawFileSystem
}

func newFixture(t *testing.T, firstSector string) *fixture {
	t.Helper()
	io := iomgr.NewManager()
	dd := disk.NewDriver(io, disk.Options{})
	store, err := disk.NewMemStore(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.WriteAt([]byte(firstSector), 0); err != nil {
		t.Fatal(err)
	}
	d, err := dd.AddDisk(store, 512, false)
	if err != nil {
		t.Fatal(err)
	}
	vd := volume.NewDriver(io)
	vol, err := vd.AddVolume(d, 1<<20, `\DosDevices\v`)
	if err != nil {
		t.Fatal(err)
	}
	mm := mount.New(io)
	raw, err := mount.NewRawFileSystem(mm)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{io: io, mm: mm, store: store, vol: vol, raw: raw}
	f.a = newToyFS(t, mm, "ToyA", "TOYA")
	f.b = newToyFS(t, mm, "ToyB", "TOYB")
	return f
}

func (f *fixture) open(t *testing.T, name string) *iomgr.FileObject {
	t.Helper()
	fo, _, err := f.mm.Open(name, mount.OpenOptions{Requestor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return fo
}

func TestRegistrationOrderDecidesWhoMountsAndRawComesLast(t *testing.T) {
	f := newFixture(t, "TOYB volume")
	fss := f.mm.FileSystems()
	if len(fss) != 3 || fss[0] != f.a.cdo || fss[1] != f.b.cdo || fss[2] != f.raw.ControlDevice {
		t.Fatalf("order %v", fss)
	}
	fo := f.open(t, `\DosDevices\v\x.txt`)
	if got := f.a.get(); len(got) != 1 || got[0] != "MOUNT" {
		t.Fatalf("A saw %q, want only the MOUNT it declined", got)
	}
	if got := f.b.get(); len(got) != 2 || got[0] != "MOUNT" || got[1] != `IRP_MJ_CREATE \x.txt` {
		t.Fatalf("B saw %q", got)
	}
	v := f.vol.VPB()
	if d, ok := v.Device(); !ok || d.Driver != f.b.drv || v.SerialNumber() != 0xC0FFEE || v.Label() != "ToyB" {
		t.Fatalf("VPB %+v", v.Snapshot())
	}
	if fo.VPB != v || v.ReferenceCount() != 1 {
		t.Fatalf("file object VPB %p refs %d", fo.VPB, v.ReferenceCount())
	}
	fo.CloseHandle("test")
	if v.ReferenceCount() != 0 {
		t.Fatalf("refs after close %d", v.ReferenceCount())
	}
	want := []string{"MOUNT", `IRP_MJ_CREATE \x.txt`, `IRP_MJ_CLEANUP \x.txt`, `IRP_MJ_CLOSE \x.txt`}
	if got := f.b.get(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("B saw %q, want %q", got, want)
	}
}

func TestUnrecognisedVolumeIsClaimedByRaw(t *testing.T) {
	f := newFixture(t, "nothing known")
	fo := f.open(t, `\DosDevices\v`)
	v := f.vol.VPB()
	if !v.Mounted() || v.Flags()&vpb.RawMount == 0 {
		t.Fatalf("flags %v", v.Flags())
	}
	// RAW offers the volume itself, and only that.
	if _, _, err := f.mm.Open(`\DosDevices\v\file`, mount.OpenOptions{}); !errors.Is(err, iomgr.StatusObjectNameNotFound) {
		t.Fatalf("open a file on RAW: %v", err)
	}
	fo.CloseHandle("test")
}

func TestCorruptVolumeErrorStopsTheMountSequence(t *testing.T) {
	f := newFixture(t, "TOYA")
	f.a.corrupt = true
	_, _, err := f.mm.Open(`\DosDevices\v\x`, mount.OpenOptions{})
	if !errors.Is(err, iomgr.StatusFileCorruptError) {
		t.Fatalf("got %v", err)
	}
	if len(f.b.get()) != 0 || f.vol.VPB().Mounted() {
		t.Fatal("after a corrupt-volume error nobody else may claim the volume")
	}
	// Mounting released its claim: the volume can still be exported.
	if err := f.vol.Extension.(*volume.Extension).AcquireExportWrite(); err != nil {
		t.Fatal(err)
	}
}

func TestRegistrationChangeCallbackReplaysExistingFileSystems(t *testing.T) {
	f := newFixture(t, "")
	var seen []string
	cancel := f.mm.RegisterFsRegistrationChange(func(cdo *iomgr.Device, active bool) {
		seen = append(seen, fmt.Sprintf("%s %v", cdo.Driver.Name, active))
	})
	late := newToyFS(t, f.mm, "ToyC", "TOYC")
	f.mm.UnregisterFileSystem(late.cdo)
	cancel()
	f.mm.UnregisterFileSystem(f.a.cdo) // not seen: cancelled
	want := []string{`\FileSystem\ToyA true`, `\FileSystem\ToyB true`, `\FileSystem\RAW true`,
		`\FileSystem\ToyC true`, `\FileSystem\ToyC false`}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("saw %q\nwant %q", seen, want)
	}
}

func TestMountRequestsPassThroughFiltersOnTheControlDevice(t *testing.T) {
	f := newFixture(t, "TOYA")
	var seen []string
	drv := f.io.CreateDriver(`\Driver\CdoFilter`)
	flt, _ := f.io.CreateDevice(drv, "", iomgr.DeviceDiskFileSystem, 0)
	lower, err := f.io.AttachDeviceToDeviceStack(flt, f.a.cdo)
	if err != nil {
		t.Fatal(err)
	}
	flt.ClearFlags(iomgr.DeviceInitializing)
	drv.SetDispatchAll(func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		sl := irp.CurrentStackLocation()
		seen = append(seen, iomgr.MinorName(sl.Major, sl.Minor))
		irp.SkipCurrentStackLocation()
		return iomgr.CallDriver(lower, irp)
	})
	fo := f.open(t, `\DosDevices\v\a`)
	fo.CloseHandle("test")
	if fmt.Sprint(seen) != "[IRP_MN_MOUNT_VOLUME]" {
		t.Fatalf("filter saw %q", seen)
	}
}

func TestDismountRefusedWithOpenHandlesUnlessForced(t *testing.T) {
	f := newFixture(t, "TOYA")
	before := f.io.DeviceCount()
	fo := f.open(t, `\DosDevices\v\busy.txt`)
	if f.io.DeviceCount() != before+1 {
		t.Fatalf("mount should add one device: %d → %d", before, f.io.DeviceCount())
	}
	err := f.mm.Dismount(f.vol, mount.DismountOptions{})
	if !errors.Is(err, iomgr.StatusAccessDenied) {
		t.Fatalf("dismount with a handle open: %v", err)
	}
	if !f.vol.VPB().Mounted() {
		t.Fatal("a refused dismount unmounted the volume")
	}
	if err := f.mm.Dismount(f.vol, mount.DismountOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	// The old handle fails with VOLUME_DISMOUNTED; its device lives until it closes.
	if err := mount.FileSystemControl(fo, iomgr.FSCTLLockVolume, nil, nil, "test"); !errors.Is(err, iomgr.StatusVolumeDismounted) {
		t.Fatalf("request on an old handle: %v", err)
	}
	if f.vol.VPB().Mounted() {
		t.Fatal("the volume still has a mounted VPB")
	}
	fo.CloseHandle("test")
	if got := f.io.DeviceCount(); got != before {
		t.Fatalf("device count %d after the last handle closed, want %d", got, before)
	}
	// The next open mounts afresh.
	fo2 := f.open(t, `\DosDevices\v\again`)
	if !f.vol.VPB().Mounted() || fo2.VPB == fo.VPB {
		t.Fatal("no fresh mount")
	}
	fo2.CloseHandle("test")
	if err := f.mm.Dismount(f.vol, mount.DismountOptions{}); err != nil {
		t.Fatalf("dismount with no handle: %v", err)
	}
	if got := f.io.DeviceCount(); got != before {
		t.Fatalf("device count %d, want %d", got, before)
	}
	if err := f.mm.Dismount(f.vol, mount.DismountOptions{}); !errors.Is(err, mount.ErrNotMounted) {
		t.Fatalf("second dismount: %v", err)
	}
}

func TestLockGivesOneHandleTheVolume(t *testing.T) {
	f := newFixture(t, "TOYA")
	h := f.open(t, `\DosDevices\v`)
	if err := mount.FileSystemControl(h, iomgr.FSCTLLockVolume, nil, nil, "test"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.mm.Open(`\DosDevices\v\x`, mount.OpenOptions{}); !errors.Is(err, iomgr.StatusAccessDenied) {
		t.Fatalf("open while locked: %v", err)
	}
	if err := mount.FileSystemControl(h, iomgr.FSCTLUnlockVolume, nil, nil, "test"); err != nil {
		t.Fatal(err)
	}
	fo := f.open(t, `\DosDevices\v\x`)
	if err := mount.FileSystemControl(h, iomgr.FSCTLLockVolume, nil, nil, "test"); !errors.Is(err, iomgr.StatusAccessDenied) {
		t.Fatalf("lock with another handle open: %v", err)
	}
	fo.CloseHandle("test")
	h.CloseHandle("test")
}

func TestWritableExportAndMountExcludeEachOther(t *testing.T) {
	f := newFixture(t, "TOYA")
	ext := f.vol.Extension.(*volume.Extension)
	if err := ext.AcquireExportWrite(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.mm.Open(`\DosDevices\v\x`, mount.OpenOptions{}); !errors.Is(err, volume.ErrExportedWritable) {
		t.Fatalf("mount of a writable export: %v", err)
	}
	ext.ReleaseExportWrite()
	fo := f.open(t, `\DosDevices\v\x`)
	if err := ext.AcquireExportWrite(); !errors.Is(err, volume.ErrMounted) {
		t.Fatalf("export of a mounted volume: %v", err)
	}
	fo.CloseHandle("test")
	if err := f.mm.Dismount(f.vol, mount.DismountOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := ext.AcquireExportWrite(); err != nil {
		t.Fatalf("export after dismount: %v", err)
	}
}

func TestConcurrentOpensMountOnce(t *testing.T) {
	f := newFixture(t, "TOYB")
	var wg sync.WaitGroup
	fos := make([]*iomgr.FileObject, 8)
	for i := range fos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fo, _, err := f.mm.Open(fmt.Sprintf(`\DosDevices\v\f%d`, i), mount.OpenOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			fos[i] = fo
		}()
	}
	wg.Wait()
	mounts := 0
	for _, e := range f.b.get() {
		if e == "MOUNT" {
			mounts++
		}
	}
	if mounts != 1 {
		t.Fatalf("%d mounts", mounts)
	}
	for _, fo := range fos {
		if fo != nil {
			fo.CloseHandle("test")
		}
	}
}

func TestRawMountForFormatting(t *testing.T) {
	f := newFixture(t, "TOYA")
	fo, _, err := f.mm.Open(`\DosDevices\v`, mount.OpenOptions{Raw: true})
	if err != nil {
		t.Fatal(err)
	}
	if f.vol.VPB().Flags()&vpb.RawMount == 0 || len(f.a.get()) != 0 {
		t.Fatal("raw open must not ask other file systems")
	}
	// Sector I/O through the raw volume reaches the disk.
	top := iomgr.RelatedDevice(fo)
	buf := make([]byte, 512)
	irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorRead, top, buf, 0)
	irp.FileObject = fo
	irp.NextStackLocation().FileObject = fo
	if st := iomgr.CallDriverAndWait(top, irp).Status; st != iomgr.StatusSuccess || !bytes.HasPrefix(buf, []byte("TOYA")) {
		t.Fatalf("raw read: %v %q", st, buf[:4])
	}
	iomgr.FreeIRP(irp)
	fo.CloseHandle("test")
	if err := f.mm.Dismount(f.vol, mount.DismountOptions{}); err != nil {
		t.Fatal(err)
	}
	fo2 := f.open(t, `\DosDevices\v\x`)
	if d, _ := f.vol.VPB().Device(); d.Driver != f.a.drv {
		t.Fatal("after the raw dismount ToyA should mount")
	}
	fo2.CloseHandle("test")
}
