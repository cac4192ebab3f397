package vdisk

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/vdisk-dev/vdisk/filter"
	"github.com/vdisk-dev/vdisk/filter/builtin"
	"github.com/vdisk-dev/vdisk/filter/fltmgr"
	"github.com/vdisk-dev/vdisk/filter/monitor"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/stackview"
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
		fm, err := fltmgr.Load(s.mounts)
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

// AddFilter loads a built-in filter from its spec (`NAME[:key=value,...]`)
// before the System serves: minifilters join the filter manager (attached
// to every volume), disk filters attach to every image's disk stack, or
// with on=EXPORT to one disk (`disk`) or partition (`disk@1`). It grows the
// stack sizes of the partition and volume devices above a new disk filter,
// which must not change under requests in flight: load filters after the
// images and before serving, or use AddFilterWhileServing.
func (s *System) AddFilter(specText string) (*LoadedFilter, error) {
	return s.addFilter(specText, true)
}

// AddFilterWhileServing loads a built-in filter into a System that is
// serving, as `vdisk filter attach` does. Unlike AddFilter it leaves the
// stack sizes of the partition and volume devices above a new disk filter
// alone: requests in flight read them, and an IRP built one location short
// still travels (iomgr.PassDown passes it on), only a little slower.
func (s *System) AddFilterWhileServing(specText string) (*LoadedFilter, error) {
	return s.addFilter(specText, false)
}

// addFilter loads the filter the registry builds from specText; refresh
// grows the stack sizes above a disk filter.
func (s *System) addFilter(specText string, refresh bool) (*LoadedFilter, error) {
	spec, err := builtin.ParseSpec(specText)
	if err != nil {
		return nil, err
	}
	lf := &LoadedFilter{Spec: spec}
	host := builtin.Host{Ring: s.Ring}
	if spec.Kind() == builtin.Minifilter {
		reg, err := spec.Filter().Minifilter(spec, host)
		if err != nil {
			return nil, err
		}
		fm, err := s.FilterManager()
		if err != nil {
			return nil, err
		}
		if lf.Minifilter, err = fm.Register(reg); err != nil {
			return nil, fmt.Errorf("filter %q: %w", specText, err)
		}
	} else if err := s.addDiskFilter(lf, host, refresh); err != nil {
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
	n, ok := partitionNumber(part)
	if !ok || n < 1 || n > len(img.Partitions) {
		return nil, fmt.Errorf("on=%s: %s has no partition %q (it has %d)", on, name, part, len(img.Partitions))
	}
	return []*iomgr.Device{img.Partitions[n-1]}, nil
}

// partitionNumber parses the N of an export or volume name `disk@N`: a
// decimal number written the way vdisk writes it, so that `1x`, `01` or
// `+1` name nothing rather than partition 1. The caller checks the range.
func partitionNumber(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && strconv.Itoa(n) == s
}

func (s *System) addDiskFilter(lf *LoadedFilter, host builtin.Host, refresh bool) error {
	spec := lf.Spec
	targets, err := s.diskTargets(spec.Get("on"))
	if err != nil {
		return fmt.Errorf("filter %q: %w", spec.Raw, err)
	}
	if len(targets) == 0 {
		return fmt.Errorf("filter %q: no disk to attach to", spec.Raw)
	}
	f := spec.Filter()
	if f.OneDevice != "" && len(targets) > 1 {
		return fmt.Errorf("filter %q: %s: add on=EXPORT", spec.Raw, f.OneDevice)
	}
	dispatchFor, err := f.Disk(spec, host)
	if err != nil {
		return err
	}
	// Each target gets its own dispatch state; the driver dispatches through
	// the device's context.
	lf.Disk = filter.NewDiskFilter(s.manager, s.diskFilterName(spec.Name), func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		return dev.Extension.(*filter.Extension).Context.(iomgr.DispatchFunc)(dev, irp)
	})
	for _, t := range targets {
		d, closeState, err := dispatchFor(t)
		if err == nil {
			if closeState != nil {
				lf.closers = append(lf.closers, closeState)
			}
			_, err = lf.Disk.Attach(t, d)
		}
		if err != nil {
			// Detach what attached, then close what the filter opened
			// (cow overlays), as RemoveFilter does.
			errs := []error{fmt.Errorf("filter %q: %w", spec.Raw, err), lf.Disk.Unload()}
			return errors.Join(append(errs, lf.close()...)...)
		}
	}
	if refresh {
		s.refreshStackSizes()
	}
	return nil
}

// diskFilterName names a new disk filter driver: the filter's name and a
// number no loaded filter uses (numbers are not reused while a filter holds
// them, so that `vdisk filter detach trace1` means one filter).
func (s *System) diskFilterName(base string) string {
	used := map[string]bool{}
	for _, f := range s.Filters() {
		if f.Disk != nil {
			used[f.Disk.Name] = true
		}
	}
	for n := len(used); ; n++ {
		if name := fmt.Sprintf("%s%d", base, n); !used[name] {
			return name
		}
	}
}

// refreshStackSizes recomputes the stack sizes of the partition and volume
// devices above disk stacks that grew, so their IRPs are built big enough
// (otherwise they still work, through iomgr.PassDown, but slower).
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

// ErrNoSuchFilter is returned for a filter name that no loaded filter has.
var ErrNoSuchFilter = errors.New("no such filter is loaded")

// ID names a loaded filter for FilterInfo and RemoveFilter: a minifilter's
// registered name ("monitor"), or a disk filter's driver name ("trace1").
func (f *LoadedFilter) ID() string {
	if f.Disk != nil {
		return f.Disk.Name
	}
	if f.Minifilter != nil {
		return f.Minifilter.Name
	}
	return f.Spec.Name
}

// RemoveFilter unloads the loaded filter with the given ID, or with the
// given built-in name when exactly one loaded filter has it. A minifilter
// leaves every volume at once (its instances are torn down inside the
// filter manager's frame). A disk filter leaves only if it is on top of
// every stack it is attached to: detach is last in, first out, so the error
// then wraps filter.ErrNotOnTop and names the device above it.
func (s *System) RemoveFilter(id string) error {
	var lf *LoadedFilter
	var byName []*LoadedFilter
	var ids []string
	for _, f := range s.Filters() {
		ids = append(ids, f.ID())
		if f.ID() == id {
			lf = f
		}
		if f.Spec.Name == id {
			byName = append(byName, f)
		}
	}
	if lf == nil && len(byName) == 1 {
		lf = byName[0]
	}
	if lf == nil {
		if len(byName) > 1 {
			var names []string
			for _, f := range byName {
				names = append(names, f.ID())
			}
			return fmt.Errorf("filter %q: %d filters of that name are loaded: name one of %s", id, len(byName), strings.Join(names, ", "))
		}
		if len(ids) == 0 {
			return fmt.Errorf("filter %q: %w (none is)", id, ErrNoSuchFilter)
		}
		return fmt.Errorf("filter %q: %w (loaded: %s)", id, ErrNoSuchFilter, strings.Join(ids, ", "))
	}
	if lf.Minifilter != nil {
		fm, err := s.FilterManager()
		if err != nil {
			return err
		}
		if err := fm.Unregister(lf.Minifilter.Name); err != nil {
			return fmt.Errorf("filter %s: %w", lf.ID(), err)
		}
	}
	if lf.Disk != nil {
		// Say which filter is in the way, by the names the user sees;
		// Unload would refuse too, naming only devices.
		names := stackview.NewNamer(s.Devices())
		for _, d := range lf.Disk.Devices() {
			above := d.AttachedDevice()
			if above == nil {
				continue
			}
			who := names.Name(above)
			for _, f := range s.Filters() {
				if f.Disk != nil && f.Disk.Driver == above.Driver {
					who = f.ID()
				}
			}
			return fmt.Errorf("filter %s cannot leave %s: %s is attached above it; detach %s first: %w",
				lf.ID(), names.Name(iomgr.BottomDevice(d)), who, who, filter.ErrNotOnTop)
		}
		if err := lf.Disk.Unload(); err != nil {
			return fmt.Errorf("filter %s: %w", lf.ID(), err)
		}
	}
	s.mu.Lock()
	for i, f := range s.filters {
		if f == lf {
			s.filters = append(s.filters[:i:i], s.filters[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	return errors.Join(lf.close()...)
}

// close closes what the filter opened for its devices (cow overlays).
func (f *LoadedFilter) close() []error {
	var errs []error
	for _, c := range f.closers {
		errs = append(errs, c())
	}
	f.closers = nil
	return errs
}
