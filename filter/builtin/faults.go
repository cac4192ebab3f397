package builtin

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/vdisk-dev/vdisk/filter"
	"github.com/vdisk-dev/vdisk/iomgr"
)

func init() {
	register(&Filter{
		Name:   "faults",
		Kind:   DiskLevel,
		Params: []string{"on", "read-error", "write-error", "latency", "seed"},
		Help:   "fails reads and writes with the given probabilities, deterministically (seed), and adds latency",
		Disk: func(spec Spec, _ Host) (DeviceDispatch, error) {
			f, err := newFaults(spec)
			if err != nil {
				return nil, err
			}
			return everyDevice(f.dispatch), nil
		},
	})
}

// faults injects deterministic errors and latency (the faults filter).
type faults struct {
	readError  float64       // probability that a read fails
	writeError float64       // probability that a write fails
	latency    time.Duration // added to every read and write

	mu  sync.Mutex // guards rng
	rng *rand.Rand
}

// newFaults parses the faults filter's parameters.
func newFaults(spec Spec) (*faults, error) {
	f := &faults{}
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
	f.readError = parseP("read-error")
	f.writeError = parseP("write-error")
	if err != nil {
		return nil, err
	}
	if v := spec.Get("latency"); v != "" {
		if f.latency, err = time.ParseDuration(v); err != nil || f.latency < 0 {
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

func (f *faults) roll(p float64) bool {
	if p <= 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rng.Float64() < p
}

// dispatch is the faults filter's dispatch routine.
func (f *faults) dispatch(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
	sl := irp.CurrentStackLocation()
	switch sl.Major {
	case iomgr.MajorRead:
		if sl.Minor&iomgr.MinorComplete != 0 {
			break // giving back an MDL read's memory is not I/O
		}
		if f.latency > 0 {
			time.Sleep(f.latency)
		}
		if f.roll(f.readError) {
			return irp.Complete(iomgr.StatusDeviceDataError, 0)
		}
	case iomgr.MajorWrite:
		if f.latency > 0 {
			time.Sleep(f.latency)
		}
		if f.roll(f.writeError) {
			return irp.Complete(iomgr.StatusIODeviceError, 0)
		}
	}
	return filter.PassThrough(dev, irp)
}
