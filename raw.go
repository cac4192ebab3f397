package vdisk

import (
	"fmt"

	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/mount"
	"github.com/vdisk-dev/vdisk/volume"
)

// RawVolume is a volume opened for its bytes rather than its files, as NT's
// DASD open of `\\.\X:` is: the raw file system holds the volume, every
// transfer is an IRP on that handle (so the filters of the volume's stack
// see it), and, opened for writing, the volume is locked so that no other
// open reaches it until Close. Transfers must be whole sectors.
type RawVolume struct {
	v          *Volume
	fo         *iomgr.FileObject
	size       int64
	sectorSize int
	locked     bool
	closed     bool
}

// OpenRaw opens the volume's bytes. The file system mounted on it, if any,
// is dismounted first (flushing what it cached); Close dismounts the raw
// one, so that the next open of a path mounts whatever file system the
// volume then holds.
func (v *Volume) OpenRaw(write bool) (*RawVolume, error) {
	dev := v.Device
	if vp := dev.VPB(); vp != nil && vp.Mounted() {
		if err := v.sys.mounts.Dismount(dev, mount.DismountOptions{Requestor: v.Requestor}); err != nil {
			return nil, fmt.Errorf("dismount the mounted file system first: %w", err)
		}
	}
	access := iomgr.FileGenericRead
	if write {
		access |= iomgr.FileGenericWrite
	}
	fo, _, err := v.sys.mounts.Open(`\DosDevices\`+v.Name, mount.OpenOptions{Raw: true, Requestor: v.Requestor,
		DesiredAccess: access, Disposition: iomgr.FileOpen, ShareAccess: iomgr.ShareRead | iomgr.ShareWrite})
	if err != nil {
		return nil, fmt.Errorf("open the volume: %w", err)
	}
	r := &RawVolume{v: v, fo: fo, size: v.Size(), sectorSize: int(dev.SectorSize)}
	if r.sectorSize == 0 {
		r.sectorSize = 512
	}
	if write {
		if err := mount.FileSystemControl(fo, iomgr.FSCTLLockVolume, nil, nil, v.Requestor); err != nil {
			fo.CloseHandle(v.Requestor)
			return nil, fmt.Errorf("lock the volume: %w", err)
		}
		r.locked = true
	}
	return r, nil
}

// Size is the volume's size in bytes.
func (r *RawVolume) Size() int64 { return r.size }

// Size is the volume's size in bytes: its partition's, or the whole disk's.
func (v *Volume) Size() int64 { return v.Device.Extension.(*volume.Extension).Size }

// SectorSize is the volume's sector size: transfers are multiples of it.
func (r *RawVolume) SectorSize() int { return r.sectorSize }

// transfer sends one read or write of p at off.
func (r *RawVolume) transfer(major iomgr.MajorFunction, p []byte, off int64) (int, error) {
	op := "read"
	if major == iomgr.MajorWrite {
		op = "write"
	}
	if r.closed {
		return 0, fmt.Errorf("%s %s: %w", op, r.v.Name, iomgr.StatusFileClosed)
	}
	ios := r.v.sendTransfer(r.fo, major, p, off)
	if !ios.Status.IsSuccess() {
		return int(ios.Information), fmt.Errorf("%s %d bytes at offset %d of %s: %w", op, len(p), off, r.v.Name, ios.Status)
	}
	return len(p), nil
}

// ReadAt reads len(p) bytes at off (io.ReaderAt), in transfers of at most
// maxTransfer bytes (1 GiB).
func (r *RawVolume) ReadAt(p []byte, off int64) (int, error) {
	return r.chunked(iomgr.MajorRead, p, off)
}

// WriteAt writes p at off (io.WriterAt).
func (r *RawVolume) WriteAt(p []byte, off int64) (int, error) {
	return r.chunked(iomgr.MajorWrite, p, off)
}

func (r *RawVolume) chunked(major iomgr.MajorFunction, p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		n := min(len(p)-done, maxTransfer)
		k, err := r.transfer(major, p[done:done+n], off+int64(done))
		done += k
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// dataSet sends a data-set management control down the volume's stack.
func (r *RawVolume) dataSet(req *disk.DataSetRequest, out any) error {
	if r.closed {
		return fmt.Errorf("%s: %w", r.v.Name, iomgr.StatusFileClosed)
	}
	st := r.v.send(r.fo, iomgr.MajorDeviceControl, 0, func(irp *iomgr.IRP, sl *iomgr.StackLocation) {
		irp.SystemBuffer = out
		sl.Parameters.DeviceIoControl = iomgr.ControlParameters{ControlCode: disk.IOCTLStorageManageDataSetAttributes, Input: req}
	}).Status
	if !st.IsSuccess() {
		return fmt.Errorf("%s: data set request at offset %d, %d bytes: %w", r.v.Name, req.Offset, req.Length, st)
	}
	return nil
}

// Zero makes length bytes at off read as zeros, punching a hole in the
// image where its file system can, so that zeros take no room.
func (r *RawVolume) Zero(off, length int64) error {
	if length == 0 {
		return nil
	}
	return r.dataSet(&disk.DataSetRequest{Action: disk.DataSetZero, Offset: off, Length: length}, nil)
}

// Allocation reports which of length bytes at off hold data and which are
// holes in the image (disk.Extent, offsets relative to the volume).
func (r *RawVolume) Allocation(off, length int64) ([]disk.Extent, error) {
	var out []disk.Extent
	if err := r.dataSet(&disk.DataSetRequest{Action: disk.DataSetAllocation, Offset: off, Length: length}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Flush sends IRP_MJ_FLUSH_BUFFERS down the volume's stack.
func (r *RawVolume) Flush() error {
	if st := r.v.send(r.fo, iomgr.MajorFlushBuffers, 0, nil).Status; !st.IsSuccess() {
		return fmt.Errorf("flush %s: %w", r.v.Name, st)
	}
	return nil
}

// Close unlocks and closes the volume, and dismounts the raw file system
// from it.
func (r *RawVolume) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.locked {
		_ = mount.FileSystemControl(r.fo, iomgr.FSCTLUnlockVolume, nil, nil, r.v.Requestor)
	}
	r.fo.CloseHandle(r.v.Requestor)
	if vp := r.v.Device.VPB(); vp != nil && vp.Mounted() {
		if err := r.v.sys.mounts.Dismount(r.v.Device, mount.DismountOptions{Requestor: r.v.Requestor}); err != nil {
			return fmt.Errorf("dismount the raw volume: %w", err)
		}
	}
	return nil
}
