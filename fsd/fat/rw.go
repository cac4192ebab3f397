package fat

import (
	"github.com/vdisk-dev/vdisk/fsd/fat/internal/ondisk"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// Special byte offsets of READ and WRITE, as NT encodes them in a
// LARGE_INTEGER: FILE_WRITE_TO_END_OF_FILE appends, and
// FILE_USE_FILE_POINTER_POSITION uses the handle's current position.
const (
	writeToEndOfFile       = -1
	useFilePointerPosition = -2
)

// zeros is what gaps are filled with; nothing ever writes into it.
var zeros = make([]byte, 1<<20)

// read handles IRP_MJ_READ of a file: any offset and length; a read at or
// past the end of the file gives STATUS_END_OF_FILE, one across it is short.
// It runs under the shared volume lock, so reads proceed in parallel.
func (v *vcb) read(irp *iomgr.IRP) (iomgr.Status, uint64) {
	sl := irp.CurrentStackLocation()
	f, c := fileContext(sl.FileObject)
	if f == nil || c == nil {
		return iomgr.StatusInvalidParameter, 0
	}
	if f.isDir {
		return iomgr.StatusInvalidDeviceRequest, 0
	}
	if irp.Flags&iomgr.IRPPagingIO == 0 && c.access&(iomgr.FileReadData|iomgr.FileExecute) == 0 {
		return iomgr.StatusAccessDenied, 0
	}
	p := sl.Transfer()
	n := int64(p.Length)
	if int64(len(irp.Buffer)) < n {
		return iomgr.StatusInvalidUserBuffer, 0
	}
	off := p.ByteOffset
	if off == useFilePointerPosition {
		off = c.position()
	}
	if off < 0 {
		return iomgr.StatusInvalidParameter, 0
	}
	if !v.rlock() {
		return iomgr.StatusVolumeDismounted, 0
	}
	defer v.mu.RUnlock()
	if n == 0 {
		return iomgr.StatusSuccess, 0
	}
	size := int64(f.size())
	if off >= size {
		return iomgr.StatusEndOfFile, 0
	}
	n = min(n, size-off)
	req := ioReq{rq: irp.Requestor, fo: sl.FileObject}
	if err := v.fileIO(f, iomgr.MajorRead, req, irp.Buffer[:n], off); err != nil {
		return statusOf(err), 0
	}
	c.setPosition(off + n)
	return iomgr.StatusSuccess, uint64(n)
}

// write handles IRP_MJ_WRITE of a file: any offset and length; a write
// past the end extends the file, filling the gap with zeros. A volume too
// full for it fails with STATUS_DISK_FULL and leaves nothing allocated.
func (v *vcb) write(irp *iomgr.IRP) (iomgr.Status, uint64) {
	sl := irp.CurrentStackLocation()
	fo := sl.FileObject
	f, c := fileContext(fo)
	if f == nil || c == nil {
		return iomgr.StatusInvalidParameter, 0
	}
	if f.isDir {
		return iomgr.StatusInvalidDeviceRequest, 0
	}
	paging := irp.Flags&iomgr.IRPPagingIO != 0
	if !paging && c.access&(iomgr.FileWriteData|iomgr.FileAppendData) == 0 {
		return iomgr.StatusAccessDenied, 0
	}
	if v.readOnly {
		return iomgr.StatusMediaWriteProtected, 0
	}
	if !paging {
		// Paging writes carry data already accepted into the cache.
		if st := v.refuseWrite(); st != iomgr.StatusSuccess {
			return st, 0
		}
	}
	p := sl.Transfer()
	n := int64(p.Length)
	if int64(len(irp.Buffer)) < n {
		return iomgr.StatusInvalidUserBuffer, 0
	}
	if !v.lock(irp.Requestor) {
		return iomgr.StatusVolumeDismounted, 0
	}
	defer v.mu.Unlock()
	if f.deleted {
		return iomgr.StatusFileDeleted, 0
	}
	size := int64(f.size())
	off := p.ByteOffset
	switch {
	case off == writeToEndOfFile:
		off = size
	case off == useFilePointerPosition:
		off = c.position()
	case !paging && c.access&iomgr.FileWriteData == 0:
		off = size // append-only access
	}
	if off < 0 {
		return iomgr.StatusInvalidParameter, 0
	}
	if n == 0 {
		return iomgr.StatusSuccess, 0
	}
	end := off + n
	if end > ondisk.MaxFileSize {
		return iomgr.StatusFileTooLarge, 0
	}
	req := ioReq{rq: irp.Requestor, fo: fo,
		writeThrough: sl.Flags&iomgr.SLWriteThrough != 0 || fo.Flags&iomgr.FOWriteThrough != 0}
	had := f.ext.total
	cs := int64(v.geo.ClusterSize)
	if need := uint32((end + cs - 1) / cs); need > had {
		if err := v.setClusters(f, need); err != nil {
			return statusOf(err), 0
		}
	}
	err := error(nil)
	if off > size {
		err = v.zeroFill(f, req, size, off)
	}
	if err == nil {
		err = v.fileIO(f, iomgr.MajorWrite, req, irp.Buffer[:n], off)
	}
	if err != nil {
		// Nothing of a failed write stays: not its pages past the old
		// end, not the clusters it took.
		v.discard(f, size)
		if f.ext.total > had {
			_ = v.setClusters(f, had)
		}
		return statusOf(err), 0
	}
	v.wrote(f, c, size, end)
	if req.writeThrough || irp.Flags&iomgr.IRPNoCache != 0 {
		// Write-through and non-cached writes are on the disk when they
		// complete, data first, then the metadata that describes it.
		if err := v.writeBack(f, req); err != nil {
			return statusOf(err), 0
		}
	}
	if req.writeThrough {
		if err := v.commit(); err != nil {
			return statusOf(err), 0
		}
	}
	return iomgr.StatusSuccess, uint64(n)
}

// fileIO reads or writes p at file offset off, which must lie within the
// file's clusters, through the file data cache.
func (v *vcb) fileIO(f *fcb, major iomgr.MajorFunction, req ioReq, p []byte, off int64) error {
	if len(p) == 0 {
		return nil
	}
	if end := off + int64(len(p)); end > int64(f.ext.total)*int64(v.geo.ClusterSize) {
		return v.note(fail(iomgr.StatusFileCorruptError, "%s: offset %d is past its %d clusters", f.path(), end-1, f.ext.total))
	}
	if major == iomgr.MajorRead {
		return v.cachedRead(f, req, p, off)
	}
	return v.cachedWrite(f, req, p, off)
}

// diskIO reads or writes p at file offset off, which must lie within the
// file's clusters, on the disk: one transfer per contiguous run of
// clusters. The cache loads and writes back pages with it.
func (v *vcb) diskIO(f *fcb, major iomgr.MajorFunction, req ioReq, p []byte, off int64) error {
	cs := int64(v.geo.ClusterSize)
	ss := int64(v.geo.BytesPerSector)
	for len(p) > 0 {
		vcn := off / cs
		if vcn >= int64(f.ext.total) {
			return v.note(fail(iomgr.StatusFileCorruptError, "%s: offset %d is past its %d clusters", f.path(), off, f.ext.total))
		}
		lcn, run := f.ext.lookup(uint32(vcn))
		within := off % cs
		m := min(int64(len(p)), int64(run)*cs-within)
		if err := transferRange(v.data, major, req, p[:m], v.geo.ClusterOffset(lcn)+within, ss); err != nil {
			return err
		}
		p, off = p[m:], off+m
	}
	return nil
}

// zeroFill writes zeros to the file's bytes [from, to).
func (v *vcb) zeroFill(f *fcb, req ioReq, from, to int64) error {
	for from < to {
		n := min(to-from, int64(len(zeros)))
		if err := v.fileIO(f, iomgr.MajorWrite, req, zeros[:n], from); err != nil {
			return err
		}
		from += n
	}
	return nil
}

// truncateTo sets a file's size, allocating and zero-filling what it
// grows by (nothing is allocated if the volume is too full), or freeing
// the clusters past the new end.
func (v *vcb) truncateTo(f *fcb, size int64) error {
	if size > ondisk.MaxFileSize {
		return fail(iomgr.StatusFileTooLarge, "%s: %d bytes is more than a FAT file can hold", f.path(), size)
	}
	old := int64(f.size())
	cs := int64(v.geo.ClusterSize)
	need := uint32((size + cs - 1) / cs)
	if size > old {
		had := f.ext.total
		if need > had {
			if err := v.setClusters(f, need); err != nil {
				return err
			}
		}
		if err := v.zeroFill(f, ioReq{rq: v.rq}, old, size); err != nil {
			v.discard(f, old)
			if f.ext.total > had {
				_ = v.setClusters(f, had)
			}
			return err
		}
	} else {
		// The cached bytes past the new end must read as zeros if the
		// file grows again, and must not be written back.
		v.discard(f, size)
		if err := v.setClusters(f, need); err != nil {
			return err
		}
	}
	f.de.short.Size = uint32(size)
	v.writeEntry(f.parent, f.de)
	return nil
}

// wrote records a completed write that ended at end in the file's
// directory entry (size, modification time, archive bit) and the handle's
// position: the same for the IRP path and the fast I/O path.
func (v *vcb) wrote(f *fcb, c *ccb, size, end int64) {
	s := &f.de.short
	if end > size {
		s.Size = uint32(end)
	}
	s.SetModified(v.fs.opts.Now(), v.loc)
	s.Attr |= ondisk.AttrArchive
	v.writeEntry(f.parent, f.de)
	c.setPosition(end)
}
