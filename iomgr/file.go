package iomgr

import (
	"fmt"
	"sync/atomic"
)

// FileObjectFlags are the FO_* flags of a file object. Values are NT's.
type FileObjectFlags uint32

// The file object flags.
const (
	FOFileOpen         FileObjectFlags = 0x00000001
	FOSynchronousIO    FileObjectFlags = 0x00000002
	FOWriteThrough     FileObjectFlags = 0x00000010
	FOCacheSupported   FileObjectFlags = 0x00000040
	FOVolumeOpen       FileObjectFlags = 0x00400000
	FODirectDeviceOpen FileObjectFlags = 0x00000800
	FOFileModified     FileObjectFlags = 0x00001000
	FOFileSizeChanged  FileObjectFlags = 0x00002000
	FOCleanupComplete  FileObjectFlags = 0x00004000
	FODeleteOnClose    FileObjectFlags = 0x00010000
	FOHandleCreated    FileObjectFlags = 0x00040000
	FOFileFastIORead   FileObjectFlags = 0x00080000
)

// FileObject is an open instance of a file, directory, volume or device.
// The I/O manager creates it for an open; the file system keeps its
// per-stream state in FsContext and per-handle state in FsContext2. Two
// counts govern its end: the handle count reaching zero sends IRP_MJ_CLEANUP
// (the last user handle is gone: delete-on-close, unlock, flush); the
// reference count reaching zero sends IRP_MJ_CLOSE (nothing refers to it any
// more: free the contexts).
type FileObject struct {
	// Device is the device the name resolved to: the storage volume device
	// for a file on a volume, or the device itself for a device open.
	Device *Device
	// VPB is the volume the file was opened on, set when the open went
	// through a mounted volume. Requests for the file follow it, even after
	// the volume was dismounted under the handle.
	VPB *VPB
	// FileName is the path inside the volume (`\dir\file`), "" for the volume itself.
	FileName string
	// RelatedFileObject is the directory FileName is relative to, if any.
	RelatedFileObject *FileObject
	// FsContext is the file system's per-stream context (FCB), shared by
	// every file object of the same file.
	FsContext any
	// FsContext2 is the file system's per-open context (CCB).
	FsContext2 any
	// Flags are the FO_* flags, owned by the file system once the open succeeded.
	Flags FileObjectFlags
	// Access granted at open, for sharing checks and request validation.
	ReadAccess, WriteAccess, DeleteAccess bool
	// Share modes granted to other opens.
	SharedRead, SharedWrite, SharedDelete bool
	// DeletePending is set by the file system when the file will be deleted at cleanup.
	DeletePending bool
	// Requestor says who opened the file, for monitors.
	Requestor string

	handles atomic.Int32
	refs    atomic.Int32
}

// NewFileObject returns a file object for name on dev with no handle and no
// reference; the open path sends IRP_MJ_CREATE with it and, on success,
// calls OpenHandle. A file object whose create failed is simply dropped: the
// file system never saw it open, so it gets no cleanup or close.
func NewFileObject(dev *Device, name string) *FileObject {
	return &FileObject{Device: dev, FileName: name}
}

// String names the file object for messages.
func (fo *FileObject) String() string {
	if fo.FileName == "" {
		return fmt.Sprint(fo.Device)
	}
	return fmt.Sprintf("%v%s", fo.Device, fo.FileName)
}

// HandleCount returns the number of open handles.
func (fo *FileObject) HandleCount() int { return int(fo.handles.Load()) }

// ReferenceCount returns the number of references.
func (fo *FileObject) ReferenceCount() int { return int(fo.refs.Load()) }

// OpenHandle counts a new handle to the file object; each handle also holds
// a reference.
func (fo *FileObject) OpenHandle() {
	fo.handles.Add(1)
	fo.refs.Add(1)
	fo.Flags |= FOHandleCreated
}

// Reference takes one more reference, for a component that keeps the file
// object after its handle may close (a cache, a filter).
func (fo *FileObject) Reference() { fo.refs.Add(1) }

// CloseHandle closes one handle. The last one sends IRP_MJ_CLEANUP to the
// file's stack; then the handle's reference is dropped (Dereference), which
// sends IRP_MJ_CLOSE if it was the last. It returns the cleanup's status.
func (fo *FileObject) CloseHandle(requestor string) Status {
	n := fo.handles.Add(-1)
	if n < 0 {
		bugCheck("INVALID_HANDLE", "handle count of %v dropped below zero", fo)
	}
	status := StatusSuccess
	if n == 0 {
		status = fo.sendSimple(MajorCleanup, requestor)
		fo.Flags |= FOCleanupComplete
	}
	fo.Dereference(requestor)
	return status
}

// Dereference drops a reference; the last one releases the file object's
// reference on its VPB and sends IRP_MJ_CLOSE to the file's stack.
func (fo *FileObject) Dereference(requestor string) {
	n := fo.refs.Add(-1)
	if n < 0 {
		bugCheck("REFERENCE_BY_POINTER", "reference count of %v dropped below zero", fo)
	}
	if n > 0 {
		return
	}
	// The VPB's count drops first, so that the file system's close routine
	// sees whether this was the last file object of a dismounted volume.
	if fo.VPB != nil {
		fo.VPB.Dereference()
	}
	fo.sendSimple(MajorClose, requestor)
}

// sendSimple sends a parameterless request (cleanup, close) for fo and waits.
func (fo *FileObject) sendSimple(major MajorFunction, requestor string) Status {
	dev := RelatedDevice(fo)
	irp := AllocateIRP(dev.StackSize)
	irp.synchronous = true
	irp.FileObject = fo
	irp.Requestor = requestor
	if major == MajorClose {
		irp.Flags |= IRPCloseOperation
	}
	sl := irp.NextStackLocation()
	sl.Major = major
	sl.FileObject = fo
	st := CallDriverAndWait(dev, irp).Status
	FreeIRP(irp)
	return st
}

// RelatedDevice returns the device requests for fo go to
// (IoGetRelatedDeviceObject), in three steps: the volume device of the VPB
// the file was opened through; else, unless the open was a direct device
// open, the volume device of the VPB of the file's device; else the file's
// device itself. The result is the top of that device's stack, so filters
// see the request first.
func RelatedDevice(fo *FileObject) *Device {
	dev := fo.Device
	if fo.VPB != nil {
		if v, ok := fo.VPB.Device(); ok {
			return GetAttachedDevice(v)
		}
	}
	if fo.Flags&FODirectDeviceOpen == 0 && dev.VPB() != nil {
		if v, ok := dev.VPB().Device(); ok {
			return GetAttachedDevice(v)
		}
	}
	return GetAttachedDevice(dev)
}
