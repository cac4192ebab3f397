package vdisk

import (
	"fmt"
	"io"
	"strings"

	"github.com/vdisk-dev/vdisk/iomgr"
)

// DeviceInfo describes one device object for `vdisk stack`; the JSON field
// names are stable.
type DeviceInfo struct {
	Name       string   `json:"name"`
	Driver     string   `json:"driver"`
	Type       string   `json:"type"`
	Flags      string   `json:"flags"`
	StackSize  int      `json:"stack_size"` // 0 while the device is still initializing
	AttachedTo string   `json:"attached_to"`
	VPB        *VPBInfo `json:"vpb"`
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

// StackInfo is every device of a System.
type StackInfo struct {
	Devices []DeviceInfo `json:"devices"`
}

// deviceName names a device uniquely: its object name, or its driver and a
// number for unnamed (filter and file system volume) devices.
type namer struct {
	names map[*iomgr.Device]string
	count map[string]int
}

func (n *namer) name(d *iomgr.Device) string {
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

// deviceNamer names every device of the System the way Stack does, so that
// other descriptions (the filter list) use the same names.
func (s *System) deviceNamer() (*namer, []*iomgr.Device) {
	n := &namer{names: map[*iomgr.Device]string{}, count: map[string]int{}}
	devs := s.Manager.Devices()
	for _, d := range devs {
		n.name(d)
	}
	return n, devs
}

// Stack describes every device object, in driver load order.
func (s *System) Stack() StackInfo {
	n, devs := s.deviceNamer()
	info := StackInfo{Devices: []DeviceInfo{}}
	for _, d := range devs {
		flags := d.Flags()
		di := DeviceInfo{Name: n.name(d), Driver: d.Driver.Name, Type: d.Type.String(), Flags: flags.String(),
			AttachedTo: n.name(d.AttachedTo())}
		// A device still initializing belongs to its driver, which may be
		// attaching it (setting its stack size) right now; clearing the
		// flag publishes its fields. Until then its stack size shows as 0.
		if flags&iomgr.DeviceInitializing == 0 {
			di.StackSize = d.StackSize
		}
		if v := d.VPB(); v != nil {
			snap := v.Snapshot()
			di.VPB = &VPBInfo{Flags: snap.Flags.String(), Mounted: v.Mounted(), VolumeDevice: n.name(snap.Device),
				ReferenceCount: snap.ReferenceCount, Serial: fmt.Sprintf("%04X-%04X", snap.SerialNumber>>16, snap.SerialNumber&0xFFFF),
				Label: snap.Label}
		}
		info.Devices = append(info.Devices, di)
	}
	return info
}

// WriteText prints the stacks as indented trees: each bottom device, the
// devices attached above it, and mounted volumes under their VPB.
func (si StackInfo) WriteText(w io.Writer) {
	above := map[string][]DeviceInfo{}
	for _, d := range si.Devices {
		if d.AttachedTo != "" {
			above[d.AttachedTo] = append(above[d.AttachedTo], d)
		}
	}
	var walk func(d DeviceInfo, depth int)
	walk = func(d DeviceInfo, depth int) {
		fmt.Fprintf(w, "%s%s  [%s, stack %d]\n", strings.Repeat("  ", depth), d.Name, d.Driver, d.StackSize)
		if d.VPB != nil && d.VPB.Mounted {
			fmt.Fprintf(w, "%s  VPB %s serial %s label %q refs %d → %s\n", strings.Repeat("  ", depth), d.VPB.Flags,
				d.VPB.Serial, d.VPB.Label, d.VPB.ReferenceCount, d.VPB.VolumeDevice)
		}
		for _, a := range above[d.Name] {
			walk(a, depth+1)
		}
	}
	for _, d := range si.Devices {
		if d.AttachedTo == "" {
			walk(d, 0)
		}
	}
}

// WriteDot prints the stacks as a Graphviz digraph: attachment edges point
// down, VPB edges from a storage volume to its mounted file system volume.
func (si StackInfo) WriteDot(w io.Writer) {
	esc := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) }
	q := func(s string) string { return `"` + esc(s) + `"` }
	fmt.Fprintln(w, "digraph vdisk {")
	fmt.Fprintln(w, "  rankdir=BT;")
	fmt.Fprintln(w, "  node [shape=box, fontname=monospace];")
	for _, d := range si.Devices {
		fmt.Fprintf(w, "  %s [label=\"%s\\n%s\"];\n", q(d.Name), esc(d.Name), esc(d.Driver))
	}
	for _, d := range si.Devices {
		if d.AttachedTo != "" {
			fmt.Fprintf(w, "  %s -> %s [label=attached];\n", q(d.Name), q(d.AttachedTo))
		}
		if d.VPB != nil && d.VPB.VolumeDevice != "" {
			fmt.Fprintf(w, "  %s -> %s [style=dashed, label=VPB];\n", q(d.Name), q(d.VPB.VolumeDevice))
		}
	}
	fmt.Fprintln(w, "}")
}
