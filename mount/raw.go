package mount

import (
	"github.com/vdisk-dev/vdisk/iomgr"
)

// RawFileSystem is the raw file system (`\FileSystem\RAW`): registered last,
// it claims any volume no other file system recognises, and offers only the
// volume itself to open, for direct sector access (formatting).
type RawFileSystem struct {
	Driver        *iomgr.Driver
	ControlDevice *iomgr.Device
	manager       *iomgr.Manager
}

// NewRawFileSystem loads the raw file system into io and registers it with m.
func NewRawFileSystem(m *Manager) (*RawFileSystem, error) {
	io := m.IOManager()
	r := &RawFileSystem{Driver: io.CreateDriver(`\FileSystem\RAW`), manager: io}
	cdo, err := io.CreateDevice(r.Driver, `\Device\RawDisk`, iomgr.DeviceDiskFileSystem, 0)
	if err != nil {
		return nil, err
	}
	cdo.ClearFlags(iomgr.DeviceInitializing)
	r.ControlDevice = cdo
	r.Driver.SetDispatchAll(r.dispatch)
	m.RegisterRawFileSystem(cdo)
	return r, nil
}

// rawVolume is the device extension of a raw volume device.
type rawVolume struct {
	VolumeState
}

func (r *RawFileSystem) dispatch(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
	sl := irp.CurrentStackLocation()
	if dev == r.ControlDevice {
		if sl.Major == iomgr.MajorFileSystemControl && sl.Minor == iomgr.MinorMountVolume {
			return irp.Complete(r.mount(sl.Parameters.MountVolume), 0)
		}
		if sl.Major == iomgr.MajorCreate || sl.Major == iomgr.MajorCleanup || sl.Major == iomgr.MajorClose {
			return irp.Complete(iomgr.StatusSuccess, 0)
		}
		return irp.Complete(iomgr.StatusInvalidDeviceRequest, 0)
	}
	vol := dev.Extension.(*rawVolume)
	switch sl.Major {
	case iomgr.MajorCreate:
		if vol.Dismounted() {
			return irp.Complete(iomgr.StatusVolumeDismounted, 0)
		}
		if sl.FileObject.FileName != "" && sl.FileObject.FileName != `\` {
			return irp.Complete(iomgr.StatusObjectNameNotFound, 0)
		}
		sl.FileObject.Flags |= iomgr.FOVolumeOpen
		return irp.Complete(iomgr.StatusSuccess, iomgr.FileOpened)
	case iomgr.MajorCleanup:
		_ = vol.Unlock(sl.FileObject)
		return irp.Complete(iomgr.StatusSuccess, 0)
	case iomgr.MajorClose:
		st := irp.Complete(iomgr.StatusSuccess, 0)
		vol.Closed(r.manager)
		return st
	case iomgr.MajorFileSystemControl:
		return irp.Complete(r.fsControl(vol, irp), 0)
	case iomgr.MajorRead, iomgr.MajorWrite, iomgr.MajorFlushBuffers, iomgr.MajorDeviceControl:
		if vol.Dismounted() {
			return irp.Complete(iomgr.StatusVolumeDismounted, 0)
		}
		return iomgr.PassDown(irp, iomgr.GetAttachedDevice(vol.Real))
	}
	return irp.Complete(iomgr.StatusInvalidDeviceRequest, 0)
}

// mount claims any volume: RAW recognises everything.
func (r *RawFileSystem) mount(p iomgr.MountParameters) iomgr.Status {
	real := p.Device
	v := real.VPB()
	dev, err := r.manager.CreateDevice(r.Driver, "", iomgr.DeviceDiskFileSystem, 0)
	if err != nil {
		return iomgr.StatusInsufficientResources
	}
	dev.Extension = &rawVolume{VolumeState{VPB: v, Real: real, Device: dev}}
	dev.StackSize = iomgr.GetAttachedDevice(real).StackSize + 1
	dev.SectorSize = real.SectorSize
	dev.SetFlags(real.Flags() & (iomgr.DeviceDirectIO | iomgr.DeviceBufferedIO))
	if err := v.Mount(dev, 0, "", true); err != nil {
		r.manager.DeleteDevice(dev)
		return iomgr.StatusUnrecognizedVolume
	}
	dev.ClearFlags(iomgr.DeviceInitializing)
	return iomgr.StatusSuccess
}

func (r *RawFileSystem) fsControl(vol *rawVolume, irp *iomgr.IRP) iomgr.Status {
	sl := irp.CurrentStackLocation()
	if sl.Minor != iomgr.MinorUserFSRequest {
		return iomgr.StatusInvalidDeviceRequest
	}
	switch sl.Parameters.FileSystemControl.ControlCode {
	case iomgr.FSCTLDismountVolume:
		force := false
		if in, ok := sl.Parameters.FileSystemControl.Input.(*DismountInput); ok {
			force = in.Force
		}
		return vol.Dismount(sl.FileObject, force)
	case iomgr.FSCTLLockVolume:
		return vol.Lock(sl.FileObject)
	case iomgr.FSCTLUnlockVolume:
		return vol.Unlock(sl.FileObject)
	case iomgr.FSCTLIsVolumeMounted:
		if vol.Dismounted() {
			return iomgr.StatusVolumeDismounted
		}
		return iomgr.StatusSuccess
	}
	return iomgr.StatusInvalidDeviceRequest
}
