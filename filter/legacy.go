package filter

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/mount"
)

// ErrNotOnTop is returned when unloading a filter whose device has another
// device attached above it: detaching it would cut that device off.
var ErrNotOnTop = errors.New("another device is attached above it (detach is last in, first out)")

// Role says what a filter device is attached to.
type Role int

// The roles of a filter device.
const (
	// ControlRole: attached to a file system's control device; sees mounts.
	ControlRole Role = iota
	// VolumeRole: attached to a mounted file system volume; sees file I/O.
	VolumeRole
)

// Extension is the device extension of every device a Legacy filter creates.
type Extension struct {
	// Filter is the filter that owns the device.
	Filter *Legacy
	// Role is what the device is attached to.
	Role Role
	// Lower is the device it attached to: where it passes requests.
	Lower *iomgr.Device
	// Real is the storage volume device, for a volume filter.
	Real *iomgr.Device
	// Context is the filter's own per-device state.
	Context any
}

// Hooks customise a Legacy filter. All are optional.
type Hooks struct {
	// Dispatch handles every IRP except the mount capture. Nil passes the
	// IRP through (PassThrough).
	Dispatch iomgr.DispatchFunc
	// VolumeAttached is called after a volume filter device attached to a
	// newly mounted volume (or one found mounted at Load), before the
	// mount IRP completes to the originator.
	VolumeAttached func(dev *iomgr.Device)
	// Detaching is called when a filter device is about to be detached and
	// deleted (dismount, unregistration, unload).
	Detaching func(dev *iomgr.Device)
}

// Legacy is a loaded legacy file system filter driver.
type Legacy struct {
	// Name is the driver name (`\FileSystem\Filters\NAME`).
	Name   string
	Driver *iomgr.Driver

	io    *iomgr.Manager
	mm    *mount.Manager
	hooks Hooks

	cancel func()

	mu      sync.Mutex // guards devices
	devices map[*iomgr.Device]struct{}
}

// Load creates the filter's driver, attaches to every registered file
// system's control device (and to every file system registered later,
// through mount's registration-change notification), and to the volumes
// already mounted by them.
func Load(mm *mount.Manager, name string, hooks Hooks) (*Legacy, error) {
	io := mm.IOManager()
	f := &Legacy{Name: name, Driver: io.CreateDriver(`\FileSystem\Filters\` + name), io: io, mm: mm, hooks: hooks,
		devices: map[*iomgr.Device]struct{}{}}
	dispatch := hooks.Dispatch
	if dispatch == nil {
		dispatch = PassThrough
	}
	f.Driver.SetDispatchAll(dispatch)
	f.Driver.Dispatch[iomgr.MajorFileSystemControl] = func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		sl := irp.CurrentStackLocation()
		if ext := dev.Extension.(*Extension); ext.Role == ControlRole && sl.Minor == iomgr.MinorMountVolume {
			return f.captureMount(dev, irp)
		}
		return dispatch(dev, irp)
	}
	f.Driver.FastIO = PassThroughFastIO(f.fastIODetach)
	f.Driver.Unload = func(*iomgr.Driver) error { return f.detachAll() }
	f.cancel = mm.RegisterFsRegistrationChange(f.fsChange)
	for _, cdo := range mm.FileSystems() {
		for _, dev := range cdo.Driver.Devices() {
			if dev == cdo || dev.VPB() != nil {
				continue
			}
			if err := f.attachMountedVolume(dev); err != nil {
				return f, err
			}
		}
	}
	return f, nil
}

// Devices returns the filter's devices.
func (f *Legacy) Devices() []*iomgr.Device {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*iomgr.Device, 0, len(f.devices))
	for d := range f.devices {
		out = append(out, d)
	}
	return out
}

// fsChange attaches to a file system that registered and detaches from one
// that unregistered.
func (f *Legacy) fsChange(cdo *iomgr.Device, active bool) {
	if !active {
		for _, d := range f.Devices() {
			if ext := d.Extension.(*Extension); ext.Role == ControlRole && iomgr.BottomDevice(d) == cdo {
				_ = f.detach(d)
			}
		}
		return
	}
	dev, err := f.newDevice(cdo.Type, ControlRole, nil)
	if err != nil {
		return
	}
	if err := f.attach(dev, cdo); err != nil {
		f.io.DeleteDevice(dev)
		f.forget(dev)
	}
}

func (f *Legacy) newDevice(typ iomgr.DeviceType, role Role, real *iomgr.Device) (*iomgr.Device, error) {
	dev, err := f.io.CreateDevice(f.Driver, "", typ, 0)
	if err != nil {
		return nil, err
	}
	dev.Extension = &Extension{Filter: f, Role: role, Real: real}
	f.mu.Lock()
	f.devices[dev] = struct{}{}
	f.mu.Unlock()
	return dev, nil
}

func (f *Legacy) forget(dev *iomgr.Device) {
	f.mu.Lock()
	delete(f.devices, dev)
	f.mu.Unlock()
}

// attach puts dev on top of target's stack and makes it ready.
func (f *Legacy) attach(dev, target *iomgr.Device) error {
	ext := dev.Extension.(*Extension)
	if err := f.io.AttachDeviceToDeviceStackSafe(dev, target, &ext.Lower); err != nil {
		return err
	}
	lower := ext.Lower
	dev.SetFlags(lower.Flags() & (iomgr.DeviceBufferedIO | iomgr.DeviceDirectIO))
	dev.Characteristics = lower.Characteristics
	dev.ClearFlags(iomgr.DeviceInitializing)
	return nil
}

// attachedTo reports whether one of the filter's devices is in the stack
// above fsVolume.
func (f *Legacy) attachedTo(fsVolume *iomgr.Device) bool {
	for d := fsVolume.AttachedDevice(); d != nil; d = d.AttachedDevice() {
		if d.Driver == f.Driver {
			return true
		}
	}
	return false
}

// captureMount passes a MOUNT_VOLUME down and attaches a volume filter
// device to the file system volume that claimed the volume.
func (f *Legacy) captureMount(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
	ext := dev.Extension.(*Extension)
	real := irp.CurrentStackLocation().Parameters.MountVolume.Device
	// Create the volume filter device before passing the IRP on: a
	// completion routine cannot fail, so nothing may be left to fail after.
	vdev, err := f.newDevice(iomgr.DeviceDiskFileSystem, VolumeRole, real)
	if err != nil {
		return irp.Complete(iomgr.StatusInsufficientResources, 0)
	}
	// Attach after the mount completed, in this goroutine: a completion
	// routine cannot attach (it cannot fail or wait).
	iomgr.PassDownAndWait(irp, ext.Lower)
	attached := false
	if irp.IOStatus.Status.IsSuccess() {
		// Read the VPB from the real device: a file system may have swapped it.
		if fsVol, ok := real.VPB().Device(); ok && !f.attachedTo(fsVol) {
			attached = f.attach(vdev, fsVol) == nil
		}
	}
	if !attached {
		f.io.DeleteDevice(vdev)
		f.forget(vdev)
	} else if f.hooks.VolumeAttached != nil {
		f.hooks.VolumeAttached(vdev)
	}
	st := irp.IOStatus.Status
	iomgr.CompleteRequest(irp)
	return st
}

// attachMountedVolume attaches a volume filter to a file system volume
// device found mounted when the filter loaded.
func (f *Legacy) attachMountedVolume(fsVol *iomgr.Device) error {
	if f.attachedTo(fsVol) {
		return nil
	}
	var real *iomgr.Device
	if st, ok := fsVol.Extension.(interface{ RealDevice() *iomgr.Device }); ok {
		real = st.RealDevice()
	}
	vdev, err := f.newDevice(iomgr.DeviceDiskFileSystem, VolumeRole, real)
	if err != nil {
		return err
	}
	if err := f.attach(vdev, fsVol); err != nil {
		f.io.DeleteDevice(vdev)
		f.forget(vdev)
		return fmt.Errorf("filter %s: attach to mounted volume %v: %w", f.Name, fsVol, err)
	}
	if f.hooks.VolumeAttached != nil {
		f.hooks.VolumeAttached(vdev)
	}
	return nil
}

// fastIODetach is called when the device under one of ours is deleted
// (a dismount): detach and delete ours, which passes the request upward.
func (f *Legacy) fastIODetach(source, target *iomgr.Device) {
	if f.hooks.Detaching != nil {
		f.hooks.Detaching(source)
	}
	if err := f.io.DetachDevice(target); err != nil {
		panic(fmt.Sprintf("filter %s: fast I/O detach from %v: %v", f.Name, target, err))
	}
	f.forget(source)
	f.io.DeleteDevice(source)
}

// detach detaches and deletes one of the filter's devices if it is on top.
func (f *Legacy) detach(dev *iomgr.Device) error {
	if above := dev.AttachedDevice(); above != nil {
		return fmt.Errorf("filter %s: %v: %v is attached above it: %w", f.Name, dev, above, ErrNotOnTop)
	}
	if f.hooks.Detaching != nil {
		f.hooks.Detaching(dev)
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

// detachAll is the unload routine: refused unless every device of the
// filter is on top of its stack; then every device detaches.
func (f *Legacy) detachAll() error {
	var blocked []string
	for _, d := range f.Devices() {
		if above := d.AttachedDevice(); above != nil {
			blocked = append(blocked, fmt.Sprintf("%v (under %v)", d.AttachedTo(), above))
		}
	}
	if len(blocked) > 0 {
		return fmt.Errorf("filter %s is not on top of %s: %w", f.Name, strings.Join(blocked, ", "), ErrNotOnTop)
	}
	if f.cancel != nil {
		f.cancel()
		f.cancel = nil
	}
	var errs []error
	for _, d := range f.Devices() {
		errs = append(errs, f.detach(d))
	}
	return errors.Join(errs...)
}

// Unload detaches the filter everywhere and unloads its driver; it is
// refused (and nothing changes) while another device is attached above any
// of its devices.
func (f *Legacy) Unload() error { return f.io.UnloadDriver(f.Driver) }

// PassThrough passes an IRP to the device below unchanged: the default
// dispatch of a filter, and what a filter's own dispatch calls for the
// requests it does not change.
func PassThrough(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
	return iomgr.PassDown(irp, dev.Extension.(*Extension).Lower)
}

// lowerOf returns the device a filter device passes calls to.
func lowerOf(dev *iomgr.Device) *iomgr.Device {
	if ext, ok := dev.Extension.(*Extension); ok {
		return ext.Lower
	}
	return dev.AttachedTo()
}

// PassThroughFastIO returns a fast I/O table that passes every call to the
// driver of the device below (answering "not possible" where it has no
// routine), with detach as its DetachDevice routine.
func PassThroughFastIO(detach func(source, target *iomgr.Device)) *iomgr.FastIODispatch {
	return &iomgr.FastIODispatch{
		Read: func(dev *iomgr.Device, fo *iomgr.FileObject, off int64, buf []byte, wait bool, ios *iomgr.IOStatusBlock) bool {
			l := lowerOf(dev)
			if l == nil || l.Driver.FastIO == nil || l.Driver.FastIO.Read == nil {
				return false
			}
			return l.Driver.FastIO.Read(l, fo, off, buf, wait, ios)
		},
		Write: func(dev *iomgr.Device, fo *iomgr.FileObject, off int64, buf []byte, wait bool, ios *iomgr.IOStatusBlock) bool {
			l := lowerOf(dev)
			if l == nil || l.Driver.FastIO == nil || l.Driver.FastIO.Write == nil {
				return false
			}
			return l.Driver.FastIO.Write(l, fo, off, buf, wait, ios)
		},
		QueryBasicInfo: func(dev *iomgr.Device, fo *iomgr.FileObject, wait bool, info *iomgr.FileBasicInformation, ios *iomgr.IOStatusBlock) bool {
			l := lowerOf(dev)
			if l == nil || l.Driver.FastIO == nil || l.Driver.FastIO.QueryBasicInfo == nil {
				return false
			}
			return l.Driver.FastIO.QueryBasicInfo(l, fo, wait, info, ios)
		},
		QueryStandardInfo: func(dev *iomgr.Device, fo *iomgr.FileObject, wait bool, info *iomgr.FileStandardInformation, ios *iomgr.IOStatusBlock) bool {
			l := lowerOf(dev)
			if l == nil || l.Driver.FastIO == nil || l.Driver.FastIO.QueryStandardInfo == nil {
				return false
			}
			return l.Driver.FastIO.QueryStandardInfo(l, fo, wait, info, ios)
		},
		DetachDevice: detach,
	}
}

// CallLowerAndWait passes irp's current request to the device below dev and
// waits until it completed, keeping the IRP (iomgr.PassDownAndWait: the
// seeds' synchronous intercept). The caller post-processes irp and must
// complete it (CompleteRequest); the returned status is the lower driver's.
func CallLowerAndWait(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
	return iomgr.PassDownAndWait(irp, lowerOf(dev))
}
