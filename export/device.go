package export

import (
	"context"
	"fmt"
	"sync"

	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/nbd"
	"github.com/vdisk-dev/vdisk/volume"
)

// Device is an NBD export's device: it turns NBD requests into IRPs sent to
// the top of a device's stack (the whole disk's or a volume's), so that every filter attached
// there sees them, with the NBD client's address as requestor.
type Device struct {
	// Device is the disk or volume device; requests go to the top of its stack.
	Device *iomgr.Device
	// Length is the export's size in bytes.
	Length int64
	// Name is the export's name, for messages.
	Name string
	// Claims are the volume devices a connection claims for writing with
	// its first write-class request and keeps until it ends (see
	// ClaimPerConnection); empty when claims are taken elsewhere or the
	// export is read-only.
	Claims []*iomgr.Device
	// Refused, when set, is told the first time a connection's write is
	// refused because a volume beneath the export is mounted, so that the
	// server can say so in its log as well as to the client.
	Refused func(r *nbd.Request, err error)

	mu      sync.RWMutex                 // guards writers and refused
	writers map[context.Context]struct{} // connections holding the claims
	refused map[context.Context]struct{} // connections told of a refusal
}

// Writers returns the number of connections that hold a write claim on the
// export's volumes.
func (e *Device) Writers() int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return len(e.writers)
}

// claim makes r's connection a writer of the export's volumes, once per
// connection; the claim ends with the connection (its context).
func (e *Device) claim(r *nbd.Request) error {
	if len(e.Claims) == 0 {
		return nil
	}
	ctx := r.Context()
	// Every write asks: the common answer (this connection already holds
	// the claim) takes only the read lock, so writers on several
	// connections do not queue behind each other.
	e.mu.RLock()
	_, held := e.writers[ctx]
	e.mu.RUnlock()
	if held {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.writers[ctx]; ok {
		return nil
	}
	var got []*volume.Extension
	for _, v := range e.Claims {
		ext := v.Extension.(*volume.Extension)
		if err := ext.AcquireExportWrite(); err != nil {
			for _, g := range got {
				g.ReleaseExportWrite()
			}
			err = &refusedWrite{msg: fmt.Sprintf("NBD write to export %q refused: volume %s is mounted in the server (dismount it first: vdisk dismount %s)",
				e.Name, volume.DosName(v), volume.DosName(v)), errs: []error{err, iomgr.StatusAccessDenied}}
			e.tellRefused(r, ctx, err)
			return err
		}
		got = append(got, ext)
	}
	if e.writers == nil {
		e.writers = map[context.Context]struct{}{}
	}
	e.writers[ctx] = struct{}{}
	context.AfterFunc(ctx, func() {
		e.mu.Lock()
		delete(e.writers, ctx)
		e.mu.Unlock()
		for _, g := range got {
			g.ReleaseExportWrite()
		}
	})
	return nil
}

// refusedWrite is the error of a write refused because a volume beneath
// the export is mounted: it says so in words, and matches volume.ErrMounted
// and STATUS_ACCESS_DENIED (which Errno turns into EPERM).
type refusedWrite struct {
	msg  string
	errs []error
}

func (e *refusedWrite) Error() string   { return e.msg }
func (e *refusedWrite) Unwrap() []error { return e.errs }

// tellRefused reports a refusal to Refused once per connection; e.mu is held.
func (e *Device) tellRefused(r *nbd.Request, ctx context.Context, err error) {
	if e.Refused == nil {
		return
	}
	if _, told := e.refused[ctx]; told {
		return
	}
	if e.refused == nil {
		e.refused = map[context.Context]struct{}{}
	}
	e.refused[ctx] = struct{}{}
	context.AfterFunc(ctx, func() {
		e.mu.Lock()
		delete(e.refused, ctx)
		e.mu.Unlock()
	})
	e.Refused(r, err)
}

var _ nbd.Device = (*Device)(nil)

// Size implements nbd.Device.
func (e *Device) Size() int64 { return e.Length }

// send sends one request for r's connection to the top of the export's
// stack (iomgr.BlockIO) and returns its I/O status and the buffer the
// lower drivers left in the IRP (for an MDL read, the memory they lent).
func (e *Device) send(r *nbd.Request, req iomgr.BlockRequest) (iomgr.IOStatusBlock, []byte) {
	b := iomgr.BlockIO{Device: e.Device}
	if r != nil {
		b.Requestor = r.Requestor()
	}
	return b.Send(req)
}

func (e *Device) transfer(r *nbd.Request, major iomgr.MajorFunction, p []byte, off int64, writeThrough bool) error {
	ios, _ := e.send(r, iomgr.BlockRequest{Major: major, Buffer: p, Offset: off, WriteThrough: writeThrough})
	return ios.Status.Err()
}

// ReadAt implements nbd.Device with an IRP_MJ_READ into the reply buffer.
func (e *Device) ReadAt(r *nbd.Request, p []byte, off int64) error {
	return e.transfer(r, iomgr.MajorRead, p, off, false)
}

var _ nbd.Lender = (*Device)(nil)

// LendRead implements nbd.Lender with an MDL read: an IRP_MJ_READ with
// IRP_MN_MDL and no buffer goes down the export's stack, and the disk driver
// answers with memory of its own (the image's page cache, mapped), so a
// large read is sent without being copied into the server's buffer. The
// release sends the same read back with IRP_MN_MDL|IRP_MN_COMPLETE, as NT's
// MdlReadComplete does. A stack that cannot lend (a memory store, or a
// filter such as crypt or cow that must see the data) answers
// STATUS_NOT_SUPPORTED, and the server reads normally.
func (e *Device) LendRead(r *nbd.Request, off int64, length int) ([]byte, func(), error) {
	ios, data := e.send(r, iomgr.BlockRequest{Major: iomgr.MajorRead, Minor: iomgr.MinorMDL, Offset: off, Length: length})
	switch st := ios.Status; {
	case st == iomgr.StatusNotSupported || st == iomgr.StatusInvalidDeviceRequest:
		return nil, nil, nbd.ErrNotLent
	case !st.IsSuccess():
		return nil, nil, st.Err()
	}
	release := func() {
		e.send(r, iomgr.BlockRequest{Major: iomgr.MajorRead, Minor: iomgr.MinorCompleteMDL, Buffer: data, Offset: off, Length: length})
	}
	return data, release, nil
}

// WriteAt implements nbd.Device with an IRP_MJ_WRITE (write-through for FUA).
func (e *Device) WriteAt(r *nbd.Request, p []byte, off int64) error {
	if err := e.claim(r); err != nil {
		return err
	}
	return e.transfer(r, iomgr.MajorWrite, p, off, r.Flags()&nbd.FlagFUA != 0)
}

// Flush implements nbd.Device with an IRP_MJ_FLUSH_BUFFERS.
func (e *Device) Flush(r *nbd.Request) error {
	ios, _ := e.send(r, iomgr.BlockRequest{Major: iomgr.MajorFlushBuffers})
	return ios.Status.Err()
}

// dataSet sends a data-set management control (trim, zeroing, allocation,
// prefetch).
func (e *Device) dataSet(r *nbd.Request, req *disk.DataSetRequest, out any) error {
	return e.dataSetAs(r.Requestor(), req, out)
}

func (e *Device) dataSetAs(requestor string, req *disk.DataSetRequest, out any) error {
	b := iomgr.BlockIO{Device: e.Device, Requestor: requestor}
	ios, _ := b.Send(iomgr.BlockRequest{Major: iomgr.MajorDeviceControl,
		ControlCode: disk.IOCTLStorageManageDataSetAttributes, Input: req, Output: out})
	return ios.Status.Err()
}

// Allocation asks the export's stack, for requestor, which parts of the
// range are allocated (what NBD_CMD_BLOCK_STATUS answers, and what the web
// view's block map shows): consecutive extents from off, which may cover
// less than length.
func (e *Device) Allocation(requestor string, off, length int64) ([]disk.Extent, error) {
	var got []disk.Extent
	err := e.dataSetAs(requestor, &disk.DataSetRequest{Action: disk.DataSetAllocation, Offset: off, Length: length}, &got)
	return got, err
}

// Trim implements nbd.Device with a data-set TRIM control, and a flush
// after it for FUA.
func (e *Device) Trim(r *nbd.Request, off, length int64) error {
	if err := e.claim(r); err != nil {
		return err
	}
	return e.durable(r, e.dataSet(r, &disk.DataSetRequest{Action: disk.DataSetTrim, Offset: off, Length: length}, nil))
}

// durable follows a successful data-set change with an IRP_MJ_FLUSH_BUFFERS
// when the client asked for FUA: the spec forbids the reply before the
// change is on stable storage (nbdkit's fdatasync). A flush, rather than a
// write-through flag on the control, because every filter of the stack
// (an overlay, a cache) knows what a flush asks of it.
func (e *Device) durable(r *nbd.Request, err error) error {
	if err != nil || !r.FUA() {
		return err
	}
	return e.Flush(r)
}

// WriteZeroes implements nbd.Device with a data-set zeroing control, and a
// flush after it for FUA.
func (e *Device) WriteZeroes(r *nbd.Request, off, length int64) error {
	if err := e.claim(r); err != nil {
		return err
	}
	var flags disk.ZeroFlags
	if r.Flags()&nbd.FlagNoHole != 0 {
		flags |= disk.ZeroNoHole
	}
	if r.Flags()&nbd.FlagFastZero != 0 {
		flags |= disk.ZeroFast
	}
	return e.durable(r, e.dataSet(r, &disk.DataSetRequest{Action: disk.DataSetZero, Offset: off, Length: length, Flags: flags}, nil))
}

// BlockStatus implements nbd.Device with a data-set allocation query.
func (e *Device) BlockStatus(r *nbd.Request, off, length int64, ext []nbd.Extent) ([]nbd.Extent, error) {
	got, err := e.Allocation(r.Requestor(), off, length)
	if err != nil {
		return ext, err
	}
	for _, x := range got {
		var f uint32
		if x.Hole {
			f |= nbd.StateHole
		}
		if x.Zero || x.Hole {
			f |= nbd.StateZero
		}
		ext = append(ext, nbd.Extent{Length: x.Length, Flags: f})
	}
	return ext, nil
}

// Cache implements nbd.Device with a data-set prefetch control.
func (e *Device) Cache(r *nbd.Request, off, length int64) error {
	return e.dataSet(r, &disk.DataSetRequest{Action: disk.DataSetPrefetch, Offset: off, Length: length}, nil)
}
