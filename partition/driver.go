package partition

import (
	"fmt"
	"sync"

	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// Driver is the partition driver (`\Driver\Partition`): it reads a disk's
// table through the disk's device stack and creates one partition device
// object per partition, `\Device\HarddiskN\PartitionM`. A partition device
// translates offsets and forwards requests to the top of the disk's stack,
// so disk filters see partition traffic too; no request may leave the
// partition.
type Driver struct {
	*iomgr.Driver
	manager *iomgr.Manager

	mu     sync.Mutex // guards byDisk
	byDisk map[*iomgr.Device][]*iomgr.Device
}

// Extension is the device extension of a partition device.
type Extension struct {
	// Disk is the disk device the partition lies on; requests go to the top of its stack.
	Disk *iomgr.Device
	// Kind is the table the partition came from.
	Kind Kind
	// Partition is the table entry (Start and Size in bytes).
	Partition Partition
}

// NewDriver loads the partition driver into m.
func NewDriver(m *iomgr.Manager) *Driver {
	d := &Driver{Driver: m.CreateDriver(`\Driver\Partition`), manager: m, byDisk: map[*iomgr.Device][]*iomgr.Device{}}
	d.SetDispatchLayered(lower, dispatchTransfer, dispatchControl)
	d.Unload = func(*iomgr.Driver) error {
		for _, disk := range d.disks() {
			d.RemovePartitions(disk)
		}
		return nil
	}
	return d
}

// Enumerate reads the partition table of diskDev (through the top of its
// stack, as requestor) and creates a device for each partition. It returns
// the table, what Read worked around, and the devices in table order.
func (d *Driver) Enumerate(diskDev *iomgr.Device, requestor string) (*Table, []Warning, []*iomgr.Device, error) {
	dk, ok := diskDev.Extension.(*disk.Disk)
	if !ok {
		return nil, nil, nil, fmt.Errorf("enumerate partitions of %v: not a disk device", diskDev)
	}
	io := &iomgr.BlockIO{Device: diskDev, Requestor: requestor}
	t, warns, err := ReadSectorSize(io, dk.Size, int(dk.SectorSize)&^512) // 512: detect, so a 4096-byte-sector GPT is found (AddStore then rebuilds the disk)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("partition table of %v: %w", diskDev, err)
	}
	d.RemovePartitions(diskDev)
	var devs []*iomgr.Device
	for _, p := range t.Partitions {
		name := fmt.Sprintf(`\Device\Harddisk%d\Partition%d`, dk.Number, p.Index)
		dev, err := d.manager.CreateDevice(d.Driver, name, iomgr.DeviceDisk, diskDev.Characteristics)
		if err != nil {
			for _, x := range devs {
				d.manager.DeleteDevice(x)
			}
			return nil, nil, nil, err
		}
		dev.Extension = &Extension{Disk: diskDev, Kind: t.Kind, Partition: p}
		dev.SectorSize = dk.SectorSize
		dev.StackSize = iomgr.GetAttachedDevice(diskDev).StackSize + 1
		dev.SetFlags(iomgr.DeviceDirectIO)
		dev.ClearFlags(iomgr.DeviceInitializing)
		devs = append(devs, dev)
	}
	d.mu.Lock()
	d.byDisk[diskDev] = devs
	d.mu.Unlock()
	return t, warns, devs, nil
}

// Partitions returns the partition devices of diskDev in table order.
func (d *Driver) Partitions(diskDev *iomgr.Device) []*iomgr.Device {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*iomgr.Device(nil), d.byDisk[diskDev]...)
}

func (d *Driver) disks() []*iomgr.Device {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*iomgr.Device
	for k := range d.byDisk {
		out = append(out, k)
	}
	return out
}

// RemovePartitions deletes the partition devices of diskDev (devices attached
// above them detach through fast I/O detach).
func (d *Driver) RemovePartitions(diskDev *iomgr.Device) {
	d.mu.Lock()
	devs := d.byDisk[diskDev]
	delete(d.byDisk, diskDev)
	d.mu.Unlock()
	for _, dev := range devs {
		d.manager.DeleteDevice(dev)
	}
}

// lower returns the device a partition sends requests to: the top of its disk's stack.
func lower(dev *iomgr.Device) *iomgr.Device {
	return iomgr.GetAttachedDevice(dev.Extension.(*Extension).Disk)
}

// dispatchTransfer bounds a read or write by the partition and shifts it to disk offsets.
func dispatchTransfer(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
	ext := dev.Extension.(*Extension)
	p := irp.CurrentStackLocation().Transfer()
	off, n := p.ByteOffset, int64(p.Length)
	if off < 0 || off > ext.Partition.Size || n > ext.Partition.Size-off {
		return irp.Complete(iomgr.StatusInvalidParameter, 0)
	}
	return iomgr.PassDownWith(irp, lower(dev), func(next *iomgr.StackLocation) {
		next.Transfer().ByteOffset += ext.Partition.Start
	}, nil, nil)
}

// dataSetContext carries a translated data-set request down and back.
type dataSetContext struct {
	req   disk.DataSetRequest
	start int64
}

// shiftExtentsBack turns disk offsets of an allocation answer into partition offsets.
func shiftExtentsBack(_ *iomgr.Device, irp *iomgr.IRP, context any) iomgr.Status {
	if irp.PendingReturned {
		irp.MarkPending()
	}
	ctx := context.(*dataSetContext)
	if ctx.req.Action == disk.DataSetAllocation && irp.IOStatus.Status.IsSuccess() {
		if out, ok := irp.SystemBuffer.(*[]disk.Extent); ok {
			for i := range *out {
				(*out)[i].Offset -= ctx.start
			}
		}
	}
	return iomgr.StatusSuccess
}

func dispatchControl(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
	ext := dev.Extension.(*Extension)
	sl := irp.CurrentStackLocation()
	switch sl.Parameters.DeviceIoControl.ControlCode {
	case disk.IOCTLDiskGetPartitionInfoEx:
		pi, ok := irp.SystemBuffer.(*disk.PartitionInfo)
		if !ok {
			return irp.Complete(iomgr.StatusInvalidUserBuffer, 0)
		}
		*pi = ext.Info()
		return irp.Complete(iomgr.StatusSuccess, 0)
	case disk.IOCTLDiskGetLengthInfo:
		n, ok := irp.SystemBuffer.(*int64)
		if !ok {
			return irp.Complete(iomgr.StatusInvalidUserBuffer, 0)
		}
		*n = ext.Partition.Size
		return irp.Complete(iomgr.StatusSuccess, 8)
	case disk.IOCTLStorageManageDataSetAttributes:
		req, ok := sl.Parameters.DeviceIoControl.Input.(*disk.DataSetRequest)
		if !ok {
			return irp.Complete(iomgr.StatusInvalidParameter, 0)
		}
		if req.Offset < 0 || req.Length < 0 || req.Offset > ext.Partition.Size || req.Length > ext.Partition.Size-req.Offset {
			return irp.Complete(iomgr.StatusInvalidParameter, 0)
		}
		ctx := &dataSetContext{req: *req, start: ext.Partition.Start}
		ctx.req.Offset += ext.Partition.Start
		return iomgr.PassDownWith(irp, lower(dev), func(next *iomgr.StackLocation) {
			next.Parameters.DeviceIoControl.Input = &ctx.req
		}, shiftExtentsBack, ctx)
	}
	return iomgr.PassDown(irp, lower(dev))
}

// Info describes the partition as IOCTL_DISK_GET_PARTITION_INFO_EX does.
func (e *Extension) Info() disk.PartitionInfo {
	style := disk.StyleMBR
	if e.Kind == GPT {
		style = disk.StyleGPT
	}
	return disk.PartitionInfo{Style: style, StartingOffset: e.Partition.Start, PartitionLength: e.Partition.Size,
		PartitionNumber: e.Partition.Index, Type: e.Partition.Type.String(), Name: e.Partition.Name,
		MBRType: e.Partition.Type.MBR, GPTType: e.Partition.Type.GPT}
}
