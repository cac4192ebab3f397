package iomgr_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/vpb"
)

func TestAttachSetsStackSizeSectorSizeAndAlignment(t *testing.T) {
	m := iomgr.NewManager()
	disk := newBottom(t, m, newBottomDriver(m), `\Device\Disk0`, &bottomExt{})
	disk.SectorSize = 4096
	disk.AlignmentRequirement = 511
	f1 := attachFilter(t, m, newFilterDriver(m, "F1"), disk, "F1", nil)
	f2 := attachFilter(t, m, newFilterDriver(m, "F2"), disk, "F2", nil) // attaches to the top: F1
	if f1.StackSize != 2 || f2.StackSize != 3 {
		t.Fatalf("stack sizes %d %d", f1.StackSize, f2.StackSize)
	}
	if f2.SectorSize != 4096 || f2.AlignmentRequirement != 511 {
		t.Fatalf("sector size %d alignment %d", f2.SectorSize, f2.AlignmentRequirement)
	}
	if f2.AttachedTo() != f1 || f1.AttachedTo() != disk || disk.AttachedDevice() != f1 || f1.AttachedDevice() != f2 {
		t.Fatal("stack links wrong")
	}
	if iomgr.GetAttachedDevice(disk) != f2 || iomgr.BottomDevice(f2) != disk {
		t.Fatal("GetAttachedDevice/BottomDevice wrong")
	}
}

func TestAttachRefusedOnInitializingDevice(t *testing.T) {
	m := iomgr.NewManager()
	drv := newBottomDriver(m)
	disk, _ := m.CreateDevice(drv, `\Device\Disk0`, iomgr.DeviceDisk, 0) // still initializing
	fdrv := newFilterDriver(m, "F")
	f, _ := m.CreateDevice(fdrv, "", iomgr.DeviceDisk, 0)
	_, err := m.AttachDeviceToDeviceStack(f, disk)
	if !errors.Is(err, iomgr.ErrDeviceInitializing) || !errors.Is(err, iomgr.StatusInvalidDeviceState) {
		t.Fatalf("attach to initializing device: %v", err)
	}
	disk.ClearFlags(iomgr.DeviceInitializing)
	if _, err := m.AttachDeviceToDeviceStack(f, disk); err != nil {
		t.Fatalf("attach after initialization: %v", err)
	}
	// A device being deleted refuses attachments too.
	disk2 := newBottom(t, m, drv, `\Device\Disk1`, &bottomExt{})
	g, _ := m.CreateDevice(fdrv, "", iomgr.DeviceDisk, 0)
	g.Extension = &filterExt{name: "G"}
	m.DeleteDevice(disk2)
	if _, err := m.AttachDeviceToDeviceStack(g, disk2); !errors.Is(err, iomgr.ErrDeviceDeleting) {
		t.Fatalf("attach to deleted device: %v", err)
	}
}

func TestDetachFromMiddleRefused(t *testing.T) {
	m := iomgr.NewManager()
	disk := newBottom(t, m, newBottomDriver(m), `\Device\Disk0`, &bottomExt{})
	f1 := attachFilter(t, m, newFilterDriver(m, "F1"), disk, "F1", nil)
	f2 := attachFilter(t, m, newFilterDriver(m, "F2"), disk, "F2", nil)
	if err := m.DetachDevice(disk); !errors.Is(err, iomgr.ErrNotTopOfStack) {
		t.Fatalf("detaching F1 (under F2): %v", err)
	}
	if disk.AttachedDevice() != f1 {
		t.Fatal("a refused detach changed the stack")
	}
	if err := m.DetachDevice(f1); err != nil { // F2 is on top: allowed
		t.Fatal(err)
	}
	if err := m.DetachDevice(disk); err != nil { // now F1 is on top
		t.Fatal(err)
	}
	if err := m.DetachDevice(disk); !errors.Is(err, iomgr.ErrNotAttached) {
		t.Fatalf("detach with nothing attached: %v", err)
	}
	_ = f2
}

func TestDeletingBottomDeviceDetachesAndDeletesThreeFiltersThroughFastIODetach(t *testing.T) {
	m := iomgr.NewManager()
	rec := &recorder{}
	before := m.DeviceCount()
	disk := newBottom(t, m, newBottomDriver(m), `\Device\HarddiskVolume1`, &bottomExt{})
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("F%d", i)
		attachFilter(t, m, newFilterDriver(m, name), disk, name, rec)
	}
	if got := m.DeviceCount(); got != before+4 {
		t.Fatalf("device count %d, want %d", got, before+4)
	}
	m.DeleteDevice(disk)
	equalStrings(t, rec.get(), []string{"fastio detach F1", "fastio detach F2", "fastio detach F3"})
	if got := m.DeviceCount(); got != before {
		t.Fatalf("device count after delete %d, want %d: devices left behind", got, before)
	}
	if _, _, err := m.LookupDevice(`\Device\HarddiskVolume1`); !errors.Is(err, iomgr.StatusObjectNameNotFound) {
		t.Fatalf("deleted device still in the namespace: %v", err)
	}
}

func TestDeleteWithAttachedDriverLackingFastIODetachIsABugCheck(t *testing.T) {
	m := iomgr.NewManager()
	disk := newBottom(t, m, newBottomDriver(m), `\Device\Disk0`, &bottomExt{})
	drv := m.CreateDriver(`\Driver\NoDetach`)
	f, _ := m.CreateDevice(drv, "", iomgr.DeviceDisk, 0)
	if _, err := m.AttachDeviceToDeviceStack(f, disk); err != nil {
		t.Fatal(err)
	}
	if bc := catchBugCheck(func() { m.DeleteDevice(disk) }); bc == nil || bc.Code != "DRIVER_CANNOT_DETACH" {
		t.Fatalf("got %v", bc)
	}
}

// volumeFixture builds a storage volume device with a VPB and a file system
// volume device with a filter on top.
type volumeFixture struct {
	m                          *iomgr.Manager
	volume, fsVolume, fsFilter *iomgr.Device
	vpb                        *iomgr.VPB
}

func newVolumeFixture(t *testing.T) *volumeFixture {
	m := iomgr.NewManager()
	vol := newBottom(t, m, newBottomDriver(m), `\Device\HarddiskVolume1`, &bottomExt{})
	v := vpb.New(vol)
	vol.SetVPB(v)
	fsd := newBottomDriver(m)
	fsVol := newBottom(t, m, fsd, "", &bottomExt{})
	flt := attachFilter(t, m, newFilterDriver(m, "VolFilter"), fsVol, "VolFilter", nil)
	return &volumeFixture{m: m, volume: vol, fsVolume: fsVol, fsFilter: flt, vpb: v}
}

func TestRelatedDeviceFollowsThreeRoutingSteps(t *testing.T) {
	t.Run("1: the file object's VPB", func(t *testing.T) {
		f := newVolumeFixture(t)
		if err := f.vpb.Mount(f.fsVolume, 1, "L", false); err != nil {
			t.Fatal(err)
		}
		fo := iomgr.NewFileObject(f.volume, `\a.txt`)
		fo.VPB = f.vpb
		// Even if the device's VPB is swapped (a forced dismount), the file
		// object keeps following the VPB it was opened through.
		f.volume.SetVPB(vpb.New(f.volume))
		if got := iomgr.RelatedDevice(fo); got != f.fsFilter {
			t.Fatalf("got %v, want the top of the FS volume stack", got)
		}
	})
	t.Run("2: the device's VPB", func(t *testing.T) {
		f := newVolumeFixture(t)
		if err := f.vpb.Mount(f.fsVolume, 1, "L", false); err != nil {
			t.Fatal(err)
		}
		fo := iomgr.NewFileObject(f.volume, `\a.txt`)
		if got := iomgr.RelatedDevice(fo); got != f.fsFilter {
			t.Fatalf("got %v, want the top of the FS volume stack", got)
		}
		fo.Flags |= iomgr.FODirectDeviceOpen // a direct device open skips step 2
		if got := iomgr.RelatedDevice(fo); got != f.volume {
			t.Fatalf("direct device open: got %v, want the storage volume", got)
		}
	})
	t.Run("3: the device itself", func(t *testing.T) {
		f := newVolumeFixture(t) // VPB not mounted
		disk := f.volume
		top := attachFilter(t, f.m, newFilterDriver(f.m, "DiskFilter"), disk, "DiskFilter", nil)
		fo := iomgr.NewFileObject(disk, "")
		if got := iomgr.RelatedDevice(fo); got != top {
			t.Fatalf("got %v, want the top of the device's own stack", got)
		}
	})
}

func TestHandleCountSendsCleanupAndReferenceCountSendsClose(t *testing.T) {
	m := iomgr.NewManager()
	rec := &recorder{}
	drv := m.CreateDriver(`\Driver\FS`)
	dev, _ := m.CreateDevice(drv, `\Device\Vol`, iomgr.DeviceDiskFileSystem, 0)
	dev.ClearFlags(iomgr.DeviceInitializing)
	for _, mj := range []iomgr.MajorFunction{iomgr.MajorCleanup, iomgr.MajorClose} {
		drv.Dispatch[mj] = func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
			sl := irp.CurrentStackLocation()
			rec.add("%v %s", sl.Major, sl.FileObject.FileName)
			return irp.Complete(iomgr.StatusSuccess, 0)
		}
	}
	fo := iomgr.NewFileObject(dev, `\f`)
	fo.OpenHandle()
	fo.OpenHandle()
	fo.Reference() // e.g. a cache keeps the file object
	fo.CloseHandle("test")
	equalStrings(t, rec.get(), nil)
	fo.CloseHandle("test")
	equalStrings(t, rec.get(), []string{`IRP_MJ_CLEANUP \f`})
	fo.Dereference("test")
	equalStrings(t, rec.get(), []string{`IRP_MJ_CLEANUP \f`, `IRP_MJ_CLOSE \f`})
	if fo.Flags&iomgr.FOCleanupComplete == 0 {
		t.Fatal("FO_CLEANUP_COMPLETE not set")
	}
}

func TestNamespaceLookupFollowsSymbolicLinks(t *testing.T) {
	m := iomgr.NewManager()
	drv := newBottomDriver(m)
	vol := newBottom(t, m, drv, `\Device\HarddiskVolume1`, &bottomExt{})
	part := newBottom(t, m, drv, `\Device\Harddisk0\Partition1`, &bottomExt{})
	if err := m.CreateSymbolicLink(`\DosDevices\C:`, `\Device\HarddiskVolume1`); err != nil {
		t.Fatal(err)
	}
	if err := m.CreateSymbolicLink(`\??\C:`, `\DosDevices\C:`); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path string
		dev  *iomgr.Device
		rest string
	}{
		{`\Device\HarddiskVolume1`, vol, ""},
		{`\device\harddiskvolume1\dir\file.txt`, vol, `\dir\file.txt`},
		{`\DosDevices\C:\EFI\BOOT`, vol, `\EFI\BOOT`},
		{`\??\c:\x`, vol, `\x`},
		{`\Device\Harddisk0\Partition1`, part, ""},
	}
	for _, c := range cases {
		dev, rest, err := m.LookupDevice(c.path)
		if err != nil || dev != c.dev || rest != c.rest {
			t.Errorf("lookup %s: %v %q %v", c.path, dev, rest, err)
		}
	}
	for _, bad := range []string{`\Device\Nope`, `\Device`, `relative`, `\DosDevices\D:`} {
		if _, _, err := m.LookupDevice(bad); err == nil {
			t.Errorf("lookup %s succeeded", bad)
		}
	}
	if _, err := m.CreateDevice(drv, `\DEVICE\harddiskvolume1`, iomgr.DeviceDisk, 0); !errors.Is(err, iomgr.StatusObjectNameCollision) {
		t.Fatalf("duplicate name: %v", err)
	}
	// A cycle of links ends with an error, not a hang.
	m.CreateSymbolicLink(`\A`, `\B`)
	m.CreateSymbolicLink(`\B`, `\A`)
	if _, _, err := m.LookupDevice(`\A\x`); err == nil {
		t.Fatal("link cycle resolved")
	}
	if err := m.DeleteSymbolicLink(`\dosdevices\c:`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.LookupDevice(`\DosDevices\C:`); !errors.Is(err, iomgr.ErrNameNotFound) {
		t.Fatalf("deleted link still resolves: %v", err)
	}
	if n := len(m.Namespace(`\Device\`)); n != 2 {
		t.Fatalf("namespace under \\Device: %d entries", n)
	}
}

func TestStatusCodesAreErrorsWithNTNamesAndValues(t *testing.T) {
	cases := []struct {
		s     iomgr.Status
		name  string
		value uint32
	}{
		{iomgr.StatusSuccess, "STATUS_SUCCESS", 0},
		{iomgr.StatusPending, "STATUS_PENDING", 0x103},
		{iomgr.StatusMoreProcessingRequired, "STATUS_MORE_PROCESSING_REQUIRED", 0xC0000016},
		{iomgr.StatusUnrecognizedVolume, "STATUS_UNRECOGNIZED_VOLUME", 0xC000014F},
		{iomgr.StatusInvalidParameter, "STATUS_INVALID_PARAMETER", 0xC000000D},
		{iomgr.StatusInvalidDeviceRequest, "STATUS_INVALID_DEVICE_REQUEST", 0xC0000010},
		{iomgr.StatusNoSuchDevice, "STATUS_NO_SUCH_DEVICE", 0xC000000E},
		{iomgr.StatusAccessDenied, "STATUS_ACCESS_DENIED", 0xC0000022},
		{iomgr.StatusSharingViolation, "STATUS_SHARING_VIOLATION", 0xC0000043},
		{iomgr.StatusObjectNameNotFound, "STATUS_OBJECT_NAME_NOT_FOUND", 0xC0000034},
		{iomgr.StatusObjectNameCollision, "STATUS_OBJECT_NAME_COLLISION", 0xC0000035},
		{iomgr.StatusEndOfFile, "STATUS_END_OF_FILE", 0xC0000011},
		{iomgr.StatusDiskFull, "STATUS_DISK_FULL", 0xC000007F},
		{iomgr.StatusMediaWriteProtected, "STATUS_MEDIA_WRITE_PROTECTED", 0xC00000A2},
		{iomgr.StatusFileCorruptError, "STATUS_FILE_CORRUPT_ERROR", 0xC0000102},
		{iomgr.StatusVolumeDismounted, "STATUS_VOLUME_DISMOUNTED", 0xC000026E},
		{iomgr.StatusCannotMake, "STATUS_CANNOT_MAKE", 0xC00002EA},
		{iomgr.StatusVolumeDirty, "STATUS_VOLUME_DIRTY", 0xC0000806},
		{iomgr.StatusDeviceNotReady, "STATUS_DEVICE_NOT_READY", 0xC00000A3},
		{iomgr.StatusNotImplemented, "STATUS_NOT_IMPLEMENTED", 0xC0000002},
		{iomgr.StatusCancelled, "STATUS_CANCELLED", 0xC0000120},
	}
	for _, c := range cases {
		if uint32(c.s) != c.value || c.s.Name() != c.name {
			t.Errorf("%s: value %#x name %s", c.name, uint32(c.s), c.s.Name())
		}
		wrapped := fmt.Errorf("open \\x: %w", c.s)
		if !errors.Is(wrapped, c.s) || iomgr.StatusOf(wrapped) != c.s {
			t.Errorf("%s: errors.Is/StatusOf through wrapping failed", c.name)
		}
	}
	if iomgr.StatusSuccess.Err() != nil || iomgr.StatusDiskFull.Err() == nil {
		t.Fatal("Err: success must be nil, errors non-nil")
	}
	if !iomgr.StatusPending.IsSuccess() || iomgr.StatusBufferOverflow.IsSuccess() || !iomgr.StatusDiskFull.IsError() {
		t.Fatal("severity classification")
	}
	if iomgr.StatusOf(errors.New("x")) != iomgr.StatusUnsuccessful || iomgr.StatusOf(nil) != iomgr.StatusSuccess {
		t.Fatal("StatusOf of plain errors")
	}
	if s := iomgr.Status(0xC0001234).Error(); s != "STATUS_0xC0001234" {
		t.Fatalf("unknown status text %q", s)
	}
}

func TestUnloadDriverNeedsItsDevicesGone(t *testing.T) {
	m := iomgr.NewManager()
	disk := newBottom(t, m, newBottomDriver(m), `\Device\Disk0`, &bottomExt{})
	fdrv := newFilterDriver(m, "F")
	attachFilter(t, m, fdrv, disk, "F", nil)
	if err := m.UnloadDriver(fdrv); err == nil {
		t.Fatal("unload without an unload routine succeeded")
	}
	fdrv.Unload = func(drv *iomgr.Driver) error {
		for _, d := range drv.Devices() {
			if err := m.DetachDevice(d.AttachedTo()); err != nil {
				return err
			}
			m.DeleteDevice(d)
		}
		return nil
	}
	if err := m.UnloadDriver(fdrv); err != nil {
		t.Fatal(err)
	}
	if m.DeviceCount() != 1 || disk.AttachedDevice() != nil || len(m.Drivers()) != 1 {
		t.Fatalf("after unload: %d devices, attached %v", m.DeviceCount(), disk.AttachedDevice())
	}
}

// A filter attached to a stack in use gets requests the moment it is on
// top; the safe attach gives it its lower device before that moment, so
// no request finds a filter that does not know where to pass it.
func TestSafeAttachUnderTrafficNeverExposesAFilterWithoutItsLowerDevice(t *testing.T) {
	m := iomgr.NewManager()
	disk := newBottom(t, m, newBottomDriver(m), `\Device\Disk0`, &bottomExt{})
	drv := newFilterDriver(m, "F")
	stop := make(chan struct{})
	done := make(chan error)
	go func() {
		var err error
		buf := make([]byte, 512)
		for n := 0; ; n++ {
			select {
			case <-stop:
				done <- err
				return
			default:
			}
			top := iomgr.GetAttachedDevice(disk)
			irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorRead, top, buf, 0)
			func() {
				defer func() {
					if p := recover(); p != nil && err == nil {
						err = fmt.Errorf("request %d to %v: %v", n, top, p)
					}
				}()
				iomgr.CallDriverAndWait(top, irp)
			}()
			iomgr.FreeIRP(irp)
		}
	}()
	for i := range 200 {
		dev, err := m.CreateDevice(drv, "", iomgr.DeviceDisk, 0)
		if err != nil {
			t.Fatal(err)
		}
		ext := &filterExt{name: fmt.Sprint("F", i)}
		dev.Extension = ext
		if err := m.AttachDeviceToDeviceStackSafe(dev, disk, &ext.lower); err != nil {
			t.Fatal(err)
		}
		dev.ClearFlags(iomgr.DeviceInitializing)
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
