package builtin

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/filter"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// COW is the copy-on-write disk filter: writes go to a sparse overlay file
// the size of the device; reads take each sector from the overlay if it was
// written there, else from the device below. The device below is never
// written. Which sectors are in the overlay is rebuilt from the overlay's
// allocated ranges when it is reopened.
type COW struct {
	overlay *disk.FileStore
	size    int64
	sector  int64

	mu      sync.RWMutex // guards written
	written []uint64     // one bit per sector: in the overlay
}

// OpenCOW opens (or creates) the overlay for a device of size bytes with the
// given sector size.
func OpenCOW(path string, size int64, sector uint32) (*COW, error) {
	var store *disk.FileStore
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		store, err = disk.CreateFile(path, size)
	case err != nil:
	case fi.Size() != size:
		return nil, fmt.Errorf("cow: overlay %s is %d bytes, the device %d: use a new overlay file", path, fi.Size(), size)
	default:
		store, err = disk.OpenFile(path, false)
	}
	if err != nil {
		return nil, fmt.Errorf("cow: overlay %s: %w", path, err)
	}
	c := &COW{overlay: store, size: size, sector: int64(sector), written: make([]uint64, (size/int64(sector)+63)/64)}
	ext, err := store.Allocation(0, size)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("cow: overlay %s: %w", path, err)
	}
	for _, e := range ext {
		if !e.Hole {
			c.mark(e.Offset, e.Length)
		}
	}
	return c, nil
}

// Close closes the overlay.
func (c *COW) Close() error { return c.overlay.Close() }

func (c *COW) mark(off, n int64) {
	c.mu.Lock()
	for s := off / c.sector; s < (off+n+c.sector-1)/c.sector; s++ {
		c.written[s/64] |= 1 << (s % 64)
	}
	c.mu.Unlock()
}

func (c *COW) isWritten(s int64) bool { return c.written[s/64]&(1<<(s%64)) != 0 }

// runs calls fn for each run of sectors in [off, off+n) that are all in the
// overlay (inOverlay true) or all not.
func (c *COW) runs(off, n int64, fn func(off, n int64, inOverlay bool) error) error {
	c.mu.RLock()
	type run struct {
		off, n int64
		in     bool
	}
	var rs []run
	for pos := off; pos < off+n; {
		s := pos / c.sector
		in := c.isWritten(s)
		end := pos
		for end < off+n && c.isWritten(end/c.sector) == in {
			end += c.sector
		}
		rs = append(rs, run{pos, end - pos, in})
		pos = end
	}
	c.mu.RUnlock()
	for _, r := range rs {
		if err := fn(r.off, r.n, r.in); err != nil {
			return err
		}
	}
	return nil
}

func (c *COW) check(off, n int64) iomgr.Status {
	if off < 0 || n < 0 || off%c.sector != 0 || n%c.sector != 0 || off > c.size || n > c.size-off {
		return iomgr.StatusInvalidParameter
	}
	return iomgr.StatusSuccess
}

// Dispatch is the cow filter's dispatch routine.
func (c *COW) Dispatch(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
	sl := irp.CurrentStackLocation()
	switch sl.Major {
	case iomgr.MajorWrite:
		p := sl.Parameters.Write
		if st := c.check(p.ByteOffset, int64(p.Length)); st != iomgr.StatusSuccess {
			return irp.Complete(st, 0)
		}
		if _, err := c.overlay.WriteAt(irp.Buffer[:p.Length], p.ByteOffset); err != nil {
			return irp.Complete(iomgr.StatusIODeviceError, 0)
		}
		c.mark(p.ByteOffset, int64(p.Length))
		if sl.Flags&iomgr.SLWriteThrough != 0 {
			if err := c.overlay.Sync(); err != nil {
				return irp.Complete(iomgr.StatusIODeviceError, 0)
			}
		}
		return irp.Complete(iomgr.StatusSuccess, uint64(p.Length))
	case iomgr.MajorRead:
		if sl.Minor&iomgr.MinorMDL != 0 {
			return refuseMDL(dev, irp) // reads may come from the overlay
		}
		p := sl.Parameters.Read
		if st := c.check(p.ByteOffset, int64(p.Length)); st != iomgr.StatusSuccess {
			return irp.Complete(st, 0)
		}
		all, none := true, true
		_ = c.runs(p.ByteOffset, int64(p.Length), func(_, _ int64, in bool) error {
			all, none = all && in, none && !in
			return nil
		})
		if none {
			return filter.PassThrough(dev, irp)
		}
		if !all {
			if st := filter.CallLowerAndWait(dev, irp); !st.IsSuccess() {
				iomgr.CompleteRequest(irp)
				return st
			}
		}
		err := c.runs(p.ByteOffset, int64(p.Length), func(off, n int64, in bool) error {
			if !in {
				return nil
			}
			_, err := c.overlay.ReadAt(irp.Buffer[off-p.ByteOffset:off-p.ByteOffset+n], off)
			return err
		})
		if err != nil {
			return irp.Complete(iomgr.StatusIODeviceError, 0)
		}
		return irp.Complete(iomgr.StatusSuccess, uint64(p.Length))
	case iomgr.MajorFlushBuffers:
		if err := c.overlay.Sync(); err != nil {
			return irp.Complete(iomgr.StatusIODeviceError, 0)
		}
		return irp.Complete(iomgr.StatusSuccess, 0)
	case iomgr.MajorDeviceControl:
		p := sl.Parameters.DeviceIoControl
		if p.ControlCode == disk.IOCTLDiskIsWritable {
			return irp.Complete(iomgr.StatusSuccess, 0)
		}
		req, ok := p.Input.(*disk.DataSetRequest)
		if !ok || p.ControlCode != disk.IOCTLStorageManageDataSetAttributes {
			break
		}
		switch req.Action {
		case disk.DataSetTrim, disk.DataSetZero:
			if st := c.check(req.Offset, req.Length); st != iomgr.StatusSuccess {
				return irp.Complete(st, 0)
			}
			// The range must read as zeros from now on, whatever the base
			// holds: zero it in the overlay and claim it there.
			if err := c.zero(req.Offset, req.Length); err != nil {
				return irp.Complete(iomgr.StatusIODeviceError, 0)
			}
			return irp.Complete(iomgr.StatusSuccess, 0)
		case disk.DataSetAllocation:
			// What is allocated where depends on two files; everything is
			// reported as data, which is always correct.
			if out, ok := irp.SystemBuffer.(*[]disk.Extent); ok {
				*out = []disk.Extent{{Offset: req.Offset, Length: req.Length}}
				return irp.Complete(iomgr.StatusSuccess, 1)
			}
		}
	}
	return filter.PassThrough(dev, irp)
}

// zero makes whole sectors read as zeros from the overlay.
func (c *COW) zero(off, n int64) error {
	if err := c.overlay.WriteZeroes(off, n, disk.ZeroNoHole); err != nil {
		return err
	}
	c.mark(off, n)
	return nil
}
