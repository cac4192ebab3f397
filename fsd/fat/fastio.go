package fat

import (
	"github.com/vdisk-dev/vdisk/iomgr"
)

// The fast I/O path: the driver's FastIODispatch, called by the I/O
// manager's caller (through the filters above the volume) before it builds
// an IRP. Each routine serves the call from memory (cached pages, the
// FCB) or answers false, "not possible", and the caller sends the IRP.
// Nothing here starts disk I/O: a read whose pages are not all cached, a
// write that needs clusters, a zero-filled gap, a page from the disk or
// an eviction, a write-through or append-only handle all take the IRP
// path, which can.

// fastIODispatch returns the driver's fast I/O table.
func fastIODispatch() *iomgr.FastIODispatch {
	return &iomgr.FastIODispatch{
		Read:              fastRead,
		Write:             fastWrite,
		QueryBasicInfo:    fastQueryBasic,
		QueryStandardInfo: fastQueryStandard,
	}
}

// fastTarget returns the volume and the file of a fast I/O call on one of
// the driver's volume devices, nil when the call is not for a file.
func fastTarget(dev *iomgr.Device, fo *iomgr.FileObject) (*vcb, *fcb, *ccb) {
	v, ok := dev.Extension.(*vcb)
	if !ok {
		return nil, nil, nil
	}
	f, c := fileContext(fo)
	if f == nil || c == nil {
		return nil, nil, nil
	}
	return v, f, c
}

// rlockFast takes the volume lock shared for a fast I/O call: a caller
// that cannot wait gets "not possible" instead of blocking.
func (v *vcb) rlockFast(wait bool) bool {
	if wait {
		v.mu.RLock()
	} else if !v.mu.TryRLock() {
		return false
	}
	if v.Dismounted() {
		v.mu.RUnlock()
		return false
	}
	return true
}

func fastRead(dev *iomgr.Device, fo *iomgr.FileObject, off int64, buf []byte, wait bool, ios *iomgr.IOStatusBlock) bool {
	v, f, c := fastTarget(dev, fo)
	if v == nil || f.isDir || c.access&(iomgr.FileReadData|iomgr.FileExecute) == 0 {
		return false
	}
	if off == useFilePointerPosition {
		off = c.position()
	}
	if off < 0 || !v.rlockFast(wait) {
		return false
	}
	defer v.mu.RUnlock()
	size := int64(f.size())
	switch {
	case len(buf) == 0:
		*ios = iomgr.IOStatusBlock{Status: iomgr.StatusSuccess}
		return true
	case off >= size:
		*ios = iomgr.IOStatusBlock{Status: iomgr.StatusEndOfFile}
		return true
	}
	n := min(int64(len(buf)), size-off)
	if !v.tryCachedRead(f, buf[:n], off) {
		return false
	}
	c.setPosition(off + n)
	*ios = iomgr.IOStatusBlock{Status: iomgr.StatusSuccess, Information: uint64(n)}
	return true
}

func fastWrite(dev *iomgr.Device, fo *iomgr.FileObject, off int64, buf []byte, wait bool, ios *iomgr.IOStatusBlock) bool {
	v, f, c := fastTarget(dev, fo)
	if v == nil || f.isDir || v.refuseWrite() != iomgr.StatusSuccess || c.access&iomgr.FileWriteData == 0 || fo.Flags&iomgr.FOWriteThrough != 0 || len(buf) == 0 {
		return false
	}
	if wait {
		v.mu.Lock()
	} else if !v.mu.TryLock() {
		return false
	}
	defer v.mu.Unlock()
	if v.Dismounted() || f.deleted {
		return false
	}
	size := int64(f.size())
	switch off {
	case writeToEndOfFile:
		off = size
	case useFilePointerPosition:
		off = c.position()
	}
	n := int64(len(buf))
	end := off + n
	// Only within the clusters the file has, and without a gap to fill.
	if off < 0 || off > size || end > int64(f.ext.total)*int64(v.geo.ClusterSize) || !v.canWriteCached(f, off, n) {
		return false
	}
	if err := v.cachedWrite(f, ioReq{rq: fo.Requestor, fo: fo}, buf, off); err != nil {
		// canWriteCached said no disk I/O was needed; a failure here is a
		// surprise the IRP path reports properly.
		v.discard(f, size)
		return false
	}
	v.rq = fo.Requestor
	v.wrote(f, c, size, end)
	*ios = iomgr.IOStatusBlock{Status: iomgr.StatusSuccess, Information: uint64(n)}
	return true
}

func fastQueryBasic(dev *iomgr.Device, fo *iomgr.FileObject, wait bool, info *iomgr.FileBasicInformation, ios *iomgr.IOStatusBlock) bool {
	v, f, _ := fastTarget(dev, fo)
	if v == nil || !v.rlockFast(wait) {
		return false
	}
	defer v.mu.RUnlock()
	*info = v.basicInfo(f)
	*ios = iomgr.IOStatusBlock{Status: iomgr.StatusSuccess}
	return true
}

func fastQueryStandard(dev *iomgr.Device, fo *iomgr.FileObject, wait bool, info *iomgr.FileStandardInformation, ios *iomgr.IOStatusBlock) bool {
	v, f, _ := fastTarget(dev, fo)
	if v == nil || !v.rlockFast(wait) {
		return false
	}
	defer v.mu.RUnlock()
	*info = v.standardInfo(f)
	*ios = iomgr.IOStatusBlock{Status: iomgr.StatusSuccess}
	return true
}
