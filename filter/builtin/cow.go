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

func init() {
	register(&Filter{
		Name:      "cow",
		Kind:      DiskLevel,
		Params:    []string{"on", "overlay"},
		Help:      "copy-on-write: writes go to a sparse overlay file, the disk below is never written",
		OneDevice: "one overlay serves one device",
		Disk: func(spec Spec, _ Host) (DeviceDispatch, error) {
			overlay := spec.Get("overlay")
			if overlay == "" {
				return nil, fmt.Errorf("filter %q: give overlay=FILE", spec.Raw)
			}
			return func(t *iomgr.Device) (iomgr.DispatchFunc, func() error, error) {
				c, err := openCOW(overlay, deviceSize(t), t.SectorSize)
				if err != nil {
					return nil, nil, err
				}
				return c.dispatch, c.close, nil
			}, nil
		},
	})
}

// deviceSize is the length of a disk or partition device.
func deviceSize(dev *iomgr.Device) int64 {
	var n int64
	io := &iomgr.BlockIO{Device: dev, Requestor: "vdisk", Here: true}
	if err := io.Control(disk.IOCTLDiskGetLengthInfo, nil, &n); err != nil {
		return 0
	}
	return n
}

// cow is the copy-on-write disk filter: writes go to a sparse overlay file
// the size of the device; reads take each block from the overlay if it was
// written there, else from the device below. The device below is never
// written.
//
// Which blocks are in the overlay is rebuilt from the overlay's allocated
// ranges when it is reopened. A file system allocates whole blocks of its
// own: a 512-byte write into a hole allocates 4 KiB or more, whose other
// bytes read as zeros. So the overlay is kept in blocks at least as large
// as its file system's: the first write that covers a block only in part
// first copies the block from the device below (read-modify-write, as
// qcow2 does for its clusters), and a block is marked as in the overlay
// only once it is there whole.
type cow struct {
	overlay *disk.FileStore
	size    int64
	sector  int64
	block   int64 // a power of two, at least a sector and the overlay's allocation unit

	mu      sync.RWMutex // guards written
	written []uint64     // one bit per block: in the overlay

	// fill serialises the writes to blocks not yet in the overlay, by
	// block number modulo cowStripes: a copy from below must neither
	// overwrite data a concurrent write put in the overlay nor land after
	// it. Locked in ascending order; held while reading the device below,
	// which never calls back up.
	fill [cowStripes]sync.Mutex
}

const (
	cowStripes = 64
	// The block is at least a page, what Linux file systems allocate, and
	// at most a few MiB, whatever a file system says its preferred I/O
	// size is.
	cowMinBlock = 4 << 10
	cowMaxBlock = 8 << 20
)

// openCOW opens (or creates) the overlay for a device of size bytes with the
// given sector size.
func openCOW(path string, size int64, sector uint32) (*cow, error) {
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
	if fi, err = os.Stat(path); err != nil {
		store.Close()
		return nil, fmt.Errorf("cow: overlay %s: %w", path, err)
	}
	block := int64(cowMinBlock)
	for block < int64(sector) || block < allocationUnit(fi) && block < cowMaxBlock {
		block *= 2
	}
	c := &cow{overlay: store, size: size, sector: int64(sector), block: block,
		written: make([]uint64, ((size+block-1)/block+63)/64)}
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

// close closes the overlay.
func (c *cow) close() error { return c.overlay.Close() }

// mark records the blocks that [off, off+n) touches as in the overlay.
func (c *cow) mark(off, n int64) {
	c.mu.Lock()
	for b := off / c.block; b < (off+n+c.block-1)/c.block; b++ {
		c.written[b/64] |= 1 << (b % 64)
	}
	c.mu.Unlock()
}

// isWritten reports whether block b is in the overlay; c.mu is held.
func (c *cow) isWritten(b int64) bool { return c.written[b/64]&(1<<(b%64)) != 0 }

// blockWritten reports whether block b is in the overlay.
func (c *cow) blockWritten(b int64) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.isWritten(b)
}

// runs calls fn for each run of bytes in [off, off+n) whose blocks are all
// in the overlay (inOverlay true) or all not.
func (c *cow) runs(off, n int64, fn func(off, n int64, inOverlay bool) error) error {
	type run struct {
		off, n int64
		in     bool
	}
	var rs []run
	c.mu.RLock()
	for pos := off; pos < off+n; {
		in := c.isWritten(pos / c.block)
		end := pos
		for end < off+n && c.isWritten(end/c.block) == in {
			end = min((end/c.block+1)*c.block, off+n)
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

// store changes [off, off+n) of the overlay with put (a write or a
// zeroing). A block the range covers only in part is first copied from the
// device below, unless it is in the overlay already; blocks are marked
// once they are whole in the overlay, so that until then reads take them
// from below.
func (c *cow) store(dev *iomgr.Device, requestor string, off, n int64, put func() error) error {
	if n == 0 {
		return nil
	}
	first, last := off/c.block, (off+n-1)/c.block
	var stripes uint64 // of the blocks not in the overlay yet
	c.mu.RLock()
	for b := first; b <= last && stripes != 1<<cowStripes-1; b++ {
		if !c.isWritten(b) {
			stripes |= 1 << (b % cowStripes)
		}
	}
	c.mu.RUnlock()
	if stripes == 0 {
		return put() // a block stays in the overlay once there
	}
	for i := range cowStripes {
		if stripes&(1<<i) != 0 {
			c.fill[i].Lock()
			defer c.fill[i].Unlock()
		}
	}
	edges := []int64{first}
	if last != first {
		edges = append(edges, last)
	}
	for _, b := range edges {
		start, end := b*c.block, min((b+1)*c.block, c.size)
		if off <= start && off+n >= end || c.blockWritten(b) {
			continue
		}
		if err := c.copyUp(dev, requestor, start, end-start); err != nil {
			return err
		}
	}
	if err := put(); err != nil {
		return err
	}
	c.mark(first*c.block, (last+1-first)*c.block)
	return nil
}

// copyUp copies [off, off+n) from the device below into the overlay.
func (c *cow) copyUp(dev *iomgr.Device, requestor string, off, n int64) error {
	buf := make([]byte, n)
	below := &iomgr.BlockIO{Device: dev.Extension.(*filter.Extension).Lower, Requestor: requestor, Here: true}
	if err := below.Transfer(iomgr.MajorRead, buf, off, false); err != nil {
		return err
	}
	_, err := c.overlay.WriteAt(buf, off)
	return err
}

func (c *cow) check(off, n int64) iomgr.Status {
	if off < 0 || n < 0 || off%c.sector != 0 || n%c.sector != 0 || off > c.size || n > c.size-off {
		return iomgr.StatusInvalidParameter
	}
	return iomgr.StatusSuccess
}

// dispatch is the cow filter's dispatch routine.
func (c *cow) dispatch(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
	sl := irp.CurrentStackLocation()
	switch sl.Major {
	case iomgr.MajorWrite:
		p := *sl.Transfer()
		if st := c.check(p.ByteOffset, int64(p.Length)); st != iomgr.StatusSuccess {
			return irp.Complete(st, 0)
		}
		err := c.store(dev, irp.Requestor, p.ByteOffset, int64(p.Length), func() error {
			_, err := c.overlay.WriteAt(irp.Buffer[:p.Length], p.ByteOffset)
			return err
		})
		if err != nil {
			return irp.Complete(iomgr.StatusIODeviceError, 0)
		}
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
		p := *sl.Transfer()
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
		case disk.DataSetTrim:
			// A trim is a hint, and the overlay cannot give space back
			// without the base showing through: do nothing, as for any
			// store that cannot discard (disk.TrimRange).
			if st := c.check(req.Offset, req.Length); st != iomgr.StatusSuccess {
				return irp.Complete(st, 0)
			}
			return irp.Complete(iomgr.StatusSuccess, 0)
		case disk.DataSetZero:
			if st := c.check(req.Offset, req.Length); st != iomgr.StatusSuccess {
				return irp.Complete(st, 0)
			}
			// The range must read as zeros from now on, whatever the base
			// holds, and still when the overlay is reopened: write the
			// zeros. Preallocated zeros (fallocate) would not do, since
			// file systems report them as holes, which a reopened overlay
			// takes for never written. So a fast zero is refused.
			// struct{ disk.Store } hides the overlay's Zeroer from
			// ZeroRange, which then writes.
			err := c.store(dev, irp.Requestor, req.Offset, req.Length, func() error {
				return disk.ZeroRange(struct{ disk.Store }{c.overlay}, req.Offset, req.Length, req.Flags)
			})
			switch {
			case errors.Is(err, disk.ErrSlowZero):
				return irp.Complete(iomgr.StatusNotSupported, 0)
			case err != nil:
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
