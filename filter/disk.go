package filter

import (
	"errors"
	"fmt"
	"sync"

	"github.com/vdisk-dev/vdisk/iomgr"
)

// DiskRole marks a device of a DiskFilter: attached to a storage stack (a
// disk or partition) beneath the file systems, where NBD traffic and file
// system metadata I/O both pass.
const DiskRole Role = 2

// DiskFilter is a legacy filter driver for storage stacks. Its dispatch
// routine sees every request sent to the stacks it is attached to; devices
// are attached explicitly (Attach) and leave through fast I/O detach when
// the device beneath is deleted, or through Detach/Unload (last in, first
// out).
type DiskFilter struct {
	Name   string
	Driver *iomgr.Driver
	io     *iomgr.Manager

	mu      sync.Mutex // guards devices
	devices []*iomgr.Device
}

// NewDiskFilter loads a disk filter driver named name whose dispatch routine
// handles every request (PassThrough for the ones it does not change).
func NewDiskFilter(io *iomgr.Manager, name string, dispatch iomgr.DispatchFunc) *DiskFilter {
	f := &DiskFilter{Name: name, Driver: io.CreateDriver(`\Driver\` + name), io: io}
	if dispatch == nil {
		dispatch = PassThrough
	}
	f.Driver.SetDispatchAll(dispatch)
	f.Driver.FastIO = PassThroughFastIO(func(source, target *iomgr.Device) {
		if err := io.DetachDevice(target); err != nil {
			panic(fmt.Sprintf("disk filter %s: fast I/O detach: %v", name, err))
		}
		f.forget(source)
		io.DeleteDevice(source)
	})
	f.Driver.Unload = func(*iomgr.Driver) error { return f.detachAll() }
	return f
}

func (f *DiskFilter) forget(dev *iomgr.Device) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, d := range f.devices {
		if d == dev {
			f.devices = append(f.devices[:i], f.devices[i+1:]...)
			return
		}
	}
}

// Devices returns the filter's devices in attach order.
func (f *DiskFilter) Devices() []*iomgr.Device {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*iomgr.Device(nil), f.devices...)
}

// Attach puts a new filter device on top of target's stack, with context as
// its per-device state (Extension.Context).
func (f *DiskFilter) Attach(target *iomgr.Device, context any) (*iomgr.Device, error) {
	dev, err := f.io.CreateDevice(f.Driver, "", target.Type, target.Characteristics)
	if err != nil {
		return nil, err
	}
	ext := &Extension{Role: DiskRole, Real: target, Context: context}
	dev.Extension = ext
	if err := f.io.AttachDeviceToDeviceStackSafe(dev, target, &ext.Lower); err != nil {
		f.io.DeleteDevice(dev)
		return nil, fmt.Errorf("disk filter %s: attach to %v: %w", f.Name, target, err)
	}
	lower := ext.Lower
	dev.SetFlags(lower.Flags() & (iomgr.DeviceBufferedIO | iomgr.DeviceDirectIO))
	dev.ClearFlags(iomgr.DeviceInitializing)
	f.mu.Lock()
	f.devices = append(f.devices, dev)
	f.mu.Unlock()
	return dev, nil
}

// Detach removes the filter's device from a stack; refused when another
// device is attached above it.
func (f *DiskFilter) Detach(dev *iomgr.Device) error {
	if above := dev.AttachedDevice(); above != nil {
		return fmt.Errorf("disk filter %s: %v is attached above it: %w", f.Name, above, ErrNotOnTop)
	}
	if lower := dev.AttachedTo(); lower != nil {
		if err := f.io.DetachDevice(lower); err != nil {
			return err
		}
	}
	f.forget(dev)
	f.io.DeleteDevice(dev)
	return nil
}

func (f *DiskFilter) detachAll() error {
	for _, d := range f.Devices() {
		if d.AttachedDevice() != nil {
			return fmt.Errorf("disk filter %s: %v is under %v: %w", f.Name, d.AttachedTo(), d.AttachedDevice(), ErrNotOnTop)
		}
	}
	var errs []error
	for _, d := range f.Devices() {
		errs = append(errs, f.Detach(d))
	}
	return errors.Join(errs...)
}

// Unload detaches every device (refused unless all are on top) and unloads the driver.
func (f *DiskFilter) Unload() error { return f.io.UnloadDriver(f.Driver) }
