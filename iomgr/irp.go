package iomgr

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// IOStatusBlock is the final status of a request and its information value:
// bytes transferred for reads and writes, a request-specific value otherwise.
type IOStatusBlock struct {
	Status      Status
	Information uint64
}

// ProcessorMode is who a request is made for (NT's KPROCESSOR_MODE).
type ProcessorMode uint8

// The processor modes. Values are NT's.
const (
	KernelMode ProcessorMode = 0
	UserMode   ProcessorMode = 1
)

// IRPFlags are the IRP_* flags of a request. Values are NT's.
type IRPFlags uint32

// The IRP flags.
const (
	IRPNoCache           IRPFlags = 0x00000001
	IRPPagingIO          IRPFlags = 0x00000002
	IRPMountCompletion   IRPFlags = 0x00000002 // on IRP_MJ_FILE_SYSTEM_CONTROL, NT reuses the paging bit
	IRPSynchronousAPI    IRPFlags = 0x00000004
	IRPAssociatedIRP     IRPFlags = 0x00000008
	IRPBufferedIO        IRPFlags = 0x00000010
	IRPInputOperation    IRPFlags = 0x00000040
	IRPCreateOperation   IRPFlags = 0x00000080
	IRPReadOperation     IRPFlags = 0x00000100
	IRPWriteOperation    IRPFlags = 0x00000200
	IRPCloseOperation    IRPFlags = 0x00000400
	IRPDeferIOCompletion IRPFlags = 0x00000800
)

// Stack location flags (SL_*) for StackLocation.Flags. Their meaning depends
// on the major function, as in NT.
const (
	// SLWriteThrough on IRP_MJ_WRITE: the data must be durable before completion (NBD's FUA).
	SLWriteThrough uint8 = 0x04
	// SLForceAccessCheck on IRP_MJ_CREATE.
	SLForceAccessCheck uint8 = 0x01
	// SLOpenTargetDirectory on IRP_MJ_CREATE: open the parent of the named file (for rename).
	SLOpenTargetDirectory uint8 = 0x04
	// SLCaseSensitive on IRP_MJ_CREATE.
	SLCaseSensitive uint8 = 0x80
	// SLRestartScan on IRP_MN_QUERY_DIRECTORY: start the enumeration again.
	SLRestartScan uint8 = 0x01
	// SLReturnSingleEntry on IRP_MN_QUERY_DIRECTORY.
	SLReturnSingleEntry uint8 = 0x02
	// SLIndexSpecified on IRP_MN_QUERY_DIRECTORY: FileIndex says where to resume.
	SLIndexSpecified uint8 = 0x04
)

// Stack location control bits (SL_PENDING_RETURNED and SL_INVOKE_ON_*), NT's values.
const (
	controlPendingReturned uint8 = 0x01
	controlInvokeOnCancel  uint8 = 0x20
	controlInvokeOnSuccess uint8 = 0x40
	controlInvokeOnError   uint8 = 0x80
)

// CompletionRoutine runs while an IRP completes, for the driver that set it
// on the stack location below its own. dev is that driver's device (nil when
// the IRP's creator set the routine on the first location without a location
// of its own). Returning StatusMoreProcessingRequired stops the completion
// walk: the routine's driver owns the IRP again and must complete it again
// (CompleteRequest resumes at the next location) or free it.
type CompletionRoutine func(dev *Device, irp *IRP, context any) Status

// CancelRoutine is called by CancelIRP for an IRP a driver holds in a queue.
type CancelRoutine func(dev *Device, irp *IRP)

// StackLocation is one driver's view of an IRP: what it is asked to do
// (major, minor, flags, parameters, file object) and the completion routine
// the driver above it set.
type StackLocation struct {
	Major   MajorFunction
	Minor   MinorFunction
	Flags   uint8 // SL_* flags
	Control uint8 // SL_PENDING_RETURNED and SL_INVOKE_ON_*; managed by iomgr

	// setBy is the index+1 of the stack location whose driver set the
	// completion routine here. CompleteRequest invokes the routine only when
	// it matches this location's position, which guards against the
	// double-invocation hazard of a driver copying a whole stack location
	// (routine included) into the next one.
	setBy int16

	Parameters Parameters

	// Device is the device this location was sent to (set by CallDriver).
	Device *Device
	// FileObject is the file object the request concerns, if any.
	FileObject *FileObject

	CompletionRoutine CompletionRoutine
	Context           any
}

// Parameters holds the per-major-function arguments of a stack location.
// Only the field matching the location's major function is meaningful.
type Parameters struct {
	Create            CreateParameters
	Read              ReadWriteParameters
	Write             ReadWriteParameters
	QueryFile         QueryFileParameters
	SetFile           SetFileParameters
	QueryDirectory    QueryDirectoryParameters
	QueryVolume       QueryVolumeParameters
	SetVolume         QueryVolumeParameters
	FileSystemControl ControlParameters
	DeviceIoControl   ControlParameters
	MountVolume       MountParameters
	VerifyVolume      MountParameters
}

// ReadWriteParameters are the arguments of IRP_MJ_READ and IRP_MJ_WRITE. The
// data is the IRP's Buffer.
type ReadWriteParameters struct {
	Length     uint32
	Key        uint32
	ByteOffset int64
}

// Transfer returns the arguments of a read or write: Parameters.Read on
// IRP_MJ_READ, Parameters.Write on IRP_MJ_WRITE, nil on any other major
// function. A driver reads the length and offset through it without picking
// the field by hand, and adjusts the request it passes on through it (a
// partition shifts ByteOffset on the next location).
func (sl *StackLocation) Transfer() *ReadWriteParameters {
	switch sl.Major {
	case MajorRead:
		return &sl.Parameters.Read
	case MajorWrite:
		return &sl.Parameters.Write
	}
	return nil
}

// SetTransfer sets the length and byte offset of a read or write (what
// Transfer returns); the location's Major must be IRP_MJ_READ or
// IRP_MJ_WRITE already.
func (sl *StackLocation) SetTransfer(length int, offset int64) {
	p := sl.Transfer()
	if p == nil {
		notATransfer(sl.Major)
	}
	p.Length, p.ByteOffset = uint32(length), offset
}

func notATransfer(major MajorFunction) {
	panic(fmt.Sprintf("iomgr: SetTransfer on a %v stack location", major))
}

// CreateParameters are the arguments of IRP_MJ_CREATE. The name is the file
// object's FileName.
type CreateParameters struct {
	DesiredAccess  AccessMask
	Options        CreateOptions
	Disposition    CreateDisposition
	FileAttributes FileAttributes
	ShareAccess    ShareAccess
	AllocationSize int64
}

// QueryFileParameters are the arguments of IRP_MJ_QUERY_INFORMATION; the
// result goes to the IRP's SystemBuffer (a pointer to the class's struct).
type QueryFileParameters struct {
	Length uint32
	Class  FileInformationClass
}

// SetFileParameters are the arguments of IRP_MJ_SET_INFORMATION; the new
// values are in the IRP's SystemBuffer.
type SetFileParameters struct {
	Length          uint32
	Class           FileInformationClass
	FileObject      *FileObject // the target directory of a rename, if opened
	ReplaceIfExists bool
}

// QueryDirectoryParameters are the arguments of IRP_MN_QUERY_DIRECTORY.
type QueryDirectoryParameters struct {
	Length    uint32
	Class     FileInformationClass
	FileName  string // the pattern, with * and ? wildcards; "" means all
	FileIndex uint32
}

// QueryVolumeParameters are the arguments of IRP_MJ_QUERY_VOLUME_INFORMATION
// and IRP_MJ_SET_VOLUME_INFORMATION.
type QueryVolumeParameters struct {
	Length uint32
	Class  FSInformationClass
}

// ControlParameters are the arguments of IRP_MJ_DEVICE_CONTROL,
// IRP_MJ_INTERNAL_DEVICE_CONTROL and IRP_MN_USER_FS_REQUEST. The input is
// Input; the output goes to the IRP's SystemBuffer (or Buffer for byte data).
type ControlParameters struct {
	OutputBufferLength uint32
	InputBufferLength  uint32
	ControlCode        uint32
	Input              any
}

// MountParameters are the arguments of IRP_MN_MOUNT_VOLUME and
// IRP_MN_VERIFY_VOLUME: the volume's VPB and its storage device.
type MountParameters struct {
	VPB    *VPB
	Device *Device
}

// IRP is an I/O request packet. The creator fills in the first stack
// location (NextStackLocation) and calls CallDriver; each driver reads its
// own location (CurrentStackLocation) and either completes the request or
// passes it on.
type IRP struct {
	// Flags are the IRP_* flags.
	Flags IRPFlags
	// IOStatus is the final status, set by the driver that completes the IRP.
	IOStatus IOStatusBlock
	// PendingReturned is set during completion from the stack location being
	// completed: a completion routine that sees it must call MarkPending
	// (NT's rule), so the pending state propagates to the originator.
	PendingReturned bool
	// Buffer is the caller's memory for the data of a read or write (NT's
	// MDL): never copied on its way down the stack.
	Buffer []byte
	// SystemBuffer carries structured input/output of buffered requests:
	// information classes, I/O control results.
	SystemBuffer any
	// FileObject is the file object the request was made on, if any.
	FileObject *FileObject
	// Requestor says who asked: "vdisk cp", an NBD client's address. Monitors record it.
	Requestor string
	// RequestorMode is UserMode for requests made on behalf of a user's
	// handle, whose granted access a file system checks; KernelMode (the
	// zero value) for requests drivers make for themselves, such as a
	// filter deleting what it refused, which are trusted.
	RequestorMode ProcessorMode

	stack   []StackLocation
	current int // index of the current stack location; len(stack) before the first CallDriver

	state atomic.Uint32 // irpActive, irpCompleting, irpCompleted, irpFree

	cancelled     atomic.Bool
	cancelMu      sync.Mutex // guards cancelRoutine
	cancelRoutine CancelRoutine

	master          *IRP         // the master of an associated IRP
	associatedCount atomic.Int32 // on a master: associated IRPs not yet completed
	associatedError atomic.Uint32

	event       chan struct{} // signalled at final completion when an originator waits
	waiter      atomic.Uint32 // waitNone, waitWaiting, waitDone: whether finish must signal event
	synchronous bool          // created by a synchronous builder: has an originator waiting
	pool        int8          // size class it came from, -1 when not pooled
}

const (
	waitNone uint32 = iota
	waitWaiting
	waitDone
)

const (
	irpActive uint32 = iota
	irpCompleting
	irpCompleted
	irpFree
)

// BugCheck is the panic value of a violated I/O rule: what NT would stop the
// system for (completing an IRP twice, running out of stack locations, a
// driver that fails to detach). Tests recover it; users never see one unless
// a driver is broken.
type BugCheck struct {
	Code    string // NT's bug check name, e.g. MULTIPLE_IRP_COMPLETE_REQUESTS
	Message string
}

func (b *BugCheck) Error() string { return "iomgr bug check " + b.Code + ": " + b.Message }

func bugCheck(code, format string, args ...any) {
	panic(&BugCheck{Code: code, Message: fmt.Sprintf(format, args...)})
}

// pool size classes of stack locations; larger IRPs are allocated plainly.
var irpClasses = [...]int{4, 8, 16, 32}

var irpPools [len(irpClasses)]sync.Pool

// AllocateIRP returns an IRP with stackSize stack locations from a pool (the
// lookaside lists of NT). Free it with FreeIRP.
func AllocateIRP(stackSize int) *IRP {
	if stackSize < 1 {
		stackSize = 1
	}
	var irp *IRP
	class := -1
	for i, n := range irpClasses {
		if stackSize <= n {
			class = i
			break
		}
	}
	if class >= 0 {
		if v := irpPools[class].Get(); v != nil {
			irp = v.(*IRP)
		} else {
			irp = &IRP{stack: make([]StackLocation, irpClasses[class]), event: make(chan struct{}, 1)}
		}
	} else {
		irp = &IRP{stack: make([]StackLocation, stackSize), event: make(chan struct{}, 1)}
	}
	irp.pool = int8(class)
	irp.stack = irp.stack[:stackSize]
	irp.current = stackSize
	irp.state.Store(irpActive)
	return irp
}

// FreeIRP returns irp to its pool. The IRP must not be in use by any driver.
func FreeIRP(irp *IRP) {
	if irp.state.Load() == irpFree {
		bugCheck("MULTIPLE_IRP_FREES", "IRP %p freed twice", irp)
	}
	irp.state.Store(irpFree)
	// Nobody else holds a freed IRP: its atomics need resetting only when
	// set, which spares the hot path several locked instructions.
	if irp.waiter.Load() != waitNone {
		irp.waiter.Store(waitNone)
	}
	if irp.cancelled.Load() {
		irp.cancelled.Store(false)
	}
	if irp.associatedCount.Load() != 0 {
		irp.associatedCount.Store(0)
	}
	if irp.associatedError.Load() != 0 {
		irp.associatedError.Store(0)
	}
	clear(irp.stack)
	stack, event, class := irp.stack[:cap(irp.stack)], irp.event, irp.pool
	irp.Flags, irp.IOStatus, irp.PendingReturned = 0, IOStatusBlock{}, false
	irp.Buffer, irp.SystemBuffer, irp.FileObject, irp.Requestor = nil, nil, nil, ""
	irp.RequestorMode = KernelMode
	irp.cancelRoutine = nil
	irp.master = nil
	irp.synchronous = false
	irp.stack, irp.event = stack, event
	if class >= 0 {
		irpPools[class].Put(irp)
	}
}

// StackCount returns the number of stack locations.
func (irp *IRP) StackCount() int { return len(irp.stack) }

// CurrentStackLocation returns the location of the driver now handling the
// IRP (IoGetCurrentIrpStackLocation).
func (irp *IRP) CurrentStackLocation() *StackLocation {
	if irp.current >= len(irp.stack) {
		bugCheck("INVALID_STACK_LOCATION", "IRP %p has no current stack location: it was not sent to a driver yet", irp)
	}
	return &irp.stack[irp.current]
}

// NextStackLocation returns the location the next lower driver will see
// (IoGetNextIrpStackLocation): the creator fills it before the first
// CallDriver, a filter before passing the IRP on.
func (irp *IRP) NextStackLocation() *StackLocation {
	if irp.current <= 0 {
		bugCheck("NO_MORE_IRP_STACK_LOCATIONS", "IRP %p has no stack location left below the current one (stack count %d)", irp, len(irp.stack))
	}
	return &irp.stack[irp.current-1]
}

// CopyCurrentStackLocationToNext gives the next driver the same request as
// the current one, without the current completion routine and control bits
// (IoCopyCurrentIrpStackLocationToNext).
func (irp *IRP) CopyCurrentStackLocationToNext() {
	copyStackLocation(irp.NextStackLocation(), irp.CurrentStackLocation())
}

// copyStackLocation makes dst the request src is, without src's completion
// routine and control bits (they belong to the driver above src).
func copyStackLocation(dst, src *StackLocation) {
	*dst = *src
	dst.Control = 0
	dst.setBy = 0
	dst.CompletionRoutine = nil
	dst.Context = nil
}

// SkipCurrentStackLocation lets the next driver reuse the current location
// (IoSkipCurrentIrpStackLocation): the cheapest pass-through, for a driver
// that sets no completion routine.
func (irp *IRP) SkipCurrentStackLocation() { irp.current++ }

// SetCompletionRoutine sets routine on the next stack location, to run with
// context when the lower driver completes the IRP with a success status
// (onSuccess), an error status (onError) or after cancellation (onCancel).
func (irp *IRP) SetCompletionRoutine(routine CompletionRoutine, context any, onSuccess, onError, onCancel bool) {
	next := irp.NextStackLocation()
	next.CompletionRoutine = routine
	next.Context = context
	next.setBy = int16(irp.current) + 1
	next.Control &^= controlInvokeOnSuccess | controlInvokeOnError | controlInvokeOnCancel
	if onSuccess {
		next.Control |= controlInvokeOnSuccess
	}
	if onError {
		next.Control |= controlInvokeOnError
	}
	if onCancel {
		next.Control |= controlInvokeOnCancel
	}
}

// MarkPending records that the current driver will return StatusPending
// (IoMarkIrpPending). A driver marks pending before it hands the IRP to
// another goroutine, or in its completion routine when PendingReturned is set.
func (irp *IRP) MarkPending() { irp.CurrentStackLocation().Control |= controlPendingReturned }

// Cancelled reports whether CancelIRP was called on the IRP.
func (irp *IRP) Cancelled() bool { return irp.cancelled.Load() }

// SetCancelRoutine sets the routine CancelIRP will call and returns the
// previous one. A driver sets it when it queues the IRP and clears it (nil)
// before it completes the IRP; a nil result from clearing means the cancel
// routine already ran or is running and owns the IRP.
func (irp *IRP) SetCancelRoutine(routine CancelRoutine) CancelRoutine {
	irp.cancelMu.Lock()
	old := irp.cancelRoutine
	irp.cancelRoutine = routine
	irp.cancelMu.Unlock()
	return old
}

// CancelIRP marks the IRP cancelled and calls its cancel routine, if one is
// set, with the current location's device. It reports whether a routine ran.
func CancelIRP(irp *IRP) bool {
	irp.cancelMu.Lock()
	irp.cancelled.Store(true)
	routine := irp.cancelRoutine
	irp.cancelRoutine = nil
	var dev *Device
	if irp.current < len(irp.stack) {
		dev = irp.stack[irp.current].Device
	}
	irp.cancelMu.Unlock()
	if routine == nil {
		return false
	}
	routine(dev, irp)
	return true
}

// CallDriver sends irp to dev's driver: it moves to the next stack location,
// records dev there and calls the driver's dispatch routine for the
// location's major function, in the caller's goroutine (IoCallDriver).
func CallDriver(dev *Device, irp *IRP) Status {
	if irp.current <= 0 {
		bugCheck("NO_MORE_IRP_STACK_LOCATIONS", "IRP %p sent to %v with no stack location left (stack count %d, device stack size %d)", irp, dev, len(irp.stack), dev.StackSize)
	}
	irp.current--
	sl := &irp.stack[irp.current]
	sl.Device = dev
	if fn := dev.Driver.Dispatch[sl.Major]; fn != nil {
		return fn(dev, irp)
	}
	irp.IOStatus = IOStatusBlock{Status: StatusInvalidDeviceRequest}
	CompleteRequest(irp)
	return StatusInvalidDeviceRequest
}

// Complete sets the I/O status and completes the IRP, returning status so a
// dispatch routine can end with `return irp.Complete(status, n)`.
func (irp *IRP) Complete(status Status, information uint64) Status {
	irp.IOStatus = IOStatusBlock{Status: status, Information: information}
	CompleteRequest(irp)
	return status
}

// CompleteRequest completes irp (IoCompleteRequest): from the current stack
// location back toward the originator it runs each completion routine whose
// invoke-on flags match the final status, last in first out, passing the
// device of the driver that set it. A routine returning
// StatusMoreProcessingRequired stops the walk; completing the IRP again
// resumes at the next location. Completing an IRP that is already complete
// is a bug check.
func CompleteRequest(irp *IRP) {
	if !irp.state.CompareAndSwap(irpActive, irpCompleting) {
		state := "being completed"
		switch irp.state.Load() {
		case irpCompleted:
			state = "already completed"
		case irpFree:
			state = "freed"
		}
		bugCheck("MULTIPLE_IRP_COMPLETE_REQUESTS", "IRP %p completed while %s", irp, state)
	}
	if irp.IOStatus.Status == StatusPending {
		bugCheck("IRP_COMPLETED_PENDING", "IRP %p completed with STATUS_PENDING as its final status", irp)
	}
	n := len(irp.stack)
	for irp.current < n {
		sl := &irp.stack[irp.current]
		irp.PendingReturned = sl.Control&controlPendingReturned != 0
		routine, context, control, setBy := sl.CompletionRoutine, sl.Context, sl.Control, int(sl.setBy)
		irp.current++
		var dev *Device
		if irp.current < n {
			dev = irp.stack[irp.current].Device
		}
		// setBy records index+1 of the location whose driver set the
		// routine; that driver sits at the location we just moved to (index
		// irp.current), so only a genuine routine has setBy == irp.current+1.
		// A routine copied down with a whole stack location does not match.
		invoke := routine != nil && setBy == irp.current+1
		if invoke {
			st := irp.IOStatus.Status
			invoke = st.IsSuccess() && control&controlInvokeOnSuccess != 0 ||
				!st.IsSuccess() && control&controlInvokeOnError != 0 ||
				irp.cancelled.Load() && control&controlInvokeOnCancel != 0
		}
		if !invoke {
			if irp.PendingReturned && irp.current < n {
				irp.stack[irp.current].Control |= controlPendingReturned
			}
			continue
		}
		// The routine may hand the IRP to another goroutine that completes
		// it again; the IRP must be completable before the routine runs.
		irp.state.Store(irpActive)
		if routine(dev, irp, context) == StatusMoreProcessingRequired {
			return
		}
		if !irp.state.CompareAndSwap(irpActive, irpCompleting) {
			bugCheck("MULTIPLE_IRP_COMPLETE_REQUESTS", "IRP %p was completed again by or during a completion routine that did not return STATUS_MORE_PROCESSING_REQUIRED", irp)
		}
	}
	irp.finish()
}

// finish is the I/O manager's final completion: associated IRPs count down
// their master and are freed; synchronous requests wake their originator.
func (irp *IRP) finish() {
	master := irp.master
	status := irp.IOStatus.Status
	sync := irp.synchronous
	irp.state.Store(irpCompleted)
	if master != nil {
		if !status.IsSuccess() {
			master.associatedError.CompareAndSwap(0, uint32(status))
		}
		FreeIRP(irp)
		if master.associatedCount.Add(-1) == 0 {
			if e := Status(master.associatedError.Load()); e != 0 && master.IOStatus.Status.IsSuccess() {
				master.IOStatus.Status = e
			}
			CompleteRequest(master)
		}
		return
	}
	// Only an originator already waiting needs waking; one that has not
	// started waiting will see waitDone and not block.
	if sync && irp.waiter.Swap(waitDone) == waitWaiting {
		irp.event <- struct{}{}
	}
}

// Wait blocks until a synchronous IRP that CallDriver reported pending has
// completed.
func (irp *IRP) Wait() {
	if irp.waiter.CompareAndSwap(waitNone, waitWaiting) {
		<-irp.event
	}
}

// CallDriverAndWait is the originator's side of a synchronous request: it
// sends irp to dev, waits only if the driver returned StatusPending, checks
// the pending rules and returns the final I/O status. The IRP must come from
// a synchronous builder; the caller still owns it (FreeIRP).
func CallDriverAndWait(dev *Device, irp *IRP) IOStatusBlock {
	if !irp.synchronous {
		bugCheck("INVALID_IRP", "CallDriverAndWait on IRP %p that no synchronous builder made", irp)
	}
	st := CallDriver(dev, irp)
	if st == StatusPending {
		irp.Wait()
		if !irp.PendingReturned {
			bugCheck("PENDING_NOT_MARKED", "a driver under %v returned STATUS_PENDING without marking IRP %p pending", dev, irp)
		}
		return irp.IOStatus
	}
	if irp.state.Load() != irpCompleted {
		bugCheck("IRP_NOT_COMPLETED", "a driver under %v returned %v without completing IRP %p (a completion routine kept it with STATUS_MORE_PROCESSING_REQUIRED?)", dev, st, irp)
	}
	if irp.PendingReturned {
		bugCheck("PENDING_MARKED_NOT_RETURNED", "a driver under %v marked IRP %p pending but returned %v", dev, irp, st)
	}
	return irp.IOStatus
}

// MakeAssociatedIRP returns a new IRP associated with master
// (IoMakeAssociatedIrp). The caller sets the master's count with
// SetAssociatedCount before sending any associated IRP; as each associated
// IRP completes, iomgr frees it and decrements the count, and completes the
// master when it reaches zero (with the first failure status of an
// associated IRP if the master's own status is a success).
func MakeAssociatedIRP(master *IRP, stackSize int) *IRP {
	irp := AllocateIRP(stackSize)
	irp.master = master
	irp.Flags |= IRPAssociatedIRP
	irp.Requestor = master.Requestor
	irp.FileObject = master.FileObject
	return irp
}

// SetAssociatedCount sets how many associated IRPs must complete before the
// master completes.
func (irp *IRP) SetAssociatedCount(n int) { irp.associatedCount.Store(int32(n)) }

// Master returns the master of an associated IRP, nil otherwise.
func (irp *IRP) Master() *IRP { return irp.master }
