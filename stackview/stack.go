package stackview

import (
	"fmt"

	"github.com/vdisk-dev/vdisk/filter/fltmgr"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/partition"
	"github.com/vdisk-dev/vdisk/volume"
)

// DeviceInfo describes one device object; the JSON field names are stable
// (`vdisk stack --json`, the control API's GET /v1/stack).
type DeviceInfo struct {
	Name       string   `json:"name"`
	Driver     string   `json:"driver"`
	Type       string   `json:"type"`
	Flags      string   `json:"flags"`
	StackSize  int      `json:"stack_size"` // 0 while the device is still initializing
	AttachedTo string   `json:"attached_to"`
	VPB        *VPBInfo `json:"vpb"`
	// Target is the device at the bottom of the next stack down, to whose
	// top the device's driver sends what it is asked: a partition's disk,
	// a volume's partition (or disk). "" for the others.
	Target string `json:"target,omitempty"`
	// Minifilters are the minifilter instances on a filter manager frame,
	// highest altitude first (the order their pre-operation callbacks run).
	Minifilters []MinifilterInfo `json:"minifilters,omitempty"`
}

// MinifilterInfo is a minifilter instance on a frame.
type MinifilterInfo struct {
	Name     string `json:"name"`
	Altitude string `json:"altitude"`
}

// VPBInfo describes a VPB.
type VPBInfo struct {
	Flags          string `json:"flags"`
	Mounted        bool   `json:"mounted"`
	VolumeDevice   string `json:"volume_device"`
	ReferenceCount int    `json:"reference_count"`
	Serial         string `json:"serial"`
	Label          string `json:"label"`
}

// Info is every device of a System: the model every view draws.
type Info struct {
	Devices []DeviceInfo `json:"devices"`
}

// Namer names devices uniquely: by their object name, or by their driver
// and a number for unnamed (filter and file system volume) devices. A
// Namer made from a System's devices gives every description the names
// Collect gives.
type Namer struct {
	names map[*iomgr.Device]string
	count map[string]int
}

// Name is the device's name ("" for nil).
func (n *Namer) Name(d *iomgr.Device) string {
	if d == nil {
		return ""
	}
	if s, ok := n.names[d]; ok {
		return s
	}
	s := d.Name
	if s == "" {
		drv := d.Driver.Name
		n.count[drv]++
		s = fmt.Sprintf("%s#%d", drv, n.count[drv])
	}
	n.names[d] = s
	return s
}

// NewNamer names devs, in their order (the numbers of unnamed devices
// follow it), and then any other device it is asked about.
func NewNamer(devs []*iomgr.Device) *Namer {
	n := &Namer{names: map[*iomgr.Device]string{}, count: map[string]int{}}
	for _, d := range devs {
		n.Name(d)
	}
	return n
}

// Collect describes devs, a System's device objects in driver load order
// (System.Devices); fm, when not nil, is the filter manager whose frames'
// minifilter instances it lists.
func Collect(devs []*iomgr.Device, fm *fltmgr.Manager) Info {
	n := NewNamer(devs)
	info := Info{Devices: []DeviceInfo{}}
	for _, d := range devs {
		flags := d.Flags()
		di := DeviceInfo{Name: n.Name(d), Driver: d.Driver.Name, Type: d.Type.String(), Flags: flags.String(),
			AttachedTo: n.Name(d.AttachedTo())}
		// A device still initializing belongs to its driver, which may be
		// attaching it (setting its stack size) right now; clearing the
		// flag publishes its fields. Until then its stack size shows as 0.
		// The same holds for its extension.
		if flags&iomgr.DeviceInitializing == 0 {
			di.StackSize = d.StackSize
			switch ext := d.Extension.(type) {
			case *partition.Extension:
				di.Target = n.Name(ext.Disk)
			case *volume.Extension:
				di.Target = n.Name(ext.Target)
			}
		}
		if v := d.VPB(); v != nil {
			snap := v.Snapshot()
			di.VPB = &VPBInfo{Flags: snap.Flags.String(), Mounted: v.Mounted(), VolumeDevice: n.Name(snap.Device),
				ReferenceCount: snap.ReferenceCount, Serial: fmt.Sprintf("%04X-%04X", snap.SerialNumber>>16, snap.SerialNumber&0xFFFF),
				Label: snap.Label}
		}
		if fm != nil {
			for _, inst := range fm.FrameInstances(d) {
				di.Minifilters = append(di.Minifilters, MinifilterInfo{Name: inst.Filter.Name, Altitude: inst.Filter.Altitude()})
			}
		}
		info.Devices = append(info.Devices, di)
	}
	return info
}
