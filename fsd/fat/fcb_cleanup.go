package fat

import (
	"github.com/vdisk-dev/vdisk/iomgr"
)

// cleanup handles IRP_MJ_CLEANUP, sent when a file object's last handle
// closes: its share access is given back, a lock it held on the volume is
// released, and when it was the file's last handle a pending delete takes
// effect (else the clusters past the end of the file are given back) and
// the metadata is written. On a dismounted volume only the bookkeeping is
// done.
func (v *vcb) cleanup(irp *iomgr.IRP) (iomgr.Status, uint64) {
	sl := irp.CurrentStackLocation()
	fo := sl.FileObject
	v.mu.Lock()
	defer v.mu.Unlock()
	v.rq = irp.Requestor
	if fo == nil {
		return iomgr.StatusSuccess, 0
	}
	if v.lockedBy == fo {
		v.lockedBy = nil
		_ = v.Unlock(fo)
	}
	switch x := fo.FsContext.(type) {
	case *vcb:
		if c, ok := fo.FsContext2.(*ccb); ok && !c.cleaned {
			c.cleaned = true
			v.share.update(c.counted, -1)
		}
		return iomgr.StatusSuccess, 0
	case *fcb:
		c, ok := fo.FsContext2.(*ccb)
		if !ok || c.cleaned {
			return iomgr.StatusSuccess, 0
		}
		c.cleaned = true
		f := x
		f.handles--
		f.share.update(c.counted, -1)
		if c.deleteOnClose {
			f.deletePending = true
		}
		if f.handles > 0 || v.Dismounted() || f.deleted || v.readOnly {
			return iomgr.StatusSuccess, 0
		}
		if err := v.needsCheck(); err != nil && (f.deletePending || !f.isDir) {
			// A corrupt volume frees no cluster: a delete or a trim could
			// free clusters another chain still uses. What was written
			// goes to the disk.
			if f.deletePending {
				v.fs.logf("fat: %s: not deleted: the volume needs a check (%v)", f.path(), err)
			} else if err := v.writeBack(f, ioReq{rq: irp.Requestor, fo: fo}); err != nil {
				return statusOf(err), 0
			}
			return statusOf(v.deferCommit()), 0
		}
		if f.deletePending {
			if err := v.deleteFile(f); err != nil {
				v.fs.logf("fat: %s: delete: %v", f.path(), err)
			}
		} else if !f.isDir {
			if err := v.trim(f); err != nil {
				v.fs.logf("fat: %s: giving back clusters past the end: %v", f.path(), err)
			}
			// The last handle is gone: what it wrote goes to the disk now,
			// before the metadata that describes it.
			if err := v.writeBack(f, ioReq{rq: irp.Requestor, fo: fo}); err != nil {
				return statusOf(err), 0
			}
		}
		return statusOf(v.deferCommit()), 0
	}
	return iomgr.StatusSuccess, 0
}

// close handles IRP_MJ_CLOSE, sent when nothing refers to a file object
// any more: its FCB loses one reference (a file's FCB goes with its last).
// The caller then lets mount.VolumeState delete a dismounted volume's
// device at its last close.
func (v *vcb) close(irp *iomgr.IRP) (iomgr.Status, uint64) {
	fo := irp.CurrentStackLocation().FileObject
	if fo == nil {
		return iomgr.StatusSuccess, 0
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if f, ok := fo.FsContext.(*fcb); ok {
		v.release(f)
	}
	return iomgr.StatusSuccess, 0
}
