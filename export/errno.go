package export

import (
	"errors"
	"syscall"

	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/nbd"
)

// Errno maps the status carried by a device error to the NBD error number
// the protocol expects.
func Errno(err error) nbd.Errno {
	var st iomgr.Status
	if !errors.As(err, &st) {
		return nbd.DefaultErrno(err)
	}
	switch st {
	case iomgr.StatusInvalidParameter, iomgr.StatusInvalidUserBuffer:
		return nbd.Errno(syscall.EINVAL)
	case iomgr.StatusMediaWriteProtected, iomgr.StatusAccessDenied:
		return nbd.Errno(syscall.EPERM)
	case iomgr.StatusDiskFull:
		return nbd.Errno(syscall.ENOSPC)
	case iomgr.StatusNotSupported, iomgr.StatusNotImplemented, iomgr.StatusInvalidDeviceRequest:
		return nbd.Errno(syscall.ENOTSUP)
	case iomgr.StatusInsufficientResources:
		return nbd.Errno(syscall.ENOMEM)
	case iomgr.StatusVolumeDismounted, iomgr.StatusDeviceNotReady, iomgr.StatusNoSuchDevice:
		return nbd.Errno(syscall.ESHUTDOWN)
	}
	return nbd.Errno(syscall.EIO)
}
