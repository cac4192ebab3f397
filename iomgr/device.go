package iomgr

import (
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/vdisk-dev/vdisk/vpb"
)

// VPB is the volume parameter block as iomgr uses it: over device objects.
type VPB = vpb.VPB[*Device]

// DeviceType is the FILE_DEVICE_* type of a device object. Values are NT's.
type DeviceType uint32

// The device types vdisk uses.
const (
	DeviceCDROM             DeviceType = 0x02
	DeviceCDROMFileSystem   DeviceType = 0x03
	DeviceController        DeviceType = 0x04
	DeviceDisk              DeviceType = 0x07
	DeviceDiskFileSystem    DeviceType = 0x08
	DeviceFileSystem        DeviceType = 0x09
	DeviceNetwork           DeviceType = 0x12
	DeviceNetworkFileSystem DeviceType = 0x14
	DeviceUnknown           DeviceType = 0x22
	DeviceVirtualDisk       DeviceType = 0x24
	DeviceMassStorage       DeviceType = 0x2d
)

// String returns the NT name of the type.
func (t DeviceType) String() string {
	switch t {
	case DeviceCDROM:
		return "FILE_DEVICE_CD_ROM"
	case DeviceCDROMFileSystem:
		return "FILE_DEVICE_CD_ROM_FILE_SYSTEM"
	case DeviceController:
		return "FILE_DEVICE_CONTROLLER"
	case DeviceDisk:
		return "FILE_DEVICE_DISK"
	case DeviceDiskFileSystem:
		return "FILE_DEVICE_DISK_FILE_SYSTEM"
	case DeviceFileSystem:
		return "FILE_DEVICE_FILE_SYSTEM"
	case DeviceNetwork:
		return "FILE_DEVICE_NETWORK"
	case DeviceNetworkFileSystem:
		return "FILE_DEVICE_NETWORK_FILE_SYSTEM"
	case DeviceUnknown:
		return "FILE_DEVICE_UNKNOWN"
	case DeviceVirtualDisk:
		return "FILE_DEVICE_VIRTUAL_DISK"
	case DeviceMassStorage:
		return "FILE_DEVICE_MASS_STORAGE"
	}
	return fmt.Sprintf("FILE_DEVICE_0x%x", uint32(t))
}

// DeviceFlags are the DO_* flags of a device object. Values are NT's.
type DeviceFlags uint32

// The device flags.
const (
	// DeviceVerifyVolume: the media may have changed; the next request must verify.
	DeviceVerifyVolume DeviceFlags = 0x00000002
	// DeviceBufferedIO: the I/O manager gives the driver a system buffer (IRP.SystemBuffer).
	DeviceBufferedIO DeviceFlags = 0x00000004
	// DeviceExclusive: only one handle may be open to the device.
	DeviceExclusive DeviceFlags = 0x00000008
	// DeviceDirectIO: the driver works on the caller's memory (IRP.Buffer), never a copy.
	DeviceDirectIO DeviceFlags = 0x00000010
	// DeviceHasName: the device has a name in the object namespace.
	DeviceHasName DeviceFlags = 0x00000040
	// DeviceInitializing: the device is being set up; nothing may attach to it
	// until its driver clears the flag.
	DeviceInitializing DeviceFlags = 0x00000080
)

// String lists the set flags by their NT names.
func (f DeviceFlags) String() string {
	var parts []string
	for _, n := range []struct {
		f DeviceFlags
		n string
	}{{DeviceVerifyVolume, "DO_VERIFY_VOLUME"}, {DeviceBufferedIO, "DO_BUFFERED_IO"},
		{DeviceExclusive, "DO_EXCLUSIVE"}, {DeviceDirectIO, "DO_DIRECT_IO"},
		{DeviceHasName, "DO_DEVICE_HAS_NAME"}, {DeviceInitializing, "DO_DEVICE_INITIALIZING"}} {
		if f&n.f != 0 {
			parts = append(parts, n.n)
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, "|")
}

// Characteristics are the FILE_* characteristics of a device object.
type Characteristics uint32

// The device characteristics. Values are NT's.
const (
	RemovableMedia   Characteristics = 0x00000001
	ReadOnlyDevice   Characteristics = 0x00000002
	FloppyDiskette   Characteristics = 0x00000004
	WriteOnceMedia   Characteristics = 0x00000008
	RemoteDevice     Characteristics = 0x00000010
	DeviceIsMounted  Characteristics = 0x00000020
	VirtualVolume    Characteristics = 0x00000040
	DeviceSecureOpen Characteristics = 0x00000100
)

// Device is a device object: one layer of a device stack. A driver creates
// it with Manager.CreateDevice, fills in the fields it needs while the device
// is still initializing, and clears DeviceInitializing when the device may
// receive requests and be attached to.
type Device struct {
	// Name is the object name (`\Device\Harddisk0\Partition1`), "" for an
	// unnamed device such as most filter devices.
	Name string
	// Type is the FILE_DEVICE_* type.
	Type DeviceType
	// Characteristics are the FILE_* characteristics.
	Characteristics Characteristics
	// StackSize is the number of stack locations an IRP sent to this device
	// needs: 1 for a device at the bottom, one more than the device below for
	// a device attached to a stack. Its driver (and the attach) sets it
	// while the device is initializing, or while nothing uses the stack;
	// others read it once the device is ready.
	StackSize int
	// SectorSize is the device's logical sector size in bytes (0 when not a
	// storage device). Attaching copies it from the device below.
	SectorSize uint32
	// AlignmentRequirement is a mask (alignment - 1) that buffers and offsets
	// must satisfy. Attaching takes the larger of the two devices' masks.
	AlignmentRequirement uint32
	// Driver is the driver object that owns the device.
	Driver *Driver
	// Extension is the driver's per-device state (NT's device extension).
	Extension any

	flags    atomic.Uint32       // DeviceFlags; read by other drivers while the owner changes it
	vpb      atomic.Pointer[VPB] // the VPB, for storage volume devices; a file system may swap it
	deleting atomic.Bool         // set when deletion starts: no new attachments

	// Written under Manager.mu; read lock-free by GetAttachedDevice.
	attachedDevice atomic.Pointer[Device] // the device directly above, nil at the top; read without the lock
	attachedTo     atomic.Pointer[Device] // the device directly below, nil at the bottom

}

// Flags returns the current DO_* flags.
func (d *Device) Flags() DeviceFlags { return DeviceFlags(d.flags.Load()) }

// SetFlags sets the given flags.
func (d *Device) SetFlags(f DeviceFlags) { d.flags.Or(uint32(f)) }

// ClearFlags clears the given flags. Clearing DeviceInitializing is how a
// driver announces the device ready.
func (d *Device) ClearFlags(f DeviceFlags) { d.flags.And(^uint32(f)) }

// VPB returns the device's volume parameter block, nil for devices without one.
func (d *Device) VPB() *VPB { return d.vpb.Load() }

// SetVPB sets the device's VPB. Storage volume drivers call it when they
// create the device; a file system may swap it during mount.
func (d *Device) SetVPB(v *VPB) { d.vpb.Store(v) }

// String names the device for messages: its object name, or its driver and
// address when it has none.
func (d *Device) String() string {
	if d == nil {
		return "<nil device>"
	}
	if d.Name != "" {
		return d.Name
	}
	drv := "?"
	if d.Driver != nil {
		drv = d.Driver.Name
	}
	return fmt.Sprintf("%s device %p", drv, d)
}
