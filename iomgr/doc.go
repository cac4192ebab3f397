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
// # Passing a request on
//
// A driver that does not complete a request itself passes it to the device
// below with one of three helpers, never by hand:
//
//   - PassDown hands it on unchanged with no completion routine (NT's
//     IoSkipCurrentIrpStackLocation and IoCallDriver): a filter's default
//     dispatch, a volume passing a flush to its partition.
//   - PassDownWith hands on a copy of the current stack location, adjusted,
//     with a completion routine (IoCopyCurrentIrpStackLocationToNext,
//     IoSetCompletionRoutine, IoCallDriver): a partition shifting a read to
//     disk offsets, a monitor timing a request.
//   - PassDownAndWait is the seeds' SFilterBetterFSDInterceptRoutine made
//     synchronous: a completion routine that signals and returns
//     STATUS_MORE_PROCESSING_REQUIRED gives the IRP back to the dispatch
//     routine, which post-processes it and completes it again; the "bad"
//     variant (SFilterBadFSDInterceptRoutine, returning the lower status
//     without completing) cannot be written with it.
//
// The rule they embody is the seeds' attach rule turned around: attaching
// makes a device's StackSize one more than its target's, so an IRP built
// for the top of a stack has a location for every device it passes; but a
// device that lies on another without being attached to it (a partition on
// its disk, a volume on its partition, a file system volume on its storage)
// sees the stack beneath it grow when a filter attaches there, while IRPs
// built for the old height are in flight. Each helper compares
// RemainingStackLocations with the lower device's StackSize and, when the
// IRP is short, carries the request in an associated IRP of the right size
// (IoMakeAssociatedIrp, with the seeds' associated-IRP completion: the
// master completes when its last associated IRP does) instead of running
// out of locations; since every helper checks, no driver needs to know
// whether the stack below it can grow. That IRP is the request as the
// lower driver would have seen it: the same flags, buffers, file object,
// requestor and RequestorMode, so that a user-mode request is still
// checked as one by a file system below. The pending rules hold on both
// paths: a driver that returns STATUS_PENDING has marked the IRP pending,
// and one that marked it returns STATUS_PENDING.
//
// # Sending a request of one's own
//
// Code above a device that sends it a read, a write (write-through for
// NBD's FUA), a flush or a device control of its own uses BlockIO: one
// synchronous IRP built (IoBuildSynchronousFsdRequest,
// IoBuildDeviceIoControlRequest), sent to the top of the stack so every
// filter sees it, waited for and freed, with no allocation. A driver reads
// and changes a read's or a write's length and offset through
// StackLocation.Transfer and SetTransfer rather than picking
// Parameters.Read or Parameters.Write by hand.
//
// Lock order: Manager.mu (device database: stack links, namespace, device
// list) may be followed by Driver.mu; neither is held while driver code
// runs. IRP.cancelMu is a leaf. Stack links are also readable lock-free.
package iomgr
