package iomgr

import "fmt"

// RemainingStackLocations returns how many stack locations are left below
// the current one: a driver may pass the IRP to a device whose StackSize is
// at most this.
func (irp *IRP) RemainingStackLocations() int { return irp.current }

// ForwardDeeper passes irp's current request to lower when irp has too few
// stack locations left for lower's stack, which happens when a filter
// attached beneath after the IRP was built. It sends an associated IRP of
// the right size whose first location is a copy of the current one, as
// adjusted by prepare (nil for none), runs done (nil for none) on the
// associated IRP once it completed, and completes irp with the associated
// IRP's status and information. It returns StatusPending.
func ForwardDeeper(irp *IRP, lower *Device, prepare func(next *StackLocation), done func(a *IRP)) Status {
	irp.MarkPending()
	irp.SetAssociatedCount(1)
	a := MakeAssociatedIRP(irp, lower.StackSize)
	a.Flags |= irp.Flags &^ IRPAssociatedIRP
	a.Buffer, a.SystemBuffer = irp.Buffer, irp.SystemBuffer
	next := a.NextStackLocation()
	*next = *irp.CurrentStackLocation()
	next.Control, next.setBy, next.CompletionRoutine, next.Context = 0, 0, nil, nil
	if prepare != nil {
		prepare(next)
	}
	a.SetCompletionRoutine(copyStatusToMaster, done, true, true, true)
	CallDriver(lower, a)
	return StatusPending
}

func copyStatusToMaster(_ *Device, a *IRP, context any) Status {
	if done, _ := context.(func(*IRP)); done != nil {
		done(a)
	}
	a.master.IOStatus = a.IOStatus
	// The IRP's Buffer is what the lower driver left in it, as when the IRP
	// itself travels: an MDL read answers with the driver's own memory
	// there (and its completion takes it back, leaving nil).
	a.master.Buffer = a.Buffer
	return StatusSuccess
}

// BlockIO reads and writes a storage device's stack with synchronous IRPs,
// as a file system's metadata I/O does (the "DIRECT I/O" of a monitor), so
// that every filter in the stack sees the traffic. It implements
// io.ReaderAt and io.WriterAt; unaligned requests are widened to whole
// sectors (a write then reads the edge sectors first).
type BlockIO struct {
	// Device is any device of the stack; requests go to its top.
	Device *Device
	// Requestor is recorded in every IRP.
	Requestor string
	// SectorSize overrides the device's sector size when non-zero.
	SectorSize int
	// Here sends requests to Device itself instead of the top of its
	// stack: what a filter uses to reach the devices beneath it.
	Here bool
}

func (b *BlockIO) target() *Device {
	if b.Here {
		return b.Device
	}
	return GetAttachedDevice(b.Device)
}

func (b *BlockIO) sectorSize() int64 {
	if b.SectorSize > 0 {
		return int64(b.SectorSize)
	}
	if b.Device.SectorSize > 0 {
		return int64(b.Device.SectorSize)
	}
	return 512
}

// Transfer sends one read or write of buf at off, which must be aligned.
func (b *BlockIO) Transfer(major MajorFunction, buf []byte, off int64, writeThrough bool) error {
	top := b.target()
	irp := BuildSynchronousFSDRequest(major, top, buf, off)
	irp.Requestor = b.Requestor
	if writeThrough {
		irp.NextStackLocation().Flags |= SLWriteThrough
	}
	ios := CallDriverAndWait(top, irp)
	FreeIRP(irp)
	if !ios.Status.IsSuccess() {
		op := "read"
		if major == MajorWrite {
			op = "write"
		}
		return fmt.Errorf("%s %d bytes at offset %d of %v: %w", op, len(buf), off, b.Device, ios.Status)
	}
	return nil
}

// ReadAt reads len(p) bytes at off through the stack.
func (b *BlockIO) ReadAt(p []byte, off int64) (int, error) {
	ss := b.sectorSize()
	if off%ss == 0 && int64(len(p))%ss == 0 {
		if err := b.Transfer(MajorRead, p, off, false); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	start := off / ss * ss
	end := (off + int64(len(p)) + ss - 1) / ss * ss
	tmp := make([]byte, end-start)
	if err := b.Transfer(MajorRead, tmp, start, false); err != nil {
		return 0, err
	}
	return copy(p, tmp[off-start:]), nil
}

// WriteAt writes p at off through the stack.
func (b *BlockIO) WriteAt(p []byte, off int64) (int, error) {
	ss := b.sectorSize()
	if off%ss == 0 && int64(len(p))%ss == 0 {
		if err := b.Transfer(MajorWrite, p, off, false); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	start := off / ss * ss
	end := (off + int64(len(p)) + ss - 1) / ss * ss
	tmp := make([]byte, end-start)
	if err := b.Transfer(MajorRead, tmp[:ss], start, false); err != nil {
		return 0, err
	}
	if end-start > ss {
		if err := b.Transfer(MajorRead, tmp[len(tmp)-int(ss):], end-ss, false); err != nil {
			return 0, err
		}
	}
	copy(tmp[off-start:], p)
	if err := b.Transfer(MajorWrite, tmp, start, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush sends IRP_MJ_FLUSH_BUFFERS down the stack.
func (b *BlockIO) Flush() error {
	top := b.target()
	irp := BuildSynchronousFSDRequest(MajorFlushBuffers, top, nil, 0)
	irp.Requestor = b.Requestor
	st := CallDriverAndWait(top, irp).Status
	FreeIRP(irp)
	if !st.IsSuccess() {
		return fmt.Errorf("flush %v: %w", b.Device, st)
	}
	return nil
}

// Control sends a synchronous device I/O control request to the top of the
// stack and returns its status as an error (nil on success).
func (b *BlockIO) Control(code uint32, input, output any) error {
	top := b.target()
	irp := BuildDeviceIoControlRequest(code, top, input, output, false)
	irp.Requestor = b.Requestor
	st := CallDriverAndWait(top, irp).Status
	FreeIRP(irp)
	if !st.IsSuccess() {
		return fmt.Errorf("I/O control %#08x on %v: %w", code, b.Device, st)
	}
	return nil
}
