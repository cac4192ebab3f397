package builtin

import (
	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/filter"
	"github.com/vdisk-dev/vdisk/iomgr"
)

func init() {
	register(&Filter{
		Name:   "writeprotect",
		Kind:   DiskLevel,
		Params: []string{"on"},
		Help:   "refuses every write-class request to the disk (STATUS_MEDIA_WRITE_PROTECTED)",
		Disk: func(Spec, Host) (DeviceDispatch, error) {
			return everyDevice(writeProtect), nil
		},
	})
}

// isWriteClass reports whether a request changes the medium.
func isWriteClass(sl *iomgr.StackLocation) bool {
	switch sl.Major {
	case iomgr.MajorWrite:
		return true
	case iomgr.MajorDeviceControl:
		if req, ok := sl.Parameters.DeviceIoControl.Input.(*disk.DataSetRequest); ok {
			return req.Action == disk.DataSetTrim || req.Action == disk.DataSetZero
		}
		return sl.Parameters.DeviceIoControl.ControlCode == disk.IOCTLDiskIsWritable
	}
	return false
}

// writeProtect is the writeprotect disk filter's dispatch: every write-class
// request fails with STATUS_MEDIA_WRITE_PROTECTED.
func writeProtect(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
	if isWriteClass(irp.CurrentStackLocation()) {
		return irp.Complete(iomgr.StatusMediaWriteProtected, 0)
	}
	return filter.PassThrough(dev, irp)
}
