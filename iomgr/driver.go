package iomgr

import "sync"

// DispatchFunc is a driver's dispatch routine for one major function. It is
// called by CallDriver with the driver's own device, in the caller's
// goroutine. It either completes the IRP (CompleteRequest) and returns the
// status it completed with, passes the IRP to a lower driver and returns what
// CallDriver returned (or StatusPending after MarkPending), or marks the IRP
// pending, arranges for it to complete later (possibly from another
// goroutine) and returns StatusPending.
type DispatchFunc func(dev *Device, irp *IRP) Status

// Driver is a driver object: the dispatch table that CallDriver consults, the
// fast I/O table, and the unload routine. Drivers are created with
// Manager.CreateDriver and then filled in before their first device is
// created; the tables are not changed afterwards.
type Driver struct {
	// Name is the driver's object name, such as `\Driver\Disk` or `\FileSystem\Fat`.
	Name string

	// Dispatch is indexed by major function. A nil entry completes the IRP
	// with StatusInvalidDeviceRequest, as NT's default routine does.
	Dispatch [MajorFunctionCount]DispatchFunc

	// FastIO is the fast I/O table, nil when the driver has none.
	FastIO *FastIODispatch

	// Unload is called by Manager.UnloadDriver; it must delete the driver's
	// devices (detaching them first) and may refuse with an error.
	Unload func(drv *Driver) error

	manager *Manager

	mu      sync.Mutex // guards devices
	devices []*Device
}

// Devices returns the driver's device objects, oldest first.
func (d *Driver) Devices() []*Device {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*Device(nil), d.devices...)
}

// Manager returns the I/O manager the driver belongs to.
func (d *Driver) Manager() *Manager { return d.manager }

// SetDispatchAll points every major function at fn: the usual start of a
// filter driver, which then overrides the functions it cares about.
func (d *Driver) SetDispatchAll(fn DispatchFunc) {
	for i := range d.Dispatch {
		d.Dispatch[i] = fn
	}
}

// CompleteSuccess completes irp with STATUS_SUCCESS and no information: the
// dispatch routine of a request a driver has nothing to do for, such as
// opening or closing a storage device that keeps no state per handle.
func CompleteSuccess(_ *Device, irp *IRP) Status { return irp.Complete(StatusSuccess, 0) }

// SetDispatchLayered fills the dispatch table of a driver whose devices lie
// on a lower device and pass what they do not check down to it (a
// partition on its disk, a volume on its partition); lower returns where a
// device sends requests (the top of the stack it lies on). Create, cleanup
// and close complete at once (CompleteSuccess), reads and writes go to
// transfer and device controls to control (both check the request against
// the device's extent before passing it on), and every other request goes
// down unchanged (PassDown).
func (d *Driver) SetDispatchLayered(lower func(dev *Device) *Device, transfer, control DispatchFunc) {
	d.SetDispatchAll(func(dev *Device, irp *IRP) Status { return PassDown(irp, lower(dev)) })
	d.Dispatch[MajorCreate] = CompleteSuccess
	d.Dispatch[MajorCleanup] = CompleteSuccess
	d.Dispatch[MajorClose] = CompleteSuccess
	d.Dispatch[MajorRead] = transfer
	d.Dispatch[MajorWrite] = transfer
	d.Dispatch[MajorDeviceControl] = control
}

// FastIODispatch is a driver's fast I/O table. Each routine works directly on
// cached state without building an IRP and returns false ("not possible")
// when it cannot serve the call, so the caller falls back to an IRP. A nil
// routine means "not possible". dev is the device the call was made to (the
// top of the stack, then each filter's lower device as it passes the call on).
type FastIODispatch struct {
	// Read copies file data at offset into buf. On true, ios holds the status
	// and the number of bytes read.
	Read func(dev *Device, fo *FileObject, offset int64, buf []byte, wait bool, ios *IOStatusBlock) bool
	// Write copies buf into the file at offset. On true, ios holds the status
	// and the number of bytes written.
	Write func(dev *Device, fo *FileObject, offset int64, buf []byte, wait bool, ios *IOStatusBlock) bool
	// QueryBasicInfo fills info with times and attributes.
	QueryBasicInfo func(dev *Device, fo *FileObject, wait bool, info *FileBasicInformation, ios *IOStatusBlock) bool
	// QueryStandardInfo fills info with sizes and the directory flag.
	QueryStandardInfo func(dev *Device, fo *FileObject, wait bool, info *FileStandardInformation, ios *IOStatusBlock) bool
	// DetachDevice is called when target, a device that source is attached
	// to, is being deleted. It cannot fail: it must detach source from target
	// (DetachDevice) and normally deletes source, which in turn asks the
	// driver attached above source to detach. A driver that attaches to
	// devices it does not own must provide it.
	DetachDevice func(source, target *Device)
}
