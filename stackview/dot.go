package stackview

import (
	"fmt"
	"io"
	"strings"
)

// WriteDot prints the stacks as a Graphviz digraph: attachment edges point
// down, VPB edges from a storage volume to its mounted file system volume.
func (si Info) WriteDot(w io.Writer) {
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
