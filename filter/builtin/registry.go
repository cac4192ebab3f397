package builtin

import (
	"fmt"
	"sort"
	"strings"

	"github.com/vdisk-dev/vdisk/filter/fltmgr"
	"github.com/vdisk-dev/vdisk/filter/monitor"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// Kind says where a built-in filter attaches.
type Kind int

// The kinds of built-in filter.
const (
	Minifilter Kind = iota // on file system volumes, through the filter manager
	DiskLevel              // on disk and partition stacks, beneath the file systems
)

// String is the kind as `vdisk filter list` and the control API name it.
func (k Kind) String() string {
	if k == Minifilter {
		return "minifilter"
	}
	return "disk"
}

// Host is what a filter's constructor may use of the System loading it.
type Host struct {
	// Ring returns the System's monitor ring, creating it on first use.
	Ring func() *monitor.Ring
}

// DeviceDispatch builds a disk filter's dispatch routine for one device it
// attaches to (the filter's state may depend on the device: its size, its
// sectors), and what closes that state when the filter leaves (nil when
// there is nothing to close).
type DeviceDispatch func(target *iomgr.Device) (dispatch iomgr.DispatchFunc, close func() error, err error)

// Filter is a built-in filter's entry in the registry: its name, kind,
// parameters, help text and constructors. Each filter registers its own in
// the file that implements it, as an nbdkit filter does; the spec parser,
// the System's loader, the CLI's help and completion, and the control API
// all read the registry.
type Filter struct {
	Name string
	// Kind is where the filter attaches unless its spec says otherwise
	// (a minifilter with a Disk constructor attaches at disk level when
	// given on=EXPORT).
	Kind Kind
	// Params are the keys its spec takes (`NAME:key=value,...`).
	Params []string
	// Help says in a few words what it does.
	Help string
	// Minifilter builds the filter manager registration; nil for a filter
	// that only attaches at disk level.
	Minifilter func(spec Spec, host Host) (fltmgr.Registration, error)
	// Disk builds the per-device dispatch of a disk-level filter; nil for a
	// filter that is only a minifilter.
	Disk func(spec Spec, host Host) (DeviceDispatch, error)
	// OneDevice, when set, says why the filter attaches to one device
	// only, so that its spec must narrow it with on=EXPORT.
	OneDevice string
}

// registry holds the built-in filters in registration order.
var registry []*Filter

// register adds a filter to the registry; each filter's file calls it from
// init. A second filter of one name is a programming error.
func register(f *Filter) {
	if Lookup(f.Name) != nil {
		panic(fmt.Sprintf("builtin: filter %q registered twice", f.Name))
	}
	if f.Kind == Minifilter && f.Minifilter == nil || f.Kind == DiskLevel && f.Disk == nil {
		panic(fmt.Sprintf("builtin: filter %q has no constructor for its kind", f.Name))
	}
	registry = append(registry, f)
}

// Filters returns the built-in filters: minifilters first, then disk
// filters, each kind in name order.
func Filters() []*Filter {
	out := append([]*Filter(nil), registry...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Lookup returns the built-in filter named name, or nil.
func Lookup(name string) *Filter {
	for _, f := range registry {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// Names returns the built-in filter names, sorted.
func Names() []string {
	var out []string
	for _, f := range registry {
		out = append(out, f.Name)
	}
	sort.Strings(out)
	return out
}

// NamesOfKind lists the names of the filters of one kind, in the order of
// Filters, separated by ", ": for help texts.
func NamesOfKind(k Kind) string {
	var out []string
	for _, f := range Filters() {
		if f.Kind == k {
			out = append(out, f.Name)
		}
	}
	return strings.Join(out, ", ")
}

// everyDevice is the DeviceDispatch of a filter whose dispatch routine is
// the same on every device and holds nothing to close.
func everyDevice(d iomgr.DispatchFunc) DeviceDispatch {
	return func(*iomgr.Device) (iomgr.DispatchFunc, func() error, error) { return d, nil, nil }
}
