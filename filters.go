package vdisk

import (
	"fmt"
	"strings"

	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/filter"
	"github.com/vdisk-dev/vdisk/filter/builtin"
	"github.com/vdisk-dev/vdisk/filter/fltmgr"
	"github.com/vdisk-dev/vdisk/filter/monitor"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// DefaultRingSize is the number of monitor records a System keeps.
const DefaultRingSize = 65536

// LoadedFilter is a built-in filter loaded into a System.
type LoadedFilter struct {
	Spec builtin.Spec
	// Disk is the disk filter driver, for disk-level filters.
	Disk *filter.DiskFilter
	// Minifilter is the registered minifilter, for minifilters.
	Minifilter *fltmgr.Filter
	closers    []func() error
}

// Ring returns the System's monitor ring, creating it on first use.
func (s *System) Ring() *monitor.Ring {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ring == nil {
		n := s.opts.RingSize
		if n <= 0 {
			n = DefaultRingSize
		}
		s.ring = monitor.NewRing(n)
	}
	return s.ring
}

// FilterManager returns the filter manager, loading it on first use.
func (s *System) FilterManager() (*fltmgr.Manager, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fltmgr == nil {
		fm, err := fltmgr.Load(s.Mounts)
		if err != nil {
			return nil, err
		}
		s.fltmgr = fm
	}
	return s.fltmgr, nil
}

// Filters returns the loaded built-in filters in load order.
func (s *System) Filters() []*LoadedFilter {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*LoadedFilter(nil), s.filters...)
}

// AddFilter loads a built-in filter from its spec (`NAME[:key=value,...]`):
// minifilters join the filter manager (attached to every volume), disk
// filters attach to every image's disk stack, or with on=EXPORT to one disk
// (`disk`) or partition (`disk@1`). Load filters after the images and before
// serving: attaching beneath existing partition and volume devices grows
// their stack sizes, which must not change under requests in flight.
func (s *System) AddFilter(specText string) (*LoadedFilter, error) {
	spec, err := builtin.ParseSpec(specText)
	if err != nil {
		return nil, err
	}
	lf := &LoadedFilter{Spec: spec}
	if spec.Kind() == builtin.Minifilter {
		var reg fltmgr.Registration
		switch spec.Name {
		case "monitor":
			reg = monitor.Registration(s.Ring())
		case "readonly":
			reg = builtin.ReadOnly()
		case "scan":
			sigs := builtin.ParseSigs(spec)
			if len(sigs) == 0 {
				return nil, fmt.Errorf("filter %q: give at least one sig=STRING", specText)
			}
			reg = builtin.Scan(sigs)
		}
		fm, err := s.FilterManager()
		if err != nil {
			return nil, err
		}
		if lf.Minifilter, err = fm.Register(reg); err != nil {
			return nil, fmt.Errorf("filter %q: %w", specText, err)
		}
	} else if err := s.addDiskFilter(lf); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.filters = append(s.filters, lf)
	s.mu.Unlock()
	return lf, nil
}

// diskTargets returns the storage devices a disk filter attaches to.
func (s *System) diskTargets(on string) ([]*iomgr.Device, error) {
	if on == "" {
		var out []*iomgr.Device
		for _, img := range s.Images() {
			out = append(out, img.Disk)
		}
		return out, nil
	}
	name, part, hasPart := strings.Cut(on, "@")
	img := s.Image(name)
	if img == nil {
		return nil, fmt.Errorf("on=%s: no image named %q", on, name)
	}
	if !hasPart {
		return []*iomgr.Device{img.Disk}, nil
	}
	var n int
	if _, err := fmt.Sscanf(part, "%d", &n); err != nil || n < 1 || n > len(img.Partitions) {
		return nil, fmt.Errorf("on=%s: %s has no partition %q (it has %d)", on, name, part, len(img.Partitions))
	}
	return []*iomgr.Device{img.Partitions[n-1]}, nil
}

func (s *System) addDiskFilter(lf *LoadedFilter) error {
	spec := lf.Spec
	targets, err := s.diskTargets(spec.Get("on"))
	if err != nil {
		return fmt.Errorf("filter %q: %w", spec.Raw, err)
	}
	if len(targets) == 0 {
		return fmt.Errorf("filter %q: no disk to attach to", spec.Raw)
	}
	if (spec.Name == "cow") && len(targets) > 1 {
		return fmt.Errorf("filter %q: one overlay serves one device: add on=EXPORT", spec.Raw)
	}
	name := fmt.Sprintf("%s%d", spec.Name, len(s.Filters()))
	var dispatchFor func(target *iomgr.Device) (iomgr.DispatchFunc, error)
	switch spec.Name {
	case "trace":
		d := monitor.TraceDispatch(s.Ring())
		dispatchFor = func(*iomgr.Device) (iomgr.DispatchFunc, error) { return d, nil }
	case "writeprotect":
		dispatchFor = func(*iomgr.Device) (iomgr.DispatchFunc, error) { return builtin.WriteProtect, nil }
	case "passthrough":
		// Does nothing but pass requests on: the cost of a layer, for benchmarks.
		dispatchFor = func(*iomgr.Device) (iomgr.DispatchFunc, error) { return filter.PassThrough, nil }
	case "scan":
		sigs := builtin.ParseSigs(spec)
		if len(sigs) == 0 {
			return fmt.Errorf("filter %q: give at least one sig=STRING", spec.Raw)
		}
		d := builtin.ScanDisk(sigs)
		dispatchFor = func(*iomgr.Device) (iomgr.DispatchFunc, error) { return d, nil }
	case "faults":
		f, err := builtin.NewFaults(spec)
		if err != nil {
			return err
		}
		dispatchFor = func(*iomgr.Device) (iomgr.DispatchFunc, error) { return f.Dispatch, nil }
	case "cow":
		overlay := spec.Get("overlay")
		if overlay == "" {
			return fmt.Errorf("filter %q: give overlay=FILE", spec.Raw)
		}
		dispatchFor = func(t *iomgr.Device) (iomgr.DispatchFunc, error) {
			c, err := builtin.OpenCOW(overlay, deviceSize(t), t.SectorSize)
			if err != nil {
				return nil, err
			}
			lf.closers = append(lf.closers, c.Close)
			return c.Dispatch, nil
		}
	case "crypt":
		key := spec.Get("key-file")
		if key == "" {
			return fmt.Errorf("filter %q: give key-file=FILE", spec.Raw)
		}
		dispatchFor = func(t *iomgr.Device) (iomgr.DispatchFunc, error) {
			c, err := builtin.OpenCrypt(key, t.SectorSize)
			if err != nil {
				return nil, err
			}
			return c.Dispatch, nil
		}
	default:
		return fmt.Errorf("filter %q: not a disk filter", spec.Raw)
	}
	// Each target gets its own dispatch state; the driver dispatches through
	// the device's context.
	lf.Disk = filter.NewDiskFilter(s.Manager, name, func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		return dev.Extension.(*filter.Extension).Context.(iomgr.DispatchFunc)(dev, irp)
	})
	for _, t := range targets {
		d, err := dispatchFor(t)
		if err != nil {
			_ = lf.Disk.Unload()
			return fmt.Errorf("filter %q: %w", spec.Raw, err)
		}
		if _, err := lf.Disk.Attach(t, d); err != nil {
			_ = lf.Disk.Unload()
			return fmt.Errorf("filter %q: %w", spec.Raw, err)
		}
	}
	s.refreshStackSizes()
	return nil
}

// deviceSize is the length of a disk or partition device.
func deviceSize(dev *iomgr.Device) int64 {
	var n int64
	io := &iomgr.BlockIO{Device: dev, Requestor: "vdisk", Here: true}
	if err := io.Control(disk.IOCTLDiskGetLengthInfo, nil, &n); err != nil {
		return 0
	}
	return n
}

// refreshStackSizes recomputes the stack sizes of the partition and volume
// devices above disk stacks that grew, so their IRPs are built big enough
// (otherwise they still work, through iomgr.ForwardDeeper, but slower).
func (s *System) refreshStackSizes() {
	grow := func(bottom *iomgr.Device, below *iomgr.Device) {
		bottom.StackSize = iomgr.GetAttachedDevice(below).StackSize + 1
		for d := bottom.AttachedDevice(); d != nil; d = d.AttachedDevice() {
			d.StackSize = d.AttachedTo().StackSize + 1
		}
	}
	for _, img := range s.Images() {
		for _, p := range img.Partitions {
			grow(p, img.Disk)
		}
		for i, v := range img.Volumes {
			if len(img.Partitions) > 0 {
				grow(v, img.Partitions[i])
			} else {
				grow(v, img.Disk)
			}
			if fsVol, ok := v.VPB().Device(); ok {
				grow(fsVol, v)
			}
		}
	}
}
