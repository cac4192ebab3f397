package stackview

import (
	"fmt"
	"io"
	"strings"
)

// WriteText prints the stacks as indented trees: each bottom device, the
// devices attached above it, and mounted volumes under their VPB.
func (si Info) WriteText(w io.Writer) {
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
