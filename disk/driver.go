package disk

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/vdisk-dev/vdisk/iomgr"
)

// Options configure the disk driver.
type Options struct {
	// Workers is the number of goroutines that execute requests. With 0,
	// every request completes in the goroutine that sent it; with more, each
	// read, write, flush and data-set request is marked pending and queued.
	Workers int
}

// Driver is the disk driver (`\Driver\Disk`): one device object per store.
type Driver struct {
	*iomgr.Driver
	manager *iomgr.Manager
	queue   chan *iomgr.IRP // nil without workers; never changes
	wg      sync.WaitGroup  // the workers

	// Close refuses new requests (closing) and waits until no dispatch
	// routine is still sending on queue (senders, idle) before it closes
	// queue, so that no send can hit a closed channel. Atomics rather than
	// a lock: a completion routine run by a worker may send a request of
	// its own, and must not wait for Close, which waits for the worker.
	closing   atomic.Bool
	senders   atomic.Int64
	idle      chan struct{} // a sender saw closing as it left; buffered
	closeOnce sync.Once

	mu    sync.Mutex // guards disks and next
	disks []*iomgr.Device
	next  int
}

// Disk is the device extension of a disk device object.
type Disk struct {
	// Number is N in `\Device\HarddiskN`.
	Number int
	// Store is the medium.
	Store Store
	// SectorSize is the logical sector size: requests must be aligned to it.
	SectorSize uint32
	// Size is the disk's length in bytes (the store's size rounded down to a sector).
	Size int64
	// ReadOnly refuses every write-class request with STATUS_MEDIA_WRITE_PROTECTED.
	ReadOnly bool
}

// NewDriver loads the disk driver into m.
func NewDriver(m *iomgr.Manager, opts Options) *Driver {
	d := &Driver{Driver: m.CreateDriver(`\Driver\Disk`), manager: m, idle: make(chan struct{}, 1)}
	d.Dispatch[iomgr.MajorCreate] = iomgr.CompleteSuccess
	d.Dispatch[iomgr.MajorCleanup] = iomgr.CompleteSuccess
	d.Dispatch[iomgr.MajorClose] = iomgr.CompleteSuccess
	d.Dispatch[iomgr.MajorRead] = d.dispatchIO
	d.Dispatch[iomgr.MajorWrite] = d.dispatchIO
	d.Dispatch[iomgr.MajorFlushBuffers] = d.dispatchIO
	d.Dispatch[iomgr.MajorShutdown] = d.dispatchIO
	d.Dispatch[iomgr.MajorDeviceControl] = d.dispatchControl
	if opts.Workers > 0 {
		d.queue = make(chan *iomgr.IRP, 4*opts.Workers)
		for i := 0; i < opts.Workers; i++ {
			d.wg.Add(1)
			go d.worker()
		}
	}
	d.Unload = func(*iomgr.Driver) error { return d.Close() }
	return d
}

// AddDisk creates the disk device object for store with the given logical
// sector size (512 or 4096), named `\Device\HarddiskN\DR0` with the link
// `\Device\HarddiskN\Partition0` for the whole disk. readOnly also applies
// when the store itself is read-only. Once Close has begun it fails with
// STATUS_NO_SUCH_DEVICE, leaving the store to the caller.
func (d *Driver) AddDisk(store Store, sectorSize uint32, readOnly bool) (*iomgr.Device, error) {
	if sectorSize < 512 || sectorSize > 4096 || sectorSize&(sectorSize-1) != 0 {
		return nil, fmt.Errorf("add disk: sector size %d is not 512, 1024, 2048 or 4096: %w", sectorSize, iomgr.StatusInvalidParameter)
	}
	size := store.Size() / int64(sectorSize) * int64(sectorSize)
	if size == 0 {
		return nil, fmt.Errorf("add disk: store of %d bytes holds no %d-byte sector: %w", store.Size(), sectorSize, iomgr.StatusInvalidParameter)
	}
	d.mu.Lock()
	n := d.next
	d.next++
	d.mu.Unlock()
	name := fmt.Sprintf(`\Device\Harddisk%d\DR0`, n)
	ch := iomgr.Characteristics(0)
	ro := readOnly || store.ReadOnly()
	if ro {
		ch |= iomgr.ReadOnlyDevice
	}
	dev, err := d.manager.CreateDevice(d.Driver, name, iomgr.DeviceDisk, ch)
	if err != nil {
		return nil, err
	}
	if err := d.manager.CreateSymbolicLink(fmt.Sprintf(`\Device\Harddisk%d\Partition0`, n), name); err != nil {
		d.manager.DeleteDevice(dev)
		return nil, err
	}
	dev.Extension = &Disk{Number: n, Store: store, SectorSize: sectorSize, Size: size, ReadOnly: ro}
	dev.SectorSize = sectorSize
	dev.AlignmentRequirement = 0 // Go buffers need no alignment; offsets are checked against the sector size
	dev.SetFlags(iomgr.DeviceDirectIO)
	dev.ClearFlags(iomgr.DeviceInitializing)
	// Close closes the stores of the disks it finds under mu after
	// setting closing: a disk added later would keep its store (and an
	// image file's lock) open for good, so it is refused, and the store
	// stays the caller's.
	d.mu.Lock()
	if d.closing.Load() {
		d.mu.Unlock()
		d.DetachDisk(dev)
		return nil, fmt.Errorf("add disk: the disk driver is closing: %w", iomgr.StatusNoSuchDevice)
	}
	d.disks = append(d.disks, dev)
	d.mu.Unlock()
	return dev, nil
}

// RemoveDisk deletes a disk device (DetachDisk) and closes its store.
func (d *Driver) RemoveDisk(dev *iomgr.Device) error {
	d.DetachDisk(dev)
	return dev.Extension.(*Disk).Store.Close()
}

// DetachDisk deletes a disk device, leaving its store open: the devices
// attached above it detach through fast I/O detach.
func (d *Driver) DetachDisk(dev *iomgr.Device) {
	d.mu.Lock()
	for i, x := range d.disks {
		if x == dev {
			d.disks = append(d.disks[:i], d.disks[i+1:]...)
			break
		}
	}
	d.mu.Unlock()
	disk := dev.Extension.(*Disk)
	_ = d.manager.DeleteSymbolicLink(fmt.Sprintf(`\Device\Harddisk%d\Partition0`, disk.Number))
	d.manager.DeleteDevice(dev)
}

// Disks returns the disk devices in creation order.
func (d *Driver) Disks() []*iomgr.Device {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*iomgr.Device(nil), d.disks...)
}

// Close stops the workers after the queued requests finish, and removes every
// disk, closing its store. Requests sent from then on fail with
// STATUS_NO_SUCH_DEVICE. Later calls do nothing.
func (d *Driver) Close() error {
	var errs []error
	d.closeOnce.Do(func() {
		d.closing.Store(true)
		if d.queue != nil {
			// A sender that saw closing unset is counted (it counts
			// itself before it looks), so once the count reads zero no
			// send can start; the workers keep draining meanwhile, so
			// blocked senders get through.
			for d.senders.Load() != 0 {
				<-d.idle
			}
			close(d.queue)
			d.wg.Wait()
		}
		for _, dev := range d.Disks() {
			errs = append(errs, d.RemoveDisk(dev))
		}
	})
	return errors.Join(errs...)
}

// enqueue marks irp pending and queues it for a worker, or completes it with
// STATUS_NO_SUCH_DEVICE once Close has begun.
func (d *Driver) enqueue(irp *iomgr.IRP) iomgr.Status {
	d.senders.Add(1)
	if d.closing.Load() {
		d.leave()
		return irp.Complete(iomgr.StatusNoSuchDevice, 0)
	}
	irp.MarkPending()
	d.queue <- irp
	d.leave()
	return iomgr.StatusPending
}

// leave uncounts a sender and, during Close, tells Close that one left.
func (d *Driver) leave() {
	if d.senders.Add(-1) == 0 && d.closing.Load() {
		select {
		case d.idle <- struct{}{}:
		default: // Close has a wake-up pending already
		}
	}
}

func (d *Driver) worker() {
	defer d.wg.Done()
	for irp := range d.queue {
		execute(irp)
	}
}

// dispatchIO validates a request and executes it now or queues it.
func (d *Driver) dispatchIO(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
	if st := validate(dev.Extension.(*Disk), irp); st != iomgr.StatusSuccess {
		return irp.Complete(st, 0)
	}
	if d.queue == nil {
		if d.closing.Load() {
			return irp.Complete(iomgr.StatusNoSuchDevice, 0)
		}
		return execute(irp)
	}
	return d.enqueue(irp)
}

// validate checks alignment, range and writability before any I/O.
func validate(disk *Disk, irp *iomgr.IRP) iomgr.Status {
	sl := irp.CurrentStackLocation()
	p := sl.Transfer()
	switch sl.Major {
	case iomgr.MajorRead:
		if sl.Minor&iomgr.MinorMDL != 0 {
			// The driver supplies the memory of an MDL read (and takes
			// it back with IRP_MN_MDL|IRP_MN_COMPLETE): no caller buffer.
			return checkTransfer(disk, p.ByteOffset, int64(p.Length), int(p.Length))
		}
	case iomgr.MajorWrite:
		if disk.ReadOnly {
			return iomgr.StatusMediaWriteProtected
		}
	default:
		return iomgr.StatusSuccess
	}
	return checkTransfer(disk, p.ByteOffset, int64(p.Length), len(irp.Buffer))
}

func checkTransfer(disk *Disk, off, length int64, bufLen int) iomgr.Status {
	ss := int64(disk.SectorSize)
	switch {
	case off < 0 || length < 0 || off%ss != 0 || length%ss != 0:
		return iomgr.StatusInvalidParameter
	case off > disk.Size || length > disk.Size-off:
		return iomgr.StatusInvalidParameter
	case int64(bufLen) < length:
		return iomgr.StatusInvalidUserBuffer
	}
	return iomgr.StatusSuccess
}

// execute performs a validated read, write, flush or shutdown and completes it.
func execute(irp *iomgr.IRP) iomgr.Status {
	sl := irp.CurrentStackLocation()
	disk := sl.Device.Extension.(*Disk)
	p := sl.Transfer() // nil but for a read or write
	switch sl.Major {
	case iomgr.MajorRead:
		if sl.Minor&iomgr.MinorMDL != 0 {
			return executeMDLRead(disk, irp, sl.Minor, *p)
		}
		if _, err := disk.Store.ReadAt(irp.Buffer[:p.Length], p.ByteOffset); err != nil {
			return irp.Complete(storeStatus(err), 0)
		}
		return irp.Complete(iomgr.StatusSuccess, uint64(p.Length))
	case iomgr.MajorWrite:
		if _, err := disk.Store.WriteAt(irp.Buffer[:p.Length], p.ByteOffset); err != nil {
			return irp.Complete(storeStatus(err), 0)
		}
		if sl.Flags&iomgr.SLWriteThrough != 0 {
			if err := disk.Store.Sync(); err != nil {
				return irp.Complete(storeStatus(err), 0)
			}
		}
		return irp.Complete(iomgr.StatusSuccess, uint64(p.Length))
	case iomgr.MajorFlushBuffers, iomgr.MajorShutdown:
		if disk.ReadOnly {
			return irp.Complete(iomgr.StatusSuccess, 0)
		}
		return irp.Complete(storeStatus(disk.Store.Sync()), 0)
	case iomgr.MajorDeviceControl:
		return executeDataSet(disk, irp)
	}
	return irp.Complete(iomgr.StatusInvalidDeviceRequest, 0)
}

// executeMDLRead lends the store's memory for a read (IRP_MN_MDL): on
// success irp.Buffer is the data, owned by the driver until the requestor
// sends the same read back with IRP_MN_MDL|IRP_MN_COMPLETE and that Buffer
// (NT's MDL read and MdlReadComplete). A store that cannot lend answers
// STATUS_NOT_SUPPORTED, and the requestor reads normally.
func executeMDLRead(disk *Disk, irp *iomgr.IRP, minor iomgr.MinorFunction, p iomgr.ReadWriteParameters) iomgr.Status {
	lender, ok := disk.Store.(Lender)
	if !ok {
		return irp.Complete(iomgr.StatusNotSupported, 0)
	}
	if minor&iomgr.MinorComplete != 0 {
		err := lender.Return(irp.Buffer, p.ByteOffset)
		irp.Buffer = nil
		return irp.Complete(storeStatus(err), 0)
	}
	b, err := lender.Lend(p.ByteOffset, int(p.Length))
	switch {
	case errors.Is(err, ErrCannotLend):
		return irp.Complete(iomgr.StatusNotSupported, 0)
	case err != nil:
		return irp.Complete(storeStatus(err), 0)
	}
	irp.Buffer = b
	return irp.Complete(iomgr.StatusSuccess, uint64(p.Length))
}

// storeStatus maps a store error to the status a disk reports.
func storeStatus(err error) iomgr.Status {
	switch {
	case err == nil:
		return iomgr.StatusSuccess
	case errors.Is(err, ErrOutOfRange):
		return iomgr.StatusInvalidParameter
	case errors.Is(err, ErrReadOnly):
		return iomgr.StatusMediaWriteProtected
	case errors.Is(err, ErrSlowZero):
		return iomgr.StatusNotSupported
	}
	if s := iomgr.StatusOf(err); s != iomgr.StatusUnsuccessful {
		return s
	}
	return iomgr.StatusIODeviceError
}

func (d *Driver) dispatchControl(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
	disk := dev.Extension.(*Disk)
	sl := irp.CurrentStackLocation()
	switch code := sl.Parameters.DeviceIoControl.ControlCode; code {
	case IOCTLDiskGetDriveGeometry:
		g, ok := irp.SystemBuffer.(*Geometry)
		if !ok {
			return irp.Complete(iomgr.StatusInvalidUserBuffer, 0)
		}
		*g = disk.Geometry()
		return irp.Complete(iomgr.StatusSuccess, 0)
	case IOCTLDiskGetLengthInfo:
		n, ok := irp.SystemBuffer.(*int64)
		if !ok {
			return irp.Complete(iomgr.StatusInvalidUserBuffer, 0)
		}
		*n = disk.Size
		return irp.Complete(iomgr.StatusSuccess, 8)
	case IOCTLDiskGetPartitionInfoEx:
		pi, ok := irp.SystemBuffer.(*PartitionInfo)
		if !ok {
			return irp.Complete(iomgr.StatusInvalidUserBuffer, 0)
		}
		*pi = PartitionInfo{Style: StyleRaw, PartitionLength: disk.Size}
		return irp.Complete(iomgr.StatusSuccess, 0)
	case IOCTLDiskIsWritable:
		if disk.ReadOnly {
			return irp.Complete(iomgr.StatusMediaWriteProtected, 0)
		}
		return irp.Complete(iomgr.StatusSuccess, 0)
	case IOCTLStorageManageDataSetAttributes:
		req, ok := sl.Parameters.DeviceIoControl.Input.(*DataSetRequest)
		if !ok {
			return irp.Complete(iomgr.StatusInvalidParameter, 0)
		}
		if st := checkDataSet(disk, req); st != iomgr.StatusSuccess {
			return irp.Complete(st, 0)
		}
		if d.queue == nil {
			if d.closing.Load() {
				return irp.Complete(iomgr.StatusNoSuchDevice, 0)
			}
			return executeDataSet(disk, irp)
		}
		return d.enqueue(irp)
	}
	return irp.Complete(iomgr.StatusInvalidDeviceRequest, 0)
}

// Geometry returns the disk's fictitious CHS geometry.
func (disk *Disk) Geometry() Geometry {
	const heads, spt = 255, 63
	sectors := disk.Size / int64(disk.SectorSize)
	return Geometry{Cylinders: sectors / (heads * spt), MediaType: FixedMedia, TracksPerCylinder: heads,
		SectorsPerTrack: spt, BytesPerSector: disk.SectorSize, DiskSize: disk.Size}
}

func checkDataSet(disk *Disk, req *DataSetRequest) iomgr.Status {
	if req.Offset < 0 || req.Length < 0 || req.Offset > disk.Size || req.Length > disk.Size-req.Offset {
		return iomgr.StatusInvalidParameter
	}
	switch req.Action {
	case DataSetTrim, DataSetZero:
		if disk.ReadOnly {
			return iomgr.StatusMediaWriteProtected
		}
	case DataSetAllocation, DataSetPrefetch:
	default:
		return iomgr.StatusInvalidDeviceRequest
	}
	return iomgr.StatusSuccess
}

func executeDataSet(disk *Disk, irp *iomgr.IRP) iomgr.Status {
	req := irp.CurrentStackLocation().Parameters.DeviceIoControl.Input.(*DataSetRequest)
	switch req.Action {
	case DataSetTrim:
		return irp.Complete(storeStatus(TrimRange(disk.Store, req.Offset, req.Length)), 0)
	case DataSetZero:
		return irp.Complete(storeStatus(ZeroRange(disk.Store, req.Offset, req.Length, req.Flags)), 0)
	case DataSetAllocation:
		out, ok := irp.SystemBuffer.(*[]Extent)
		if !ok {
			return irp.Complete(iomgr.StatusInvalidUserBuffer, 0)
		}
		ext, err := MapAllocation(disk.Store, req.Offset, req.Length)
		if err != nil {
			return irp.Complete(storeStatus(err), 0)
		}
		*out = ext
		return irp.Complete(iomgr.StatusSuccess, uint64(len(ext)))
	case DataSetPrefetch:
		if p, ok := disk.Store.(Prefetcher); ok {
			return irp.Complete(storeStatus(p.Prefetch(req.Offset, req.Length)), 0)
		}
		return irp.Complete(iomgr.StatusSuccess, 0)
	}
	return irp.Complete(iomgr.StatusInvalidDeviceRequest, 0)
}

// Prefetcher is a Store that can warm a cache for a range (NBD_CMD_CACHE).
type Prefetcher interface {
	Prefetch(off, length int64) error
}
