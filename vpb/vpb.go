package vpb

import (
	"errors"
	"fmt"
	"sync"
)

// Flags are the VPB_* state bits. Values are NT's.
type Flags uint16

// The VPB flags.
const (
	// Mounted: a file system has claimed the volume and Device is its volume device.
	Mounted Flags = 0x0001
	// Locked: one handle has exclusive use of the volume (FSCTL_LOCK_VOLUME); other opens fail.
	Locked Flags = 0x0002
	// Persistent: the VPB outlives a dismount (kept for the next mount).
	Persistent Flags = 0x0004
	// RemovePending: the volume is being dismounted or removed; new opens fail.
	RemovePending Flags = 0x0008
	// RawMount: the raw file system mounted the volume (opened directly, e.g. for formatting).
	RawMount Flags = 0x0010
	// DirectWritesAllowed: writes to the volume's sectors bypass the file system's checks.
	DirectWritesAllowed Flags = 0x0020
)

// String lists the set flags by their NT names.
func (f Flags) String() string {
	names := []struct {
		f Flags
		n string
	}{{Mounted, "VPB_MOUNTED"}, {Locked, "VPB_LOCKED"}, {Persistent, "VPB_PERSISTENT"},
		{RemovePending, "VPB_REMOVE_PENDING"}, {RawMount, "VPB_RAW_MOUNT"},
		{DirectWritesAllowed, "VPB_DIRECT_WRITES_ALLOWED"}}
	s := ""
	for _, n := range names {
		if f&n.f != 0 {
			if s != "" {
				s += "|"
			}
			s += n.n
		}
	}
	if s == "" {
		return "0"
	}
	return s
}

// Sentinel errors of VPB state changes; callers translate them into NT status codes.
var (
	ErrMounted      = errors.New("volume is already mounted")
	ErrNotMounted   = errors.New("volume is not mounted")
	ErrLocked       = errors.New("volume is locked")
	ErrNotLocked    = errors.New("volume is not locked")
	ErrInUse        = errors.New("volume has open handles")
	ErrRemoving     = errors.New("volume is being dismounted")
	ErrNotLockOwner = errors.New("volume is locked by another handle")
)

// VPB is one volume parameter block. D is the device object type. The zero
// value is not usable; create VPBs with New.
type VPB[D comparable] struct {
	realDevice D // the storage volume device: fixed at creation

	mountMu sync.Mutex // serialises mount, verify and dismount of this volume

	mu        sync.Mutex // guards the fields below
	flags     Flags
	device    D   // the file system's volume device while mounted
	refs      int // file objects opened through this VPB
	lockOwner any // the handle that holds the volume lock
	serial    uint32
	label     string
}

// New returns an unmounted VPB for the storage volume device realDevice.
func New[D comparable](realDevice D) *VPB[D] {
	return &VPB[D]{realDevice: realDevice}
}

// RealDevice returns the storage volume device the VPB belongs to.
func (v *VPB[D]) RealDevice() D { return v.realDevice }

// Device returns the file system's volume device and true, or the zero D and
// false when no file system volume device is attached to the VPB. The device
// stays set from Mount until Dismount, also while the volume is
// remove-pending, so that requests on handles opened before a forced
// dismount still reach the file system, which fails them.
func (v *VPB[D]) Device() (D, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var zero D
	return v.device, v.device != zero
}

// Flags returns the current flags.
func (v *VPB[D]) Flags() Flags {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.flags
}

// Mounted reports whether a file system has claimed the volume.
func (v *VPB[D]) Mounted() bool { return v.Flags()&Mounted != 0 }

// SerialNumber returns the serial number recorded at mount.
func (v *VPB[D]) SerialNumber() uint32 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.serial
}

// Label returns the volume label recorded at mount (or changed since).
func (v *VPB[D]) Label() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.label
}

// SetLabel records a new label, as a file system does when the label changes.
func (v *VPB[D]) SetLabel(label string) {
	v.mu.Lock()
	v.label = label
	v.mu.Unlock()
}

// ReferenceCount returns the number of file objects opened through the VPB.
func (v *VPB[D]) ReferenceCount() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.refs
}

// MountLock serialises the mount sequence, verify and dismount of one volume
// (NT's device lock): two opens racing on an unmounted volume must not both
// mount it.
func (v *VPB[D]) MountLock() { v.mountMu.Lock() }

// MountUnlock releases MountLock.
func (v *VPB[D]) MountUnlock() { v.mountMu.Unlock() }

// Mount records that volumeDevice now represents the mounted volume, with the
// serial number and label the file system read. raw marks a mount by the raw
// file system. It fails with ErrMounted if the VPB is already mounted.
func (v *VPB[D]) Mount(volumeDevice D, serial uint32, label string, raw bool) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	var zero D
	if v.flags&Mounted != 0 || v.device != zero {
		return ErrMounted
	}
	v.device = volumeDevice
	v.serial = serial
	v.label = label
	v.flags |= Mounted
	v.flags &^= RemovePending
	if raw {
		v.flags |= RawMount
	} else {
		v.flags &^= RawMount
	}
	return nil
}

// Reference counts one more file object opened through the volume. It fails
// when the volume is not mounted, is being dismounted, or is locked by a
// handle other than owner (owner may be nil for an ordinary open).
func (v *VPB[D]) Reference(owner any) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case v.flags&Mounted == 0:
		return ErrNotMounted
	case v.flags&RemovePending != 0:
		return ErrRemoving
	case v.flags&Locked != 0 && v.lockOwner != owner:
		return ErrLocked
	}
	v.refs++
	return nil
}

// Dereference drops a file object's reference and returns the remaining count.
func (v *VPB[D]) Dereference() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.refs == 0 {
		panic("vpb: reference count underflow")
	}
	v.refs--
	return v.refs
}

// Lock gives owner (a handle) exclusive use of the volume. Like
// FSCTL_LOCK_VOLUME it succeeds only when owner's handle is the only one
// open, which the caller states as openByOwner (the number of the VPB's
// references that belong to owner).
func (v *VPB[D]) Lock(owner any, openByOwner int) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case v.flags&Mounted == 0:
		return ErrNotMounted
	case v.flags&Locked != 0:
		return ErrLocked
	case v.refs > openByOwner:
		return fmt.Errorf("%w: %d other handle(s)", ErrInUse, v.refs-openByOwner)
	}
	v.flags |= Locked
	v.lockOwner = owner
	return nil
}

// Unlock releases the volume lock held by owner.
func (v *VPB[D]) Unlock(owner any) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.flags&Locked == 0 {
		return ErrNotLocked
	}
	if v.lockOwner != owner {
		return ErrNotLockOwner
	}
	v.flags &^= Locked
	v.lockOwner = nil
	return nil
}

// BeginDismount marks the volume remove-pending so that new opens fail. Unless
// force is set it refuses while file objects other than those of owner
// (openByOwner of them, typically the handle asking for the dismount) are
// open. A forced dismount proceeds regardless; those handles will fail later.
func (v *VPB[D]) BeginDismount(owner any, openByOwner int, force bool) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case v.flags&Mounted == 0:
		return ErrNotMounted
	case v.flags&Locked != 0 && v.lockOwner != owner && !force:
		return ErrLocked
	case !force && v.refs > openByOwner:
		return fmt.Errorf("%w: %d handle(s) open", ErrInUse, v.refs-openByOwner)
	}
	v.flags |= RemovePending
	return nil
}

// CancelDismount clears remove-pending after a dismount that could not finish.
func (v *VPB[D]) CancelDismount() {
	v.mu.Lock()
	v.flags &^= RemovePending
	v.mu.Unlock()
}

// Retire ends a mount as far as new opens are concerned: the VPB is no
// longer mounted (and no longer locked) but keeps the file system's volume
// device, so handles opened before the dismount still reach the file system,
// which fails them. The file system gives the storage volume a fresh VPB for
// the next mount and calls Dismount when the last reference is gone.
func (v *VPB[D]) Retire() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.flags&Mounted == 0 {
		return ErrNotMounted
	}
	v.flags &^= Mounted | Locked
	v.flags |= RemovePending
	v.lockOwner = nil
	return nil
}

// Dismount detaches the file system's volume device from the VPB (mounted
// or retired) and returns it. The VPB goes back to its unmounted state;
// references still counted keep their count and are dropped as they close.
func (v *VPB[D]) Dismount() (D, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var zero D
	if v.device == zero {
		return zero, ErrNotMounted
	}
	dev := v.device
	v.device = zero
	v.flags &^= Mounted | Locked | RawMount | RemovePending
	v.lockOwner = nil
	return dev, nil
}

// Snapshot is a consistent copy of a VPB's state, for display.
type Snapshot[D comparable] struct {
	Flags          Flags
	RealDevice     D
	Device         D
	ReferenceCount int
	SerialNumber   uint32
	Label          string
}

// Snapshot returns the VPB's state at one instant.
func (v *VPB[D]) Snapshot() Snapshot[D] {
	v.mu.Lock()
	defer v.mu.Unlock()
	return Snapshot[D]{Flags: v.flags, RealDevice: v.realDevice, Device: v.device,
		ReferenceCount: v.refs, SerialNumber: v.serial, Label: v.label}
}
