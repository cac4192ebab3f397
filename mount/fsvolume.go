package mount

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/vpb"
)

// VolumeState is the mount bookkeeping every file system keeps for a volume
// it mounted (NT's VCB condition): the VPB, the storage volume, the file
// system's own volume device, and whether the volume was dismounted. Its
// methods implement the parts of FSCTL_DISMOUNT_VOLUME, FSCTL_LOCK_VOLUME
// and FSCTL_UNLOCK_VOLUME, and the end of a dismounted volume at its last
// close, the same way for every file system.
type VolumeState struct {
	VPB    *iomgr.VPB    // the VPB the volume was mounted through
	Real   *iomgr.Device // the storage volume device
	Device *iomgr.Device // the file system's volume device

	dismounted atomic.Bool
	deleteOnce sync.Once
}

// Dismounted reports whether the volume was dismounted: every request on a
// handle opened before must then fail with STATUS_VOLUME_DISMOUNTED.
func (s *VolumeState) Dismounted() bool { return s.dismounted.Load() }

// Dismount handles FSCTL_DISMOUNT_VOLUME sent on fo (after the file system
// flushed): it refuses while other handles are open unless force, retires
// the VPB (new opens fail, old handles still reach the file system) and
// gives the storage volume a fresh VPB so the next open mounts afresh.
func (s *VolumeState) Dismount(fo *iomgr.FileObject, force bool) iomgr.Status {
	if s.dismounted.Load() {
		return iomgr.StatusVolumeDismounted
	}
	if err := s.VPB.BeginDismount(fo, 1, force); err != nil {
		switch {
		case errors.Is(err, vpb.ErrInUse), errors.Is(err, vpb.ErrLocked):
			return iomgr.StatusAccessDenied
		}
		return iomgr.StatusVolumeDismounted
	}
	if err := s.VPB.Retire(); err != nil {
		s.VPB.CancelDismount()
		return iomgr.StatusVolumeDismounted
	}
	s.dismounted.Store(true)
	s.Real.SetVPB(vpb.New(s.Real))
	return iomgr.StatusSuccess
}

// Lock handles FSCTL_LOCK_VOLUME on fo.
func (s *VolumeState) Lock(fo *iomgr.FileObject) iomgr.Status {
	if s.dismounted.Load() {
		return iomgr.StatusVolumeDismounted
	}
	if err := s.VPB.Lock(fo, 1); err != nil {
		return iomgr.StatusAccessDenied
	}
	return iomgr.StatusSuccess
}

// Unlock handles FSCTL_UNLOCK_VOLUME on fo (and the cleanup of a handle that
// still holds the lock).
func (s *VolumeState) Unlock(fo *iomgr.FileObject) iomgr.Status {
	if err := s.VPB.Unlock(fo); err != nil {
		return iomgr.StatusNotLocked
	}
	return iomgr.StatusSuccess
}

// Closed is called by the file system after it handled IRP_MJ_CLOSE: once a
// dismounted volume has no reference left, its VPB lets go of the file
// system's volume device and the device is deleted, which detaches every
// filter above it through fast I/O detach. It reports whether the device
// was deleted.
func (s *VolumeState) Closed(m *iomgr.Manager) bool {
	if !s.dismounted.Load() || s.VPB.ReferenceCount() > 0 {
		return false
	}
	deleted := false
	s.deleteOnce.Do(func() {
		_, _ = s.VPB.Dismount()
		m.DeleteDevice(s.Device)
		deleted = true
	})
	return deleted
}

// RealDevice returns the storage volume device, so that a filter loaded
// after the mount can tell which volume a file system volume device serves.
func (s *VolumeState) RealDevice() *iomgr.Device { return s.Real }
