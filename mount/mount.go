package mount

import (
	"errors"
	"fmt"
	"sync"

	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/volume"
	"github.com/vdisk-dev/vdisk/vpb"
)

// Sentinel errors of the mount manager.
var (
	ErrNotMounted   = errors.New("volume is not mounted")
	ErrNoVPB        = errors.New("device has no volume parameter block: it is not a storage volume")
	ErrUnrecognized = fmt.Errorf("no file system recognises the volume: %w", iomgr.StatusUnrecognizedVolume)
)

// RegistrationCallback is told when a file system's control device
// registers (active true) or unregisters (active false).
type RegistrationCallback func(controlDevice *iomgr.Device, active bool)

// Manager is the mount manager of one I/O manager.
type Manager struct {
	io *iomgr.Manager

	mu          sync.Mutex // guards the fields below
	fileSystems []*iomgr.Device
	raw         *iomgr.Device // the raw file system, always asked last
	callbacks   map[int]RegistrationCallback
	nextID      int
}

// New returns a mount manager for io with no file systems registered.
func New(io *iomgr.Manager) *Manager {
	return &Manager{io: io, callbacks: map[int]RegistrationCallback{}}
}

// IOManager returns the I/O manager the mount manager works with.
func (m *Manager) IOManager() *iomgr.Manager { return m.io }

// RegisterFileSystem registers a file system's control device object
// (IoRegisterFileSystem). File systems are asked to mount volumes in
// registration order.
func (m *Manager) RegisterFileSystem(controlDevice *iomgr.Device) {
	m.mu.Lock()
	m.fileSystems = append(m.fileSystems, controlDevice)
	cbs := m.callbacksLocked()
	m.mu.Unlock()
	for _, cb := range cbs {
		cb(controlDevice, true)
	}
}

// RegisterRawFileSystem registers the raw file system, which is asked last
// and claims any volume nothing else recognises.
func (m *Manager) RegisterRawFileSystem(controlDevice *iomgr.Device) {
	m.mu.Lock()
	m.raw = controlDevice
	cbs := m.callbacksLocked()
	m.mu.Unlock()
	for _, cb := range cbs {
		cb(controlDevice, true)
	}
}

// UnregisterFileSystem removes a file system (IoUnregisterFileSystem).
func (m *Manager) UnregisterFileSystem(controlDevice *iomgr.Device) {
	m.mu.Lock()
	found := false
	for i, d := range m.fileSystems {
		if d == controlDevice {
			m.fileSystems = append(m.fileSystems[:i], m.fileSystems[i+1:]...)
			found = true
			break
		}
	}
	if m.raw == controlDevice {
		m.raw, found = nil, true
	}
	cbs := m.callbacksLocked()
	m.mu.Unlock()
	if found {
		for _, cb := range cbs {
			cb(controlDevice, false)
		}
	}
}

func (m *Manager) callbacksLocked() []RegistrationCallback {
	ids := make([]int, 0, len(m.callbacks))
	for id := range m.callbacks {
		ids = append(ids, id)
	}
	// Registration order of the callbacks.
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && ids[j] < ids[j-1]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
	out := make([]RegistrationCallback, len(ids))
	for i, id := range ids {
		out[i] = m.callbacks[id]
	}
	return out
}

// FileSystems returns the registered control devices in the order they are
// asked to mount (the raw file system last).
func (m *Manager) FileSystems() []*iomgr.Device {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := append([]*iomgr.Device(nil), m.fileSystems...)
	if m.raw != nil {
		out = append(out, m.raw)
	}
	return out
}

// RegisterFsRegistrationChange asks for cb to be told of every file system
// that registers or unregisters (IoRegisterFsRegistrationChange). The file
// systems already registered are replayed to cb at once, in order, so a
// filter loaded late still attaches to all of them. The returned function
// cancels the registration.
func (m *Manager) RegisterFsRegistrationChange(cb RegistrationCallback) (cancel func()) {
	m.mu.Lock()
	id := m.nextID
	m.nextID++
	m.callbacks[id] = cb
	m.mu.Unlock()
	for _, fs := range m.FileSystems() {
		cb(fs, true)
	}
	return func() {
		m.mu.Lock()
		delete(m.callbacks, id)
		m.mu.Unlock()
	}
}

// MountOptions adjust the mount sequence.
type MountOptions struct {
	// Raw asks only the raw file system, so the volume can be opened
	// directly (for formatting) whatever is on it.
	Raw bool
	// Requestor is recorded in the IRPs.
	Requestor string
}

// Mount mounts the storage volume device if its VPB is not mounted and
// returns the VPB. Concurrent calls for one volume mount it once.
func (m *Manager) Mount(vol *iomgr.Device, opts MountOptions) (*iomgr.VPB, error) {
	v := vol.VPB()
	if v == nil {
		return nil, fmt.Errorf("mount %v: %w", vol, ErrNoVPB)
	}
	v.MountLock()
	defer v.MountUnlock()
	if v = vol.VPB(); v.Mounted() {
		if opts.Raw && v.Flags()&vpb.RawMount == 0 {
			return nil, fmt.Errorf("mount %v raw: a file system has it mounted: dismount it first: %w", vol, iomgr.StatusDeviceBusy)
		}
		return v, nil
	}
	ext, isVolume := vol.Extension.(*volume.Extension)
	if isVolume {
		if err := ext.AcquireMount(); err != nil {
			return nil, fmt.Errorf("mount %v: %w (%w)", vol, err, iomgr.StatusAccessDenied)
		}
	}
	err := m.mountLocked(vol, v, opts)
	if err != nil && isVolume {
		ext.ReleaseMount()
	}
	if err != nil {
		return nil, err
	}
	return vol.VPB(), nil
}

// mountLocked runs the mount sequence with the VPB's mount lock held.
func (m *Manager) mountLocked(vol *iomgr.Device, v *iomgr.VPB, opts MountOptions) error {
	candidates := m.FileSystems()
	if opts.Raw {
		m.mu.Lock()
		candidates = nil
		if m.raw != nil {
			candidates = []*iomgr.Device{m.raw}
		}
		m.mu.Unlock()
	}
	for _, fs := range candidates {
		top := iomgr.GetAttachedDevice(fs)
		irp := iomgr.BuildSynchronousRequest(iomgr.MajorFileSystemControl, iomgr.MinorMountVolume, top)
		irp.Flags |= iomgr.IRPMountCompletion
		irp.Requestor = opts.Requestor
		irp.NextStackLocation().Parameters.MountVolume = iomgr.MountParameters{VPB: v, Device: vol}
		st := iomgr.CallDriverAndWait(top, irp).Status
		iomgr.FreeIRP(irp)
		switch {
		case st.IsSuccess():
			// The file system may have swapped the VPB; the device's is the truth.
			if !vol.VPB().Mounted() {
				return fmt.Errorf("mount %v: %s claimed the volume but did not mount its VPB", vol, fs.Driver.Name)
			}
			return nil
		case st == iomgr.StatusUnrecognizedVolume:
			continue
		default:
			return fmt.Errorf("mount %v: %s: %w", vol, fs.Driver.Name, st)
		}
	}
	return fmt.Errorf("mount %v: %w", vol, ErrUnrecognized)
}

// fsControl sends a file system control request for fo and waits.
func fsControl(fo *iomgr.FileObject, minor iomgr.MinorFunction, code uint32, input, output any, requestor string) iomgr.Status {
	dev := iomgr.RelatedDevice(fo)
	irp := iomgr.BuildSynchronousRequest(iomgr.MajorFileSystemControl, minor, dev)
	irp.FileObject = fo
	irp.Requestor = requestor
	irp.SystemBuffer = output
	sl := irp.NextStackLocation()
	sl.FileObject = fo
	sl.Parameters.FileSystemControl = iomgr.ControlParameters{ControlCode: code, Input: input}
	st := iomgr.CallDriverAndWait(dev, irp).Status
	iomgr.FreeIRP(irp)
	return st
}

// FileSystemControl sends a user file system control request
// (IRP_MN_USER_FS_REQUEST) on an open file object: FSCTL_LOCK_VOLUME,
// FSCTL_UNLOCK_VOLUME, FSCTL_DISMOUNT_VOLUME, FSCTL_IS_VOLUME_MOUNTED, …
func FileSystemControl(fo *iomgr.FileObject, code uint32, input, output any, requestor string) error {
	return fsControl(fo, iomgr.MinorUserFSRequest, code, input, output, requestor).Err()
}

// Verify asks the file system that mounted vol whether the media is still
// the volume it mounted (IRP_MN_VERIFY_VOLUME). A volume that fails
// verification is dismounted (forced) so the next open mounts afresh.
func (m *Manager) Verify(vol *iomgr.Device, requestor string) error {
	v := vol.VPB()
	if v == nil {
		return fmt.Errorf("verify %v: %w", vol, ErrNoVPB)
	}
	v.MountLock()
	fsVol, ok := v.Device()
	if !ok || !v.Mounted() {
		v.MountUnlock()
		return fmt.Errorf("verify %v: %w", vol, ErrNotMounted)
	}
	top := iomgr.GetAttachedDevice(fsVol)
	irp := iomgr.BuildSynchronousRequest(iomgr.MajorFileSystemControl, iomgr.MinorVerifyVolume, top)
	irp.Requestor = requestor
	irp.NextStackLocation().Parameters.VerifyVolume = iomgr.MountParameters{VPB: v, Device: vol}
	st := iomgr.CallDriverAndWait(top, irp).Status
	iomgr.FreeIRP(irp)
	v.MountUnlock()
	if st.IsSuccess() {
		return nil
	}
	if st == iomgr.StatusWrongVolume {
		if err := m.Dismount(vol, DismountOptions{Force: true, Requestor: requestor}); err != nil {
			return fmt.Errorf("verify %v: the media changed, and dismounting failed: %w", vol, err)
		}
	}
	return fmt.Errorf("verify %v: %w", vol, st)
}

// DismountOptions adjust Dismount.
type DismountOptions struct {
	// Force dismounts even with handles open; they then fail with
	// STATUS_VOLUME_DISMOUNTED.
	Force bool
	// Requestor is recorded in the IRPs.
	Requestor string
}

// Dismount flushes and dismounts the volume: new opens fail at once, the
// file system is asked (FSCTL_DISMOUNT_VOLUME on a volume open) to flush,
// refuse if handles are open (unless forced), and delete its volume device,
// which detaches every filter above it through fast I/O detach.
func (m *Manager) Dismount(vol *iomgr.Device, opts DismountOptions) error {
	v := vol.VPB()
	if v == nil {
		return fmt.Errorf("dismount %v: %w", vol, ErrNoVPB)
	}
	v.MountLock()
	defer v.MountUnlock()
	v = vol.VPB()
	if !v.Mounted() {
		return fmt.Errorf("dismount %v: %w", vol, ErrNotMounted)
	}
	// The dismount request travels on a volume open of our own, which is
	// one of the VPB's references: the file system discounts it.
	fo := iomgr.NewFileObject(vol, "")
	fo.VPB = v
	fo.Requestor = opts.Requestor
	if err := v.Reference(fo); err != nil {
		return fmt.Errorf("dismount %v: %w", vol, err)
	}
	fo.OpenHandle()
	input := &DismountInput{Force: opts.Force}
	st := fsControl(fo, iomgr.MinorUserFSRequest, iomgr.FSCTLDismountVolume, input, nil, opts.Requestor)
	fo.CloseHandle(opts.Requestor)
	if !st.IsSuccess() {
		return fmt.Errorf("dismount %v: %w", vol, st)
	}
	if ext, ok := vol.Extension.(*volume.Extension); ok {
		ext.ReleaseMount()
	}
	return nil
}

// DismountInput is the input of FSCTL_DISMOUNT_VOLUME sent by the mount
// manager. NT's dismount has no force flag (it always succeeds and old
// handles fail later); vdisk lets the caller choose to be refused instead.
type DismountInput struct {
	Force bool
}
