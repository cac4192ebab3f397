package iomgr

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Sentinel errors of device management. Each is also matched by the NT
// status a caller would see (errors.Is works with both).
var (
	ErrDeviceInitializing = errors.New("device is still initializing")
	ErrDeviceDeleting     = errors.New("device is being deleted")
	ErrAlreadyAttached    = errors.New("device is already attached to a stack")
	ErrNotAttached        = errors.New("no device is attached")
	ErrNotTopOfStack      = errors.New("another device is attached above it: detach in last-in first-out order")
	ErrNameCollision      = errors.New("name already exists")
	ErrNameNotFound       = errors.New("no such object")
	ErrInvalidName        = errors.New("object names are absolute paths starting with a backslash")
)

// Manager is the I/O manager and object manager of one vdisk instance: it
// owns the drivers, the device objects, their stacks and the object
// namespace.
//
// Lock order: Manager.mu is a leaf with respect to driver code: it is never
// held while a driver routine (dispatch, fast I/O, unload) runs.
type Manager struct {
	mu      sync.Mutex // the device database lock: guards the fields below and every Device's stack links
	drivers []*Driver
	devices map[*Device]struct{}
	names   map[string]nsEntry // keyed by lower-case name: the namespace is case-insensitive
}

type nsEntry struct {
	name   string  // as created
	device *Device // a device object, or
	target string  // the target of a symbolic link
}

// NewManager returns an empty I/O manager.
func NewManager() *Manager {
	return &Manager{devices: make(map[*Device]struct{}), names: make(map[string]nsEntry)}
}

// CreateDriver returns a new driver object named name (`\Driver\Disk`) with an
// empty dispatch table, for its code to fill in.
func (m *Manager) CreateDriver(name string) *Driver {
	d := &Driver{Name: name, manager: m}
	m.mu.Lock()
	m.drivers = append(m.drivers, d)
	m.mu.Unlock()
	return d
}

// Drivers returns the loaded drivers in load order.
func (m *Manager) Drivers() []*Driver {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*Driver(nil), m.drivers...)
}

// UnloadDriver calls the driver's unload routine, which deletes its devices,
// and removes the driver. A driver without an unload routine, or whose
// routine fails, stays loaded and the error says why.
func (m *Manager) UnloadDriver(drv *Driver) error {
	if drv.Unload == nil {
		return fmt.Errorf("unload %s: driver has no unload routine", drv.Name)
	}
	if err := drv.Unload(drv); err != nil {
		return fmt.Errorf("unload %s: %w", drv.Name, err)
	}
	if n := len(drv.Devices()); n > 0 {
		return fmt.Errorf("unload %s: %d device object(s) left after its unload routine", drv.Name, n)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, d := range m.drivers {
		if d == drv {
			m.drivers = append(m.drivers[:i], m.drivers[i+1:]...)
			break
		}
	}
	return nil
}

// CreateDevice creates a device object of drv (IoCreateDevice). A non-empty
// name is entered in the namespace and must be unique. The device starts
// with a stack size of 1 and DeviceInitializing set; the driver clears that
// flag when the device is ready.
func (m *Manager) CreateDevice(drv *Driver, name string, typ DeviceType, ch Characteristics) (*Device, error) {
	dev := &Device{Name: name, Type: typ, Characteristics: ch, StackSize: 1, Driver: drv}
	dev.flags.Store(uint32(DeviceInitializing))
	m.mu.Lock()
	if name != "" {
		if err := m.addNameLocked(name, nsEntry{name: name, device: dev}); err != nil {
			m.mu.Unlock()
			return nil, fmt.Errorf("create device %s: %w", name, err)
		}
		dev.flags.Or(uint32(DeviceHasName))
	}
	m.devices[dev] = struct{}{}
	m.mu.Unlock()
	drv.mu.Lock()
	drv.devices = append(drv.devices, dev)
	drv.mu.Unlock()
	return dev, nil
}

// DeviceCount returns the number of device objects that exist: tests count
// them to prove that nothing is left behind.
func (m *Manager) DeviceCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.devices)
}

// Devices returns every device object, ordered by driver load order and
// creation order within a driver.
func (m *Manager) Devices() []*Device {
	var all []*Device
	for _, drv := range m.Drivers() {
		all = append(all, drv.Devices()...)
	}
	return all
}

// DeleteDevice deletes dev (IoDeleteDevice). If a device is attached to it,
// the attached device's driver is first asked to detach through its fast I/O
// DetachDevice routine; that driver detaches and deletes its own device,
// which repeats the request upward, so deleting the bottom of a stack
// removes the whole stack. dev itself must already be detached from any
// device below it.
func (m *Manager) DeleteDevice(dev *Device) {
	if !dev.deleting.CompareAndSwap(false, true) {
		bugCheck("INVALID_DEVICE_DELETE", "device %v deleted twice", dev)
	}
	if above := dev.attachedDevice.Load(); above != nil {
		fio := above.Driver.FastIO
		if fio == nil || fio.DetachDevice == nil {
			bugCheck("DRIVER_CANNOT_DETACH", "driver %s is attached to %v, which is being deleted, but has no fast I/O DetachDevice routine", above.Driver.Name, dev)
		}
		fio.DetachDevice(above, dev)
		if still := dev.attachedDevice.Load(); still != nil {
			bugCheck("DRIVER_CANNOT_DETACH", "driver %s did not detach %v from %v, which is being deleted", above.Driver.Name, still, dev)
		}
	}
	m.mu.Lock()
	if below := dev.attachedTo.Load(); below != nil {
		m.mu.Unlock()
		bugCheck("INVALID_DEVICE_DELETE", "device %v deleted while still attached to %v: detach it first", dev, below)
	}
	if dev.Name != "" {
		delete(m.names, strings.ToLower(dev.Name))
	}
	delete(m.devices, dev)
	m.mu.Unlock()
	drv := dev.Driver
	drv.mu.Lock()
	for i, d := range drv.devices {
		if d == dev {
			drv.devices = append(drv.devices[:i], drv.devices[i+1:]...)
			break
		}
	}
	drv.mu.Unlock()
}

// Deleted reports whether DeleteDevice was called on the device.
func (d *Device) Deleted() bool { return d.deleting.Load() }

// AttachDeviceToDeviceStack attaches source to the top of the stack that
// contains target (IoAttachDeviceToDeviceStack) and returns the device it
// attached to, which is where source's driver sends requests it passes on.
// source inherits the stack size plus one, the sector size, and the larger
// alignment requirement. Attaching to a device that is still initializing or
// is being deleted is refused.
func (m *Manager) AttachDeviceToDeviceStack(source, target *Device) (*Device, error) {
	var lower *Device
	err := m.AttachDeviceToDeviceStackSafe(source, target, &lower)
	return lower, err
}

// AttachDeviceToDeviceStackSafe is AttachDeviceToDeviceStack that stores
// the device source ends up attached to in *attachedTo before source
// becomes the top of the stack (IoAttachDeviceToDeviceStackSafe): a request
// that reaches source the moment it is visible already finds its lower
// device. Filters attaching to a stack that is in use (a running server)
// must use it; *attachedTo is usually a field of source's extension.
func (m *Manager) AttachDeviceToDeviceStackSafe(source, target *Device, attachedTo **Device) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	top := target
	for a := top.attachedDevice.Load(); a != nil; a = top.attachedDevice.Load() {
		top = a
	}
	switch {
	case source.attachedTo.Load() != nil:
		return fmt.Errorf("attach %v: %w", source, ErrAlreadyAttached)
	case top.Flags()&DeviceInitializing != 0:
		return fmt.Errorf("attach %v to %v: %w (%w)", source, top, ErrDeviceInitializing, StatusInvalidDeviceState)
	case top.deleting.Load():
		return fmt.Errorf("attach %v to %v: %w (%w)", source, top, ErrDeviceDeleting, StatusNoSuchDevice)
	case source == top:
		return fmt.Errorf("attach %v to itself: %w", source, StatusInvalidParameter)
	}
	source.StackSize = top.StackSize + 1
	source.SectorSize = top.SectorSize
	if top.AlignmentRequirement > source.AlignmentRequirement {
		source.AlignmentRequirement = top.AlignmentRequirement
	}
	source.attachedTo.Store(top)
	*attachedTo = top
	// Publishing source last (an atomic store) orders every write above
	// before any request that finds source on top.
	top.attachedDevice.Store(source)
	return nil
}

// DetachDevice detaches the device attached to target (IoDetachDevice). It
// is refused when another device is attached above that device (detach is
// last in, first out), except while target is being deleted: that is the
// detach the I/O manager itself asks for.
func (m *Manager) DetachDevice(target *Device) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	source := target.attachedDevice.Load()
	if source == nil {
		return fmt.Errorf("detach from %v: %w", target, ErrNotAttached)
	}
	if above := source.attachedDevice.Load(); above != nil && !target.deleting.Load() {
		return fmt.Errorf("detach %v from %v: %v is attached above it: %w", source, target, above, ErrNotTopOfStack)
	}
	target.attachedDevice.Store(nil)
	source.attachedTo.Store(nil)
	return nil
}

// GetAttachedDevice returns the top of the stack dev is part of
// (IoGetAttachedDevice): where a request for dev's stack must be sent.
func GetAttachedDevice(dev *Device) *Device {
	for a := dev.attachedDevice.Load(); a != nil; a = dev.attachedDevice.Load() {
		dev = a
	}
	return dev
}

// AttachedDevice returns the device directly above d, nil at the top.
func (d *Device) AttachedDevice() *Device { return d.attachedDevice.Load() }

// AttachedTo returns the device directly below d, nil at the bottom (or when
// d is not attached to a stack).
func (d *Device) AttachedTo() *Device { return d.attachedTo.Load() }

// BottomDevice returns the device at the bottom of d's stack.
func BottomDevice(d *Device) *Device {
	for b := d.attachedTo.Load(); b != nil; b = d.attachedTo.Load() {
		d = b
	}
	return d
}

// Object namespace.

func checkName(name string) error {
	if !strings.HasPrefix(name, `\`) || strings.HasSuffix(name, `\`) || strings.Contains(name, `\\`) {
		return fmt.Errorf("%q: %w", name, ErrInvalidName)
	}
	return nil
}

func (m *Manager) addNameLocked(name string, e nsEntry) error {
	if err := checkName(name); err != nil {
		return err
	}
	key := strings.ToLower(name)
	if _, ok := m.names[key]; ok {
		return fmt.Errorf("%s: %w (%w)", name, ErrNameCollision, StatusObjectNameCollision)
	}
	m.names[key] = e
	return nil
}

// CreateSymbolicLink enters link (`\DosDevices\C:`) in the namespace,
// pointing to target, a name that resolves when the link is followed.
func (m *Manager) CreateSymbolicLink(link, target string) error {
	if err := checkName(target); err != nil {
		return fmt.Errorf("create symbolic link %s: %w", link, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.addNameLocked(link, nsEntry{name: link, target: target}); err != nil {
		return fmt.Errorf("create symbolic link: %w", err)
	}
	return nil
}

// DeleteSymbolicLink removes link from the namespace.
func (m *Manager) DeleteSymbolicLink(link string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := strings.ToLower(link)
	e, ok := m.names[key]
	if !ok || e.device != nil {
		return fmt.Errorf("delete symbolic link %s: %w (%w)", link, ErrNameNotFound, StatusObjectNameNotFound)
	}
	delete(m.names, key)
	return nil
}

// maxLinkDepth bounds symbolic link resolution so that a cycle of links
// cannot hang a lookup.
const maxLinkDepth = 32

// LookupDevice resolves path through the namespace: the longest prefix of
// path that names an object is found (following symbolic links); if it is a
// device, LookupDevice returns the device and the rest of the path (`\dir\file`,
// or "" when path names the device itself), which is what a file system will
// be asked to open.
func (m *Manager) LookupDevice(path string) (*Device, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	orig := path
	for depth := 0; depth <= maxLinkDepth; depth++ {
		if err := checkName(strings.TrimSuffix(path, `\`)); err != nil && path != `\` {
			return nil, "", fmt.Errorf("lookup %s: %w (%w)", orig, err, StatusObjectNameInvalid)
		}
		e, rest, ok := m.longestPrefixLocked(path)
		if !ok {
			return nil, "", fmt.Errorf("lookup %s: %w (%w)", orig, ErrNameNotFound, StatusObjectNameNotFound)
		}
		if e.device != nil {
			return e.device, rest, nil
		}
		path = e.target + rest
	}
	return nil, "", fmt.Errorf("lookup %s: more than %d symbolic links (a cycle?): %w", orig, maxLinkDepth, StatusObjectNameInvalid)
}

func (m *Manager) longestPrefixLocked(path string) (nsEntry, string, bool) {
	lower := strings.ToLower(path)
	for end := len(lower); end > 0; {
		if e, ok := m.names[lower[:end]]; ok {
			return e, path[end:], true
		}
		i := strings.LastIndexByte(lower[:end], '\\')
		if i <= 0 {
			break
		}
		end = i
	}
	return nsEntry{}, "", false
}

// NamespaceEntry is one object in the namespace, for display.
type NamespaceEntry struct {
	Name   string
	Device *Device // set for a device object
	Target string  // set for a symbolic link
}

// Namespace returns every named object whose name starts with prefix
// (case-insensitively), sorted by name.
func (m *Manager) Namespace(prefix string) []NamespaceEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	prefix = strings.ToLower(prefix)
	var out []NamespaceEntry
	for k, e := range m.names {
		if strings.HasPrefix(k, prefix) {
			out = append(out, NamespaceEntry{Name: e.name, Device: e.device, Target: e.target})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
