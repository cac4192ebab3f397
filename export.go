package vdisk

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/nbd"
	"github.com/vdisk-dev/vdisk/volume"
)

// Exports returns the NBD exports of every image, as CLI.md names them: for
// disk.img, `disk` (the whole disk) and `disk@1`, `disk@2`, … (its volumes,
// one per partition); the first image's whole disk is also the default
// export "". Writable exports claim their volumes so that an in-process
// mount is refused while they exist; release gives the claims back.
func (s *System) Exports(readOnly bool) (exports []nbd.Export, release func(), err error) {
	var claimed []*volume.Extension
	release = func() {
		for _, c := range claimed {
			c.ReleaseExportWrite()
		}
		claimed = nil
	}
	claim := func(vols ...*iomgr.Device) error {
		for _, v := range vols {
			ext := v.Extension.(*volume.Extension)
			if err := ext.AcquireExportWrite(); err != nil {
				return fmt.Errorf("export %v writable: %w", v, err)
			}
			claimed = append(claimed, ext)
		}
		return nil
	}
	for i, img := range s.Images() {
		ro := readOnly || img.ReadOnly
		dk := img.Disk.Extension.(*disk.Disk)
		whole := nbd.Export{Name: img.Name, Description: fmt.Sprintf("%s: whole disk (%s)", img.Name, img.Table.Kind),
			Device: &ExportDevice{Device: img.Disk, Length: dk.Size}, ReadOnly: ro, MinBlock: dk.SectorSize}
		if !ro {
			if err := claim(img.Volumes...); err != nil {
				release()
				return nil, nil, err
			}
		}
		exports = append(exports, whole)
		if i == 0 {
			def := whole
			def.Name = ""
			exports = append(exports, def)
		}
		if len(img.Partitions) == 0 {
			continue
		}
		for j, v := range img.Volumes {
			vext := v.Extension.(*volume.Extension)
			if !ro {
				if err := claim(v); err != nil {
					release()
					return nil, nil, err
				}
			}
			exports = append(exports, nbd.Export{
				Name:        fmt.Sprintf("%s@%d", img.Name, j+1),
				Description: fmt.Sprintf("%s partition %d", img.Name, j+1),
				Device:      &ExportDevice{Device: v, Length: vext.Size},
				ReadOnly:    ro,
				MinBlock:    dk.SectorSize,
			})
		}
	}
	return exports, release, nil
}

// ExportDevice turns NBD requests into IRPs sent to the top of a device's
// stack (the whole disk's or a volume's), so that every filter attached
// there sees them, with the NBD client's address as requestor.
type ExportDevice struct {
	// Device is the disk or volume device; requests go to the top of its stack.
	Device *iomgr.Device
	// Length is the export's size in bytes.
	Length int64
}

var _ nbd.Device = (*ExportDevice)(nil)

// Size implements nbd.Device.
func (e *ExportDevice) Size() int64 { return e.Length }

func (e *ExportDevice) transfer(r *nbd.Request, major iomgr.MajorFunction, p []byte, off int64, writeThrough bool) error {
	top := iomgr.GetAttachedDevice(e.Device)
	irp := iomgr.BuildSynchronousFSDRequest(major, top, p, off)
	irp.Requestor = r.Requestor()
	if writeThrough {
		irp.NextStackLocation().Flags |= iomgr.SLWriteThrough
	}
	st := iomgr.CallDriverAndWait(top, irp).Status
	iomgr.FreeIRP(irp)
	return st.Err()
}

// ReadAt implements nbd.Device with an IRP_MJ_READ into the reply buffer.
func (e *ExportDevice) ReadAt(r *nbd.Request, p []byte, off int64) error {
	return e.transfer(r, iomgr.MajorRead, p, off, false)
}

// WriteAt implements nbd.Device with an IRP_MJ_WRITE (write-through for FUA).
func (e *ExportDevice) WriteAt(r *nbd.Request, p []byte, off int64) error {
	return e.transfer(r, iomgr.MajorWrite, p, off, r.Flags()&nbd.FlagFUA != 0)
}

// Flush implements nbd.Device with an IRP_MJ_FLUSH_BUFFERS.
func (e *ExportDevice) Flush(r *nbd.Request) error {
	top := iomgr.GetAttachedDevice(e.Device)
	irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorFlushBuffers, top, nil, 0)
	if r != nil {
		irp.Requestor = r.Requestor()
	}
	st := iomgr.CallDriverAndWait(top, irp).Status
	iomgr.FreeIRP(irp)
	return st.Err()
}

func (e *ExportDevice) dataSet(r *nbd.Request, req *disk.DataSetRequest, out any) error {
	top := iomgr.GetAttachedDevice(e.Device)
	irp := iomgr.BuildDeviceIoControlRequest(disk.IOCTLStorageManageDataSetAttributes, top, req, out, false)
	irp.Requestor = r.Requestor()
	st := iomgr.CallDriverAndWait(top, irp).Status
	iomgr.FreeIRP(irp)
	return st.Err()
}

// Trim implements nbd.Device with a data-set TRIM control.
func (e *ExportDevice) Trim(r *nbd.Request, off, length int64) error {
	return e.dataSet(r, &disk.DataSetRequest{Action: disk.DataSetTrim, Offset: off, Length: length}, nil)
}

// WriteZeroes implements nbd.Device with a data-set zeroing control.
func (e *ExportDevice) WriteZeroes(r *nbd.Request, off, length int64) error {
	var flags disk.ZeroFlags
	if r.Flags()&nbd.FlagNoHole != 0 {
		flags |= disk.ZeroNoHole
	}
	if r.Flags()&nbd.FlagFastZero != 0 {
		flags |= disk.ZeroFast
	}
	return e.dataSet(r, &disk.DataSetRequest{Action: disk.DataSetZero, Offset: off, Length: length, Flags: flags}, nil)
}

// BlockStatus implements nbd.Device with a data-set allocation query.
func (e *ExportDevice) BlockStatus(r *nbd.Request, off, length int64, ext []nbd.Extent) ([]nbd.Extent, error) {
	var got []disk.Extent
	if err := e.dataSet(r, &disk.DataSetRequest{Action: disk.DataSetAllocation, Offset: off, Length: length}, &got); err != nil {
		return ext, err
	}
	for _, x := range got {
		var f uint32
		if x.Hole {
			f |= nbd.StateHole
		}
		if x.Zero || x.Hole {
			f |= nbd.StateZero
		}
		ext = append(ext, nbd.Extent{Length: x.Length, Flags: f})
	}
	return ext, nil
}

// Cache implements nbd.Device with a data-set prefetch control.
func (e *ExportDevice) Cache(r *nbd.Request, off, length int64) error {
	return e.dataSet(r, &disk.DataSetRequest{Action: disk.DataSetPrefetch, Offset: off, Length: length}, nil)
}

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
