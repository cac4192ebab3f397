package filter

import (
	"bytes"
	"testing"

	"github.com/vdisk-dev/vdisk/iomgr"
)

// CallLowerAndWait carries a request in a larger IRP when the stack below
// grew after the IRP was built; what the lower driver leaves in the IRP's
// Buffer (an MDL read's lent memory) must come back to the caller's IRP,
// as it does when the IRP itself travels.
func TestCallLowerAndWaitReturnsTheLowerDriversBuffer(t *testing.T) {
	m := iomgr.NewManager()
	lent := []byte("the lower driver's own memory")
	lender := m.CreateDriver(`\Driver\Lender`)
	lender.SetDispatchAll(func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		irp.Buffer = lent
		return irp.Complete(iomgr.StatusSuccess, uint64(len(lent)))
	})
	lower, err := m.CreateDevice(lender, `\Device\Lender`, iomgr.DeviceDisk, 0)
	if err != nil {
		t.Fatal(err)
	}
	lower.ClearFlags(iomgr.DeviceInitializing)
	lower.StackSize = 2 // as if a filter had attached beneath it meanwhile

	fdrv := m.CreateDriver(`\Driver\F`)
	fdrv.SetDispatchAll(func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		st := CallLowerAndWait(dev, irp)
		iomgr.CompleteRequest(irp)
		return st
	})
	f, err := m.CreateDevice(fdrv, `\Device\F`, iomgr.DeviceDisk, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Extension = &Extension{Lower: lower}
	f.ClearFlags(iomgr.DeviceInitializing)

	irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorRead, f, nil, 0) // one location: F's
	sl := irp.NextStackLocation()
	sl.Minor = iomgr.MinorMDL
	sl.Parameters.Read.Length = uint32(len(lent))
	ios := iomgr.CallDriverAndWait(f, irp)
	got := irp.Buffer
	iomgr.FreeIRP(irp)
	if !ios.Status.IsSuccess() || !bytes.Equal(got, lent) {
		t.Fatalf("read through CallLowerAndWait: %v, buffer %q, want %q", ios.Status, got, lent)
	}
}
