package fat

import (
	"fmt"

	"github.com/vdisk-dev/vdisk/iomgr"
)

// ioReq says on whose behalf a transfer is made.
type ioReq struct {
	rq           string            // the requestor recorded in the IRPs
	fo           *iomgr.FileObject // the user's file object, for file data
	writeThrough bool
}

// blockDevice is the one path between the driver's logic and the storage:
// whole-sector transfers at volume byte offsets. Metadata goes through one
// (the volume stream), file data through another (the storage volume's
// stack); a cache sits between the driver and the device by wrapping them.
type blockDevice interface {
	transfer(major iomgr.MajorFunction, req ioReq, p []byte, off int64) error
	flush(req ioReq) error
}

// streamDevice sends metadata I/O as NT's FastFAT does through its volume
// file: paging, non-cached IRPs on the volume stream file object, to the
// top of the volume device's own stack, so filters above the file system
// see them; the driver's read/write dispatch passes them to the storage.
type streamDevice struct{ vol *vcb }

func (s *streamDevice) transfer(major iomgr.MajorFunction, req ioReq, p []byte, off int64) error {
	b := iomgr.BlockIO{Device: s.vol.Device, Requestor: req.rq, FileObject: s.vol.stream, Flags: iomgr.IRPPagingIO | iomgr.IRPNoCache}
	return sendTransfer(&b, major, req, p, off, "of metadata ")
}

func (s *streamDevice) flush(req ioReq) error {
	b := iomgr.BlockIO{Device: s.vol.Real, Requestor: req.rq}
	return b.Flush()
}

// storageDevice sends file data to the top of the storage volume's stack.
type storageDevice struct{ vol *vcb }

func (s *storageDevice) transfer(major iomgr.MajorFunction, req ioReq, p []byte, off int64) error {
	b := iomgr.BlockIO{Device: s.vol.Real, Requestor: req.rq, FileObject: req.fo, Flags: iomgr.IRPNoCache}
	return sendTransfer(&b, major, req, p, off, "")
}

// sendTransfer sends one read or write of p at off through b; what says
// what is moved in the error ("of metadata ").
func sendTransfer(b *iomgr.BlockIO, major iomgr.MajorFunction, req ioReq, p []byte, off int64, what string) error {
	ios, _ := b.Send(iomgr.BlockRequest{Major: major, Buffer: p, Offset: off, WriteThrough: req.writeThrough})
	if !ios.Status.IsSuccess() {
		return fmt.Errorf("%s %d bytes %sat volume offset %d: %w", opName(major), len(p), what, off, ios.Status)
	}
	return nil
}

func (s *storageDevice) flush(req ioReq) error {
	b := iomgr.BlockIO{Device: s.vol.Real, Requestor: req.rq}
	return b.Flush()
}

func opName(major iomgr.MajorFunction) string {
	if major == iomgr.MajorWrite {
		return "write"
	}
	return "read"
}

// forwardToStorage passes a request on to the top of the storage volume's
// stack unchanged (volume stream I/O, DASD I/O, device controls).
func (v *vcb) forwardToStorage(irp *iomgr.IRP) iomgr.Status {
	return iomgr.PassDown(irp, iomgr.GetAttachedDevice(v.Real))
}

// dasd handles READ and WRITE on a volume open: sector I/O on the volume
// itself. Writes need the volume locked by the same handle (as FORMAT
// does): the file system's view of the metadata would otherwise be wrong.
func (v *vcb) dasd(irp *iomgr.IRP) iomgr.Status {
	sl := irp.CurrentStackLocation()
	if v.Dismounted() {
		return irp.Complete(iomgr.StatusVolumeDismounted, 0)
	}
	if sl.Major == iomgr.MajorWrite {
		v.mu.RLock()
		locked := v.lockedBy == sl.FileObject
		v.mu.RUnlock()
		switch {
		case v.readOnly:
			return irp.Complete(iomgr.StatusMediaWriteProtected, 0)
		case !locked:
			return irp.Complete(iomgr.StatusAccessDenied, 0)
		}
	}
	if v.hasDirtyData() {
		// Sector I/O sees the volume as the disk holds it: cached file
		// data goes down first.
		if !v.lock(irp.Requestor) {
			return irp.Complete(iomgr.StatusVolumeDismounted, 0)
		}
		err := v.writeBackAll(ioReq{rq: irp.Requestor})
		v.mu.Unlock()
		if err != nil {
			return irp.Complete(statusOf(err), 0)
		}
	}
	return v.forwardToStorage(irp)
}

// transferRange reads or writes p at volume offset off, which need not be
// aligned: the aligned middle goes straight to or from p, the partial first
// and last sectors through a sector buffer (read-modify-write for a write).
func transferRange(dev blockDevice, major iomgr.MajorFunction, req ioReq, p []byte, off int64, ss int64) error {
	if len(p) == 0 {
		return nil
	}
	end := off + int64(len(p))
	// Partial first sector.
	if head := off % ss; head != 0 {
		sec := off - head
		n := min(ss-head, int64(len(p)))
		buf := make([]byte, ss)
		if err := dev.transfer(iomgr.MajorRead, req, buf, sec); err != nil {
			return err
		}
		if major == iomgr.MajorRead {
			copy(p[:n], buf[head:])
		} else {
			copy(buf[head:], p[:n])
			if err := dev.transfer(iomgr.MajorWrite, req, buf, sec); err != nil {
				return err
			}
		}
		p, off = p[n:], off+n
		if len(p) == 0 {
			return nil
		}
	}
	// Aligned middle.
	if mid := (end - off) / ss * ss; mid > 0 {
		if err := dev.transfer(major, req, p[:mid], off); err != nil {
			return err
		}
		p, off = p[mid:], off+mid
	}
	// Partial last sector.
	if len(p) > 0 {
		buf := make([]byte, ss)
		if err := dev.transfer(iomgr.MajorRead, req, buf, off); err != nil {
			return err
		}
		if major == iomgr.MajorRead {
			copy(p, buf)
		} else {
			copy(buf, p)
			if err := dev.transfer(iomgr.MajorWrite, req, buf, off); err != nil {
				return err
			}
		}
	}
	return nil
}
