// Package iomgr is the kernel of vdisk's model of the Windows NT I/O
// manager: status codes, driver and device objects, IRPs and their stack
// locations, CallDriver and CompleteRequest, attaching and detaching device
// stacks (with the fast I/O detach that deleting a device triggers), file
// objects with their handle and reference counts, and the object namespace of
// device names and symbolic links.
//
// Everything above it (disk, partition and volume drivers, the mount
// manager, file systems, filters, the NBD server) talks through these types,
// so a filter attached anywhere sees the requests that pass its layer.
//
// The rules follow NT: CallDriver moves to the next stack location and calls
// the driver's dispatch routine in the caller's goroutine; CompleteRequest
// walks the locations back, running completion routines last in first out,
// stopping at STATUS_MORE_PROCESSING_REQUIRED; a driver returning
// STATUS_PENDING marks the IRP pending and may complete it from another
// goroutine; violations that would bug-check NT panic with a *BugCheck.
//
// Lock order: Manager.mu (device database: stack links, namespace, device
// list) may be followed by Driver.mu; neither is held while driver code
// runs. IRP.cancelMu is a leaf. Stack links are also readable lock-free.
package iomgr
