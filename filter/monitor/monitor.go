package monitor

import (
	"strings"
	"time"

	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/filter"
	"github.com/vdisk-dev/vdisk/filter/fltmgr"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// Altitude is the monitor minifilter's altitude: in the activity-monitor
// range, above everything that changes requests, so it records what callers
// asked for.
const Altitude = "385100"

// DirectIO is the path recorded for I/O on a volume itself rather than a
// file: file system metadata (the volume's stream file) and raw access.
const DirectIO = "DIRECT I/O"

// operationName is "MAJOR" or "MAJOR/MINOR".
func operationName(major iomgr.MajorFunction, minor iomgr.MinorFunction) string {
	if m := iomgr.MinorName(major, minor); m != "" {
		return major.String() + "/" + m
	}
	return major.String()
}

// fastIOName is the operation a fast I/O call is recorded as, Filemon's
// FASTIO_* names, so a trace tells it from the IRP that would replace it.
func fastIOName(d *fltmgr.CallbackData) string {
	switch d.Major {
	case iomgr.MajorRead:
		return "FASTIO_READ"
	case iomgr.MajorWrite:
		return "FASTIO_WRITE"
	case iomgr.MajorQueryInformation:
		if d.Params != nil {
			switch d.Params.Parameters.QueryFile.Class {
			case iomgr.FileBasicInformationClass:
				return "FASTIO_QUERY_BASIC_INFO"
			case iomgr.FileStandardInformationClass:
				return "FASTIO_QUERY_STANDARD_INFO"
			}
		}
	}
	return "FASTIO_" + strings.TrimPrefix(d.Major.String(), "IRP_MJ_")
}

// pending is what a pre callback hands to its post callback.
type pending struct {
	start time.Time
	path  string
	off   int64
	n     int64
}

// Registration returns the monitor minifilter's registration: pre and post
// callbacks on every major function, recording into ring.
func Registration(ring *Ring) fltmgr.Registration {
	reg := fltmgr.Registration{Name: "monitor", Altitude: Altitude}
	for mj := iomgr.MajorFunction(0); mj < iomgr.MajorFunctionCount; mj++ {
		reg.Operations = append(reg.Operations, fltmgr.Operation{Major: mj,
			Pre: func(inst *fltmgr.Instance, d *fltmgr.CallbackData) (fltmgr.PreopStatus, any) {
				p := &pending{start: time.Now(), path: DirectIO}
				if fo := d.FileObject; fo != nil && fo.FileName != "" {
					p.path = fo.FileName
				}
				if d.Params != nil {
					if t := d.Params.Transfer(); t != nil {
						p.off, p.n = t.ByteOffset, int64(t.Length)
					}
				}
				return fltmgr.PreopSuccessWithCallback, p
			},
			Post: func(inst *fltmgr.Instance, d *fltmgr.CallbackData, ctx any, draining bool) fltmgr.PostopStatus {
				p := ctx.(*pending)
				op := operationName(d.Major, d.Minor)
				if d.FastIO {
					op = fastIOName(d)
				}
				ring.Add(Record{Time: p.start, Requestor: d.Requestor, Operation: op,
					Layer: "volume", Device: inst.Volume.String(), Path: p.path, Offset: p.off, Length: p.n,
					Status: d.IOStatus.Status.Name(), Duration: time.Since(p.start), FastIO: d.FastIO})
				return fltmgr.PostopFinishedProcessing
			},
		})
	}
	return reg
}

// traceContext is the per-IRP state of the disk trace.
type traceContext struct {
	ring  *Ring
	rec   Record
	start time.Time
}

func traceCompletion(_ *iomgr.Device, irp *iomgr.IRP, context any) iomgr.Status {
	if irp.PendingReturned {
		irp.MarkPending()
	}
	t := context.(*traceContext)
	t.rec.Status = irp.IOStatus.Status.Name()
	t.rec.Duration = time.Since(t.start)
	t.ring.Add(t.rec)
	return iomgr.StatusSuccess
}

// TraceDispatch returns a disk filter dispatch routine that records every
// request on the storage stack (NBD traffic and file system metadata alike)
// into ring, with byte offsets and lengths, as "DIRECT I/O".
func TraceDispatch(ring *Ring) iomgr.DispatchFunc {
	return func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		ext := dev.Extension.(*filter.Extension)
		sl := irp.CurrentStackLocation()
		t := &traceContext{ring: ring, start: time.Now()}
		t.rec = Record{Time: t.start, Requestor: irp.Requestor, Operation: operationName(sl.Major, sl.Minor),
			Layer: "disk", Device: ext.Real.String(), Path: DirectIO}
		switch sl.Major {
		case iomgr.MajorRead, iomgr.MajorWrite:
			p := sl.Transfer()
			t.rec.Offset, t.rec.Length = p.ByteOffset, int64(p.Length)
		case iomgr.MajorDeviceControl:
			if req, ok := sl.Parameters.DeviceIoControl.Input.(*disk.DataSetRequest); ok {
				t.rec.Offset, t.rec.Length = req.Offset, req.Length
				t.rec.Operation += "/" + dataSetName(req.Action)
			}
		}
		return iomgr.PassDownWith(irp, ext.Lower, nil, traceCompletion, t)
	}
}

func dataSetName(a disk.DataSetAction) string {
	switch a {
	case disk.DataSetTrim:
		return "TRIM"
	case disk.DataSetZero:
		return "ZERO"
	case disk.DataSetAllocation:
		return "ALLOCATION"
	case disk.DataSetPrefetch:
		return "PREFETCH"
	}
	return "DSM"
}
