package volume

import (
	"errors"
	"fmt"
	"sync"

	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/vpb"
)

// Sentinel errors of the export/mount exclusivity.
var (
	ErrExportedWritable = errors.New("volume is exported writable over NBD: stop the export (or export it --read-only) before mounting")
	ErrMounted          = errors.New("volume is mounted in the server: dismount it before exporting it writable")
)

// Driver is the volume driver (`\Driver\Volume`).
type Driver struct {
	*iomgr.Driver
	manager *iomgr.Manager

	mu      sync.Mutex // guards volumes and next
	volumes []*iomgr.Device
	next    int
}

// Extension is the device extension of a volume device.
type Extension struct {
	// Number is K in `\Device\HarddiskVolumeK`.
	Number int
	// Target is the partition (or disk) device the volume lies on.
	Target *iomgr.Device
	// Size is the volume's length in bytes.
	Size int64
	// Links are the symbolic links created for the volume.
	Links []string

	mu      sync.Mutex // guards writers and mounts
	writers int        // writable NBD exports
	mounts  int        // in-process mounts (and mounts in progress)
}

// NewDriver loads the volume driver into m.
func NewDriver(m *iomgr.Manager) *Driver {
	d := &Driver{Driver: m.CreateDriver(`\Driver\Volume`), manager: m, next: 1}
	d.SetDispatchLayered(lower, dispatchTransfer, dispatchControl)
	d.Unload = func(*iomgr.Driver) error {
		for _, v := range d.Volumes() {
			d.RemoveVolume(v)
		}
		return nil
	}
	return d
}

// AddVolume creates a volume device over target (a partition or disk device)
// of size bytes, with a fresh VPB, and the given symbolic links to it.
func (d *Driver) AddVolume(target *iomgr.Device, size int64, links ...string) (*iomgr.Device, error) {
	d.mu.Lock()
	n := d.next
	d.next++
	d.mu.Unlock()
	name := fmt.Sprintf(`\Device\HarddiskVolume%d`, n)
	dev, err := d.manager.CreateDevice(d.Driver, name, iomgr.DeviceDisk, target.Characteristics)
	if err != nil {
		return nil, err
	}
	ext := &Extension{Number: n, Target: target, Size: size}
	for _, l := range links {
		if err := d.manager.CreateSymbolicLink(l, name); err != nil {
			for _, made := range ext.Links {
				_ = d.manager.DeleteSymbolicLink(made)
			}
			d.manager.DeleteDevice(dev)
			return nil, fmt.Errorf("volume %s: %w", name, err)
		}
		ext.Links = append(ext.Links, l)
	}
	dev.Extension = ext
	dev.SectorSize = target.SectorSize
	dev.StackSize = iomgr.GetAttachedDevice(target).StackSize + 1
	dev.SetVPB(vpb.New(dev))
	dev.SetFlags(iomgr.DeviceDirectIO)
	dev.ClearFlags(iomgr.DeviceInitializing)
	d.mu.Lock()
	d.volumes = append(d.volumes, dev)
	d.mu.Unlock()
	return dev, nil
}

// RemoveVolume deletes a volume device and its links.
func (d *Driver) RemoveVolume(dev *iomgr.Device) {
	d.mu.Lock()
	for i, v := range d.volumes {
		if v == dev {
			d.volumes = append(d.volumes[:i], d.volumes[i+1:]...)
			break
		}
	}
	d.mu.Unlock()
	for _, l := range dev.Extension.(*Extension).Links {
		_ = d.manager.DeleteSymbolicLink(l)
	}
	d.manager.DeleteDevice(dev)
}

// Volumes returns the volume devices in creation order.
func (d *Driver) Volumes() []*iomgr.Device {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*iomgr.Device(nil), d.volumes...)
}

// AcquireExportWrite records a writable NBD export of the volume. It fails
// with ErrMounted while the volume is mounted (or being mounted) in process.
func (e *Extension) AcquireExportWrite() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mounts > 0 {
		return ErrMounted
	}
	e.writers++
	return nil
}

// ReleaseExportWrite ends a writable export recorded by AcquireExportWrite.
func (e *Extension) ReleaseExportWrite() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.writers == 0 {
		panic("volume: ReleaseExportWrite without AcquireExportWrite")
	}
	e.writers--
}

// AcquireMount records an in-process mount (taken before the mount sequence
// starts). It fails with ErrExportedWritable while a writable export exists.
func (e *Extension) AcquireMount() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.writers > 0 {
		return ErrExportedWritable
	}
	e.mounts++
	return nil
}

// ReleaseMount ends a mount recorded by AcquireMount (after dismount, or a
// mount that failed).
func (e *Extension) ReleaseMount() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mounts == 0 {
		panic("volume: ReleaseMount without AcquireMount")
	}
	e.mounts--
}

// lower returns the top of the stack the volume lies on.
func lower(dev *iomgr.Device) *iomgr.Device {
	return iomgr.GetAttachedDevice(dev.Extension.(*Extension).Target)
}

func dispatchTransfer(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
	ext := dev.Extension.(*Extension)
	p := irp.CurrentStackLocation().Transfer()
	if p.ByteOffset < 0 || p.ByteOffset > ext.Size || int64(p.Length) > ext.Size-p.ByteOffset {
		return irp.Complete(iomgr.StatusInvalidParameter, 0)
	}
	return iomgr.PassDown(irp, lower(dev))
}

// dispatchControl bounds data-set requests (trim, zeroing, allocation) by
// the volume before passing them down, like reads and writes.
func dispatchControl(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
	ext := dev.Extension.(*Extension)
	p := irp.CurrentStackLocation().Parameters.DeviceIoControl
	if p.ControlCode == disk.IOCTLStorageManageDataSetAttributes {
		req, ok := p.Input.(*disk.DataSetRequest)
		if !ok || req.Offset < 0 || req.Length < 0 || req.Offset > ext.Size || req.Length > ext.Size-req.Offset {
			return irp.Complete(iomgr.StatusInvalidParameter, 0)
		}
	}
	return iomgr.PassDown(irp, lower(dev))
}
