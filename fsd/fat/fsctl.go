package fat

import (
	"github.com/vdisk-dev/vdisk/fsd/fat/internal/ondisk"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/mount"
)

// volumeIsDirty is FSCTL_IS_VOLUME_DIRTY's VOLUME_IS_DIRTY flag.
const volumeIsDirty = 0x00000001

// fileSystemControl handles IRP_MJ_FILE_SYSTEM_CONTROL on a volume device:
// the user requests (lock, unlock, dismount, is-mounted, is-dirty) and
// IRP_MN_VERIFY_VOLUME.
func (v *vcb) fileSystemControl(irp *iomgr.IRP) (iomgr.Status, uint64) {
	sl := irp.CurrentStackLocation()
	switch sl.Minor {
	case iomgr.MinorVerifyVolume:
		return v.verify(irp), 0
	case iomgr.MinorUserFSRequest:
	default:
		return iomgr.StatusInvalidDeviceRequest, 0
	}
	fo := sl.FileObject
	p := sl.Parameters.FileSystemControl
	switch p.ControlCode {
	case iomgr.FSCTLLockVolume:
		if !v.lock(irp.Requestor) {
			return iomgr.StatusVolumeDismounted, 0
		}
		defer v.mu.Unlock()
		// The lock holder sees the volume as it is on the disk.
		if err := v.flushAll(false); err != nil {
			return statusOf(err), 0
		}
		st := v.Lock(fo)
		if st.IsSuccess() {
			v.lockedBy = fo
		}
		return st, 0
	case iomgr.FSCTLUnlockVolume:
		if !v.lock(irp.Requestor) {
			return iomgr.StatusVolumeDismounted, 0
		}
		defer v.mu.Unlock()
		st := v.Unlock(fo)
		if st.IsSuccess() && v.lockedBy == fo {
			v.lockedBy = nil
		}
		return st, 0
	case iomgr.FSCTLDismountVolume:
		force := false
		if in, ok := p.Input.(*mount.DismountInput); ok && in != nil {
			force = in.Force
		}
		return v.dismount(irp.Requestor, fo, force), 0
	case iomgr.FSCTLIsVolumeMounted:
		if v.Dismounted() {
			return iomgr.StatusVolumeDismounted, 0
		}
		return iomgr.StatusSuccess, 0
	case iomgr.FSCTLIsVolumeDirty:
		out, ok := irp.SystemBuffer.(*uint32)
		if !ok {
			return iomgr.StatusInvalidUserBuffer, 0
		}
		if !v.rlock() {
			return iomgr.StatusVolumeDismounted, 0
		}
		defer v.mu.RUnlock()
		*out = 0
		if v.wasDirty {
			*out = volumeIsDirty
		}
		return iomgr.StatusSuccess, 4
	}
	return iomgr.StatusInvalidDeviceRequest, 0
}

// dismount handles FSCTL_DISMOUNT_VOLUME: everything is written first;
// when the dismount succeeds (refused with other handles open unless
// forced) the volume is left clean, and every later request on an old
// handle fails with STATUS_VOLUME_DISMOUNTED.
func (v *vcb) dismount(rq string, fo *iomgr.FileObject, force bool) iomgr.Status {
	if !v.lock(rq) {
		return iomgr.StatusVolumeDismounted
	}
	defer v.mu.Unlock()
	v.trimAll()
	ferr := v.flushAll(false)
	if ferr != nil {
		v.fs.logf("fat: volume %v: flush before dismount: %v", v.Real, ferr)
		if !force {
			return statusOf(ferr)
		}
	}
	st := v.Dismount(fo, force)
	if !st.IsSuccess() {
		return st
	}
	v.lockedBy = nil
	v.stopLazyWriter()
	v.fs.removeVolume(v)
	if ferr == nil && !v.readOnly {
		if err := v.flushAll(true); err != nil {
			v.fs.logf("fat: volume %v: marking the volume clean: %v", v.Real, err)
		}
	}
	return iomgr.StatusSuccess
}

// verify handles IRP_MN_VERIFY_VOLUME: the boot sector is read again and
// must describe the same volume (serial number and layout).
func (v *vcb) verify(irp *iomgr.IRP) iomgr.Status {
	p := irp.CurrentStackLocation().Parameters.VerifyVolume
	dev := p.Device
	if dev == nil {
		dev = v.Real
	}
	bio := &iomgr.BlockIO{Device: dev, Requestor: irp.Requestor}
	b := make([]byte, max(int(dev.SectorSize), 512))
	if _, err := bio.ReadAt(b, 0); err != nil {
		return iomgr.StatusWrongVolume
	}
	bs, err := ondisk.ParseBootSector(b)
	if err != nil {
		return iomgr.StatusWrongVolume
	}
	g, _ := bs.Geometry()
	if g != v.geo || bs.VolumeID != v.serial {
		return iomgr.StatusWrongVolume
	}
	return iomgr.StatusSuccess
}
