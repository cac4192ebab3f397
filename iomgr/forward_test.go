package iomgr_test

import (
	"bytes"
	"testing"

	"github.com/vdisk-dev/vdisk/iomgr"
)

// TestForwardDeeperReturnsTheLowerDriversMDLBuffer: an MDL read answers
// with memory of the lower driver's own in the IRP's Buffer. When a filter
// attached after the IRP was built, the request travels in an associated
// IRP (ForwardDeeper), and the buffer the lower driver left there must
// reach the master IRP, as it does when the IRP itself travels; otherwise
// the requestor sees success with no data. Found by TestStress: fio's
// 1 MiB reads over NBD failed with EIO while disk filters came and went.
func TestForwardDeeperReturnsTheLowerDriversMDLBuffer(t *testing.T) {
	m := iomgr.NewManager()
	lent := []byte("the disk's own memory")
	bottom := m.CreateDriver(`\Driver\Lender`)
	bottom.SetDispatchAll(func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		sl := irp.CurrentStackLocation()
		if sl.Minor == iomgr.MinorCompleteMDL {
			irp.Buffer = nil
			return irp.Complete(iomgr.StatusSuccess, 0)
		}
		irp.Buffer = lent
		return irp.Complete(iomgr.StatusSuccess, uint64(len(lent)))
	})
	disk, err := m.CreateDevice(bottom, `\Device\Lender`, iomgr.DeviceDisk, 0)
	if err != nil {
		t.Fatal(err)
	}
	disk.ClearFlags(iomgr.DeviceInitializing)
	// The upper device was set up for a stack of one: its IRPs are one
	// location short once the filter is beneath it.
	upper := m.CreateDriver(`\Driver\Upper`)
	upper.SetDispatchAll(func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		return iomgr.ForwardDeeper(irp, iomgr.GetAttachedDevice(disk), nil, nil)
	})
	top, err := m.CreateDevice(upper, `\Device\Upper`, iomgr.DeviceDisk, 0)
	if err != nil {
		t.Fatal(err)
	}
	top.ClearFlags(iomgr.DeviceInitializing)
	top.StackSize = 2
	f, err := m.CreateDevice(newFilterDriver(m, "late"), "", iomgr.DeviceDisk, 0)
	if err != nil {
		t.Fatal(err)
	}
	ext := &filterExt{name: "late"}
	f.Extension = ext
	if err := m.AttachDeviceToDeviceStackSafe(f, disk, &ext.lower); err != nil {
		t.Fatal(err)
	}
	f.ClearFlags(iomgr.DeviceInitializing)

	irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorRead, top, nil, 0)
	sl := irp.NextStackLocation()
	sl.Minor = iomgr.MinorMDL
	sl.Parameters.Read.Length = uint32(len(lent))
	ios := iomgr.CallDriverAndWait(top, irp)
	got := irp.Buffer
	iomgr.FreeIRP(irp)
	if !ios.Status.IsSuccess() || !bytes.Equal(got, lent) {
		t.Fatalf("MDL read forwarded deeper: %v, buffer %q, want %q", ios.Status, got, lent)
	}
}
