package iomgr

import "fmt"

// BlockIO is the one way code above a device sends it a synchronous
// transfer: a read or write (write-through on request), a flush, or a
// device control, each in one IRP built, sent to the top of the device's
// stack (so every filter attached there sees it), waited for and freed. A
// file system's metadata I/O, the partition table reader, the NBD adapter
// and the io/fs façade's volume I/O all send through it.
//
// A BlockIO is a small value: code that sends on behalf of different
// requestors makes one per call (on the stack; sending allocates nothing).
// Send is the primitive, returning the NT status; Transfer, ReadAt,
// WriteAt, Flush and Control wrap it in errors that name the device.
type BlockIO struct {
	// Device is any device of the stack; requests go to its top.
	Device *Device
	// Requestor is recorded in every IRP: who asked (monitors show it).
	Requestor string
	// SectorSize overrides the device's sector size for ReadAt and
	// WriteAt when non-zero.
	SectorSize int
	// Here sends requests to Device itself instead of the top of its
	// stack: what a filter uses to reach the devices beneath it.
	Here bool
	// FileObject, when set, is the file object the requests are made on
	// (a volume handle, a file system's stream file), recorded in the IRP
	// and its stack location.
	FileObject *FileObject
	// Flags are IRP flags added to every read and write: IRPPagingIO and
	// IRPNoCache for a file system's metadata.
	Flags IRPFlags
	// RequestorMode is UserMode for requests made on a user's handle,
	// whose access the file system checks.
	RequestorMode ProcessorMode
}

// BlockRequest is one request BlockIO.Send carries.
type BlockRequest struct {
	// Major is MajorRead, MajorWrite, MajorFlushBuffers or
	// MajorDeviceControl.
	Major MajorFunction
	// Minor is the minor function of a read: MinorMDL asks the lower
	// driver to lend its own memory (returned by Send), MinorCompleteMDL
	// gives that memory back.
	Minor MinorFunction
	// Buffer is the data of a read or write, used in place; for
	// MinorCompleteMDL, the memory lent.
	Buffer []byte
	// Length is the length of a read or write when it is not len(Buffer):
	// an MDL read has no buffer.
	Length int
	// Offset is the byte offset of a read or write.
	Offset int64
	// WriteThrough asks a write to be durable before it completes
	// (SL_WRITE_THROUGH; NBD's FUA).
	WriteThrough bool
	// ControlCode, Input and Output are a device control's code, argument
	// and result (the IRP's SystemBuffer).
	ControlCode   uint32
	Input, Output any
}

func (b *BlockIO) target() *Device {
	if b.Here {
		return b.Device
	}
	return GetAttachedDevice(b.Device)
}

// Send sends r in one synchronous IRP and returns its final I/O status and
// the IRP's Buffer as the lower drivers left it: for an MDL read, the
// memory they lent (to give back with MinorCompleteMDL).
func (b *BlockIO) Send(r BlockRequest) (IOStatusBlock, []byte) {
	top := b.target()
	var irp *IRP
	switch r.Major {
	case MajorDeviceControl:
		irp = BuildDeviceIoControlRequest(r.ControlCode, top, r.Input, r.Output, false)
	default:
		irp = BuildSynchronousFSDRequest(r.Major, top, r.Buffer, r.Offset)
	}
	irp.Requestor = b.Requestor
	irp.RequestorMode = b.RequestorMode
	sl := irp.NextStackLocation()
	if b.FileObject != nil {
		irp.FileObject, sl.FileObject = b.FileObject, b.FileObject
	}
	if r.Major == MajorRead || r.Major == MajorWrite {
		irp.Flags |= b.Flags
		sl.Minor = r.Minor
		if r.Length != 0 {
			sl.SetTransfer(r.Length, r.Offset)
		}
		if r.WriteThrough {
			sl.Flags |= SLWriteThrough
		}
	}
	ios := CallDriverAndWait(top, irp)
	buf := irp.Buffer
	FreeIRP(irp)
	return ios, buf
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
	ios, _ := b.Send(BlockRequest{Major: major, Buffer: buf, Offset: off, WriteThrough: writeThrough})
	if !ios.Status.IsSuccess() {
		op := "read"
		if major == MajorWrite {
			op = "write"
		}
		return fmt.Errorf("%s %d bytes at offset %d of %v: %w", op, len(buf), off, b.Device, ios.Status)
	}
	return nil
}

// sectors returns the whole-sector range [start, end) that holds n bytes at
// off.
func (b *BlockIO) sectors(off int64, n int) (start, end int64) {
	ss := b.sectorSize()
	return off / ss * ss, (off + int64(n) + ss - 1) / ss * ss
}

// whole reads or writes p at off, which are whole sectors.
func (b *BlockIO) whole(major MajorFunction, p []byte, off int64) (int, error) {
	if err := b.Transfer(major, p, off, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// ReadAt reads len(p) bytes at off through the stack (io.ReaderAt);
// unaligned requests are widened to whole sectors.
func (b *BlockIO) ReadAt(p []byte, off int64) (int, error) {
	start, end := b.sectors(off, len(p))
	if start == off && end == off+int64(len(p)) {
		return b.whole(MajorRead, p, off)
	}
	tmp := make([]byte, end-start)
	if err := b.Transfer(MajorRead, tmp, start, false); err != nil {
		return 0, err
	}
	return copy(p, tmp[off-start:]), nil
}

// WriteAt writes p at off through the stack (io.WriterAt); an unaligned
// request reads its edge sectors first and writes whole sectors.
func (b *BlockIO) WriteAt(p []byte, off int64) (int, error) {
	start, end := b.sectors(off, len(p))
	if start == off && end == off+int64(len(p)) {
		return b.whole(MajorWrite, p, off)
	}
	ss := b.sectorSize()
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
	if ios, _ := b.Send(BlockRequest{Major: MajorFlushBuffers}); !ios.Status.IsSuccess() {
		return fmt.Errorf("flush %v: %w", b.Device, ios.Status)
	}
	return nil
}

// Control sends a synchronous device I/O control request (input its
// argument, output where its result goes) and returns its status as an
// error (nil on success).
func (b *BlockIO) Control(code uint32, input, output any) error {
	if ios, _ := b.Send(BlockRequest{Major: MajorDeviceControl, ControlCode: code, Input: input, Output: output}); !ios.Status.IsSuccess() {
		return fmt.Errorf("I/O control %#08x on %v: %w", code, b.Device, ios.Status)
	}
	return nil
}
