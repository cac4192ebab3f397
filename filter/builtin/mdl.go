package builtin

import (
	"github.com/vdisk-dev/vdisk/filter"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// refuseMDL answers an MDL read (IRP_MN_MDL) for a filter that must have
// the data in the caller's buffer, because it transforms or redirects it:
// STATUS_NOT_SUPPORTED, and the requestor reads normally. Giving back
// memory lent before the filter attached (IRP_MN_MDL|IRP_MN_COMPLETE) passes
// through to the driver that lent it.
func refuseMDL(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
	if irp.CurrentStackLocation().Minor&iomgr.MinorComplete != 0 {
		return filter.PassThrough(dev, irp)
	}
	return irp.Complete(iomgr.StatusNotSupported, 0)
}
