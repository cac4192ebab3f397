package iomgr

// The one way a driver passes an IRP on to the device below it: see the
// package documentation, "Passing a request on".

// RemainingStackLocations returns how many stack locations are left below
// the current one: a driver may pass the IRP to a device whose StackSize is
// at most this.
func (irp *IRP) RemainingStackLocations() int { return irp.current }

// PassDown passes irp's current request to lower unchanged, with no
// completion routine: the lower driver reuses the current stack location
// (IoSkipCurrentIrpStackLocation, then IoCallDriver). It returns what the
// lower driver returned; when irp is short of stack locations for lower's
// stack, the request travels in an associated IRP and PassDown returns
// StatusPending.
func PassDown(irp *IRP, lower *Device) Status {
	if irp.current < lower.StackSize {
		return forwardDeeper(irp, lower, nil, nil, nil)
	}
	irp.current++ // SkipCurrentStackLocation
	return CallDriver(lower, irp)
}

// PassDownWith passes irp's current request to lower with changes: it
// copies the current stack location to the next
// (IoCopyCurrentIrpStackLocationToNext), lets adjust change the copy (nil
// for none), sets routine with context as the completion routine (nil for
// none) and calls lower.
//
// When irp is short of stack locations for lower's stack, the copy goes
// into an associated IRP of the right size instead, and routine runs on
// that IRP when it completes, with dev the device passing it down; its
// PendingReturned is false there (PassDownWith has already marked irp
// pending and returns StatusPending), and the status it leaves in the IRP
// is irp's final status. So routine must work on whichever IRP it is given
// and must not return StatusMoreProcessingRequired: a driver that keeps the
// IRP after the lower driver uses PassDownAndWait.
func PassDownWith(irp *IRP, lower *Device, adjust func(next *StackLocation), routine CompletionRoutine, context any) Status {
	if irp.current < lower.StackSize {
		return forwardDeeper(irp, lower, adjust, routine, context)
	}
	irp.CopyCurrentStackLocationToNext()
	if adjust != nil {
		adjust(irp.NextStackLocation())
	}
	if routine != nil {
		irp.SetCompletionRoutine(routine, context, true, true, true)
	}
	return CallDriver(lower, irp)
}

// PassDownAndWait passes irp's current request to lower, waits until the
// lower driver completed it and keeps the IRP (a completion routine that
// signals and returns StatusMoreProcessingRequired, the seeds' synchronous
// intercept). The caller post-processes irp and must complete it
// (CompleteRequest); the returned status is the lower driver's. When irp is
// short of stack locations, the request travels in a separate IRP of the
// right size whose status, information and Buffer come back to irp.
func PassDownAndWait(irp *IRP, lower *Device) Status {
	ctx := &waitContext{done: make(chan struct{})}
	if irp.current < lower.StackSize {
		sub := AllocateIRP(lower.StackSize)
		carryRequest(sub, irp)
		sub.SetCompletionRoutine(signalAndKeep, ctx, true, true, true)
		if CallDriver(lower, sub) == StatusPending {
			<-ctx.done
		}
		// The buffer comes back too, as when irp itself travels: an MDL
		// read answers with the lower driver's memory there.
		irp.IOStatus, irp.Buffer = sub.IOStatus, sub.Buffer
		FreeIRP(sub)
		return irp.IOStatus.Status
	}
	irp.CopyCurrentStackLocationToNext()
	irp.SetCompletionRoutine(signalAndKeep, ctx, true, true, true)
	if CallDriver(lower, irp) == StatusPending {
		<-ctx.done
	}
	return irp.IOStatus.Status
}

// waitContext lets PassDownAndWait's completion routine wake it.
type waitContext struct{ done chan struct{} }

func signalAndKeep(_ *Device, _ *IRP, context any) Status {
	close(context.(*waitContext).done)
	return StatusMoreProcessingRequired
}

// forwardDeeper passes irp's current request to lower when irp has too few
// stack locations left for lower's stack. It sends an associated IRP of the
// right size whose first location is a copy of the current one, as changed
// by adjust (nil for none), runs routine (nil for none) on the associated
// IRP once it completed, and completes irp with the associated IRP's
// status, information and buffer. It returns StatusPending.
func forwardDeeper(irp *IRP, lower *Device, adjust func(next *StackLocation), routine CompletionRoutine, context any) Status {
	var then *deeperCompletion
	if routine != nil {
		then = &deeperCompletion{routine: routine, context: context, dev: irp.CurrentStackLocation().Device}
	}
	irp.MarkPending()
	irp.SetAssociatedCount(1)
	a := MakeAssociatedIRP(irp, lower.StackSize)
	carryRequest(a, irp)
	if adjust != nil {
		adjust(a.NextStackLocation())
	}
	a.SetCompletionRoutine(copyStatusToMaster, then, true, true, true)
	CallDriver(lower, a)
	return StatusPending
}

// carryRequest makes sub, a new IRP of the right size for the stack below,
// carry irp's current request as the lower driver would have seen it in
// irp itself: its first location is a copy of irp's current one, and it
// has irp's flags (a paging or no-cache request stays one), buffers, file
// object, requestor and requestor mode (a user-mode request stays user
// mode, so a file system below still checks its access).
func carryRequest(sub, irp *IRP) {
	sub.Flags |= irp.Flags &^ IRPAssociatedIRP
	sub.Buffer, sub.SystemBuffer, sub.FileObject = irp.Buffer, irp.SystemBuffer, irp.FileObject
	sub.Requestor, sub.RequestorMode = irp.Requestor, irp.RequestorMode
	copyStackLocation(sub.NextStackLocation(), irp.CurrentStackLocation())
}

// deeperCompletion is the completion routine of the driver that passed a
// request down in an associated IRP, with its context and device.
type deeperCompletion struct {
	routine CompletionRoutine
	context any
	dev     *Device
}

func copyStatusToMaster(_ *Device, a *IRP, context any) Status {
	if then, _ := context.(*deeperCompletion); then != nil {
		// The master is marked pending already, and a has no location of
		// the passing driver to mark.
		a.PendingReturned = false
		if then.routine(then.dev, a, then.context) == StatusMoreProcessingRequired {
			bugCheck("INVALID_COMPLETION_ROUTINE", "the completion routine of a request %v passed down in an associated IRP kept it (STATUS_MORE_PROCESSING_REQUIRED); use PassDownAndWait", then.dev)
		}
	}
	a.master.IOStatus = a.IOStatus
	// The IRP's Buffer is what the lower driver left in it, as when the IRP
	// itself travels: an MDL read answers with the driver's own memory
	// there (and its completion takes it back, leaving nil).
	a.master.Buffer = a.Buffer
	return StatusSuccess
}
