package builtin

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/filter"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// isWriteClass reports whether a request changes the medium.
func isWriteClass(sl *iomgr.StackLocation) bool {
	switch sl.Major {
	case iomgr.MajorWrite:
		return true
	case iomgr.MajorDeviceControl:
		if req, ok := sl.Parameters.DeviceIoControl.Input.(*disk.DataSetRequest); ok {
			return req.Action == disk.DataSetTrim || req.Action == disk.DataSetZero
		}
		return sl.Parameters.DeviceIoControl.ControlCode == disk.IOCTLDiskIsWritable
	}
	return false
}

// WriteProtect is the writeprotect disk filter's dispatch: every write-class
// request fails with STATUS_MEDIA_WRITE_PROTECTED.
func WriteProtect(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
	if isWriteClass(irp.CurrentStackLocation()) {
		return irp.Complete(iomgr.StatusMediaWriteProtected, 0)
	}
	return filter.PassThrough(dev, irp)
}

// ScanDisk returns the disk-level scan dispatch: a write whose data contains
// one of sigs fails with STATUS_ACCESS_DENIED and nothing is written.
func ScanDisk(sigs [][]byte) iomgr.DispatchFunc {
	return func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		sl := irp.CurrentStackLocation()
		if sl.Major == iomgr.MajorWrite && containsAny(irp.Buffer[:sl.Transfer().Length], sigs) {
			return irp.Complete(iomgr.StatusAccessDenied, 0)
		}
		return filter.PassThrough(dev, irp)
	}
}

func containsAny(b []byte, sigs [][]byte) bool {
	for _, s := range sigs {
		if len(s) > 0 && bytes.Contains(b, s) {
			return true
		}
	}
	return false
}

// Faults injects deterministic errors and latency (the faults filter).
type Faults struct {
	ReadError  float64       // probability that a read fails
	WriteError float64       // probability that a write fails
	Latency    time.Duration // added to every read and write

	mu  sync.Mutex // guards rng
	rng *rand.Rand
}

// NewFaults parses the faults filter's parameters.
func NewFaults(spec Spec) (*Faults, error) {
	f := &Faults{}
	var err error
	parseP := func(key string) float64 {
		v := spec.Get(key)
		if v == "" || err != nil {
			return 0
		}
		p, perr := strconv.ParseFloat(v, 64)
		if perr != nil || p < 0 || p > 1 {
			err = fmt.Errorf("faults: %s=%q is not a probability between 0 and 1", key, v)
		}
		return p
	}
	f.ReadError = parseP("read-error")
	f.WriteError = parseP("write-error")
	if err != nil {
		return nil, err
	}
	if v := spec.Get("latency"); v != "" {
		if f.Latency, err = time.ParseDuration(v); err != nil || f.Latency < 0 {
			return nil, fmt.Errorf("faults: latency=%q is not a duration like 2ms", v)
		}
	}
	seed := uint64(1)
	if v := spec.Get("seed"); v != "" {
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			return nil, fmt.Errorf("faults: seed=%q is not a number", v)
		}
	}
	f.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return f, nil
}

func (f *Faults) roll(p float64) bool {
	if p <= 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rng.Float64() < p
}

// Dispatch is the faults filter's dispatch routine.
func (f *Faults) Dispatch(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
	sl := irp.CurrentStackLocation()
	switch sl.Major {
	case iomgr.MajorRead:
		if sl.Minor&iomgr.MinorComplete != 0 {
			break // giving back an MDL read's memory is not I/O
		}
		if f.Latency > 0 {
			time.Sleep(f.Latency)
		}
		if f.roll(f.ReadError) {
			return irp.Complete(iomgr.StatusDeviceDataError, 0)
		}
	case iomgr.MajorWrite:
		if f.Latency > 0 {
			time.Sleep(f.Latency)
		}
		if f.roll(f.WriteError) {
			return irp.Complete(iomgr.StatusIODeviceError, 0)
		}
	}
	return filter.PassThrough(dev, irp)
}

// refuseMDL answers an MDL read (IRP_MN_MDL) for a filter that must have
// the data in the caller's buffer, because it transforms or redirects it:
// STATUS_NOT_SUPPORTED, and the requestor reads normally. Giving back
// memory lent before the filter attached (IRP_MN_MDL|IRP_MN_COMPLETE) passes
// through to the driver that lent it.
func refuseMDL(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
	if irp.CurrentStackLocation().Minor&iomgr.MinorComplete != 0 {
		return filter.PassThrough(dev, irp)
	}
	return irp.Complete(iomgr.StatusNotSupported, 0)
}
