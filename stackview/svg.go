package stackview

import (
	"fmt"
	"html"
	"io"
	"strings"
)

// The drawing of WriteSVG (and WriteHTML, and the web view, which shows
// the same SVG): every stack is a column of device boxes, bottom device at
// the bottom, each attached device above the one it is attached to. The
// stacks are arranged as the requests travel between them: a disk's stack
// at the bottom, the stacks of its partitions above it, each partition's
// volume above that, and a mounted volume's file system volume (with the
// filter manager's frame and its minifilters) on top, joined by "sends to"
// arrows (DeviceInfo.Target) and dashed VPB links. Stacks that nothing
// sends to and that send nowhere (file system control devices) stand
// beside them. Colours are presentation attributes, not CSS, so that the
// drawing shows the same inside a page whose Content-Security-Policy
// refuses inline styles.

// Kinds of device, as the drawing colours them (the SVG's data-kind).
const (
	KindDisk      = "disk"
	KindPartition = "partition"
	KindVolume    = "volume"
	KindFSVolume  = "fs-volume"
	KindFrame     = "fltmgr-frame"
	KindFilter    = "filter"
	KindControl   = "control"
)

// FltMgrDriver is the filter manager's driver: its devices are frames.
const FltMgrDriver = `\FileSystem\Filters\FltMgr`

// kindColours are each kind's fill and stroke.
var kindColours = map[string][2]string{
	KindDisk:      {"#dbe9f6", "#3b6ea5"},
	KindPartition: {"#e1f0dc", "#4f8a3c"},
	KindVolume:    {"#fff2c6", "#a07c00"},
	KindFSVolume:  {"#f8dcdc", "#b03a2e"},
	KindFrame:     {"#ffe6cc", "#c06400"},
	KindFilter:    {"#ebdcf8", "#7a4fb0"},
	KindControl:   {"#ececec", "#666666"},
}

// Sizes of the drawing, in pixels.
const (
	boxW      = 270 // a device box
	lineH     = 15  // a line of text in a box
	boxPad    = 7   // inside a box, above the first line
	boxGap    = 6   // between boxes of a stack
	stackPad  = 8   // between a stack's frame and its boxes
	columnW   = 330 // a column: a stack and room for its VPB link
	tierGap   = 46  // between a tier of stacks and the next
	margin    = 20
	titleH    = 28
	legendH   = 64
	charW11   = 6.7                   // width of an 11px monospace character
	maxNameCh = (boxW - 16) * 10 / 73 // characters of a name that fit (12px)
	maxLineCh = (boxW - 16) * 10 / 67 // characters of a line that fit (11px)
)

// layoutDevice is a device box.
type layoutDevice struct {
	DeviceInfo
	kind  string
	lines []string // below the name
	x, y  float64  // top left
	h     float64
}

// layoutStack is one stack: a bottom device and those attached above it.
type layoutStack struct {
	devs     []*layoutDevice // bottom first
	parent   *layoutStack
	children []*layoutStack
	tier     int
	width    int     // in columns: the stack's or its children's
	col      float64 // the column of its centre
	x, y, h  float64 // its frame: top left, height
}

// layout is the whole drawing.
type layout struct {
	stacks  []*layoutStack
	byName  map[string]*layoutDevice
	stackOf map[string]*layoutStack
	w, h    float64
}

// deviceLines are what a box says under the device's name.
func deviceLines(d DeviceInfo) []string {
	lines := []string{fmt.Sprintf("%s · stack %d", d.Driver, d.StackSize)}
	if d.VPB != nil {
		if d.VPB.Mounted {
			lines = append(lines, fmt.Sprintf("VPB mounted %q refs %d", d.VPB.Label, d.VPB.ReferenceCount))
		} else {
			lines = append(lines, "VPB not mounted")
		}
	}
	for _, m := range d.Minifilters {
		lines = append(lines, fmt.Sprintf("▸ minifilter %s @ %s", m.Name, m.Altitude))
	}
	return lines
}

// newLayout arranges si's devices.
func newLayout(si Info) *layout {
	l := &layout{byName: map[string]*layoutDevice{}, stackOf: map[string]*layoutStack{}}
	above := map[string][]string{}
	for _, d := range si.Devices {
		ld := &layoutDevice{DeviceInfo: d, lines: deviceLines(d)}
		ld.h = float64(boxPad*2 + lineH*(1+len(ld.lines)))
		l.byName[d.Name] = ld
		if d.AttachedTo != "" {
			above[d.AttachedTo] = append(above[d.AttachedTo], d.Name)
		}
	}
	// The stacks, in the order of their bottom devices (driver load
	// order: disks, partitions, volumes, file systems).
	for _, d := range si.Devices {
		if d.AttachedTo != "" && l.byName[d.AttachedTo] != nil {
			continue
		}
		s := &layoutStack{}
		var walk func(name string)
		walk = func(name string) {
			if l.stackOf[name] != nil {
				return // a cycle would be a bug in the model; draw each device once
			}
			s.devs = append(s.devs, l.byName[name])
			l.stackOf[name] = s
			for _, a := range above[name] {
				walk(a)
			}
		}
		walk(d.Name)
		l.stacks = append(l.stacks, s)
	}
	// How stacks sit on each other: a partition's and a volume's on the
	// stack they send to, a file system volume's on the volume whose VPB
	// names it.
	fsVolume := map[string]bool{}
	for _, s := range l.stacks {
		b := s.devs[0]
		if b.Target != "" && l.stackOf[b.Target] != nil && l.stackOf[b.Target] != s {
			s.parent = l.stackOf[b.Target]
		}
		for _, d := range s.devs {
			if d.VPB != nil && d.VPB.Mounted && d.VPB.VolumeDevice != "" {
				if fs := l.stackOf[d.VPB.VolumeDevice]; fs != nil && fs != s && fs.parent == nil {
					fs.parent = s
					fsVolume[d.VPB.VolumeDevice] = true
				}
			}
		}
	}
	for _, s := range l.stacks {
		if s.parent != nil {
			s.parent.children = append(s.parent.children, s)
		}
	}
	for _, s := range l.stacks {
		for i, d := range s.devs {
			d.kind = deviceKind(d.DeviceInfo, i == 0, len(s.children) > 0, fsVolume[d.Name])
		}
	}
	// Columns: a tree's width is the sum of its children's, and a stack
	// stands centred over its children.
	var width func(s *layoutStack) int
	width = func(s *layoutStack) int {
		s.width = 0
		for _, c := range s.children {
			c.tier = s.tier + 1
			s.width += width(c)
		}
		s.width = max(s.width, 1)
		return s.width
	}
	var place func(s *layoutStack, first int)
	place = func(s *layoutStack, first int) {
		s.col = float64(first) + float64(s.width-1)/2
		for _, c := range s.children {
			place(c, first)
			first += c.width
		}
	}
	cols, tiers := 0, 0
	var tierH []float64
	var measure func(s *layoutStack)
	measure = func(s *layoutStack) {
		s.h = 2 * stackPad
		for i, d := range s.devs {
			if i > 0 {
				s.h += boxGap
			}
			s.h += d.h
		}
		for len(tierH) <= s.tier {
			tierH = append(tierH, 0)
		}
		tierH[s.tier] = max(tierH[s.tier], s.h)
		tiers = max(tiers, s.tier+1)
		for _, c := range s.children {
			measure(c)
		}
	}
	for _, s := range l.stacks {
		if s.parent != nil {
			continue
		}
		width(s)
		place(s, cols)
		cols += s.width
		measure(s)
	}
	// Tier 0 at the bottom; each stack stands on its tier's base line.
	l.w = float64(2*margin + cols*columnW)
	l.h = float64(2*margin + titleH + legendH)
	for _, h := range tierH {
		l.h += h
	}
	l.h += float64(max(tiers-1, 0) * tierGap)
	base := make([]float64, tiers)
	y := l.h - margin - legendH
	for t := 0; t < tiers; t++ {
		base[t] = y
		y -= tierH[t] + tierGap
	}
	for _, s := range l.stacks {
		s.x = margin + s.col*columnW + (columnW-boxW-2*stackPad)/2 - 12
		s.y = base[s.tier] - s.h
		y := base[s.tier] - stackPad
		for _, d := range s.devs {
			y -= d.h
			d.x, d.y = s.x+stackPad, y
			y -= boxGap
		}
	}
	return l
}

// deviceKind chooses how a device is coloured.
func deviceKind(d DeviceInfo, bottom, sentTo, fsVolume bool) string {
	switch {
	case d.Driver == FltMgrDriver:
		return KindFrame
	case !bottom:
		return KindFilter
	case fsVolume:
		return KindFSVolume
	case d.VPB != nil:
		return KindVolume
	case d.Target != "":
		return KindPartition
	case sentTo:
		return KindDisk
	}
	return KindControl
}

// clip shortens s to n characters, keeping its end (the distinctive part
// of a device name), with an ellipsis.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return "…" + string(r[len(r)-n+1:])
}

// WriteSVG draws the stacks as a standalone SVG document (see the comment
// at the top of this file). Every device is a <g class="device"> with
// data-name, data-driver, data-kind, data-stack (its stack's bottom
// device), data-attached-to and data-index (its place in the stack, 0 at
// the bottom); every link a <path> of class target-link or vpb-link with
// data-from and data-to.
func (si Info) WriteSVG(w io.Writer) error {
	l := newLayout(si)
	var b strings.Builder
	esc := html.EscapeString
	f := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	f(`<svg xmlns="http://www.w3.org/2000/svg" class="vdisk-stacks" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="DejaVu Sans Mono, monospace">`+"\n", l.w, l.h, l.w, l.h)
	f(`<defs><marker id="vdisk-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>` + "\n")
	f(`<rect x="0" y="0" width="%.0f" height="%.0f" fill="#ffffff"/>`+"\n", l.w, l.h)
	f(`<text x="%d" y="%d" font-size="15" font-weight="bold" fill="#222">Device stacks, bottom-up (%d devices, %d stacks)</text>`+"\n", margin, margin+14, len(si.Devices), len(l.stacks))
	for _, s := range l.stacks {
		f(`<g class="stack" data-bottom="%s">`, esc(s.devs[0].Name))
		f(`<rect x="%.1f" y="%.1f" width="%d" height="%.1f" rx="8" fill="#f7f7f9" stroke="#c8c8d0" stroke-dasharray="3 3"/>`, s.x, s.y, boxW+2*stackPad, s.h)
		for i, d := range s.devs {
			c := kindColours[d.kind]
			f("\n"+`<g class="device" data-name="%s" data-driver="%s" data-kind="%s" data-stack="%s" data-attached-to="%s" data-index="%d">`,
				esc(d.Name), esc(d.Driver), d.kind, esc(s.devs[0].Name), esc(d.AttachedTo), i)
			f(`<title>%s</title>`, esc(d.Name+"\n"+d.Driver+"\n"+d.Type+" "+d.Flags))
			f(`<rect x="%.1f" y="%.1f" width="%d" height="%.1f" rx="4" fill="%s" stroke="%s" stroke-width="1.5"/>`, d.x, d.y, boxW, d.h, c[0], c[1])
			ty := d.y + boxPad + 12
			f(`<text x="%.1f" y="%.1f" font-size="12" font-weight="bold" fill="#111">%s</text>`, d.x+8, ty, esc(clip(d.Name, maxNameCh)))
			for _, line := range d.lines {
				ty += lineH
				f(`<text x="%.1f" y="%.1f" font-size="11" fill="#333">%s</text>`, d.x+8, ty, esc(clip(line, maxLineCh)))
			}
			f(`</g>`)
		}
		f("</g>\n")
	}
	// Links: from a stack's bottom device to the top of the stack it
	// sends to; from a volume to its file system volume, around the
	// right of the column.
	for _, s := range l.stacks {
		b0 := s.devs[0]
		if s.parent != nil && b0.Target != "" {
			p := s.parent
			top := p.devs[len(p.devs)-1]
			x1, y1 := b0.x+boxW/2, s.y+s.h
			x2, y2 := top.x+boxW/2, p.y
			f(`<path class="target-link" data-from="%s" data-to="%s" d="M%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f" fill="none" stroke="#555" stroke-width="1.3" marker-end="url(#vdisk-arrow)"/>`+"\n",
				esc(b0.Name), esc(b0.Target), x1, y1, x1, (y1+y2)/2, x2, (y1+y2)/2, x2, y2)
		}
		for _, d := range s.devs {
			if d.VPB == nil || !d.VPB.Mounted {
				continue
			}
			fs := l.byName[d.VPB.VolumeDevice]
			if fs == nil {
				continue
			}
			x1, y1 := d.x+boxW, d.y+d.h/2
			x2, y2 := fs.x+boxW, fs.y+fs.h/2
			bulge := max(x1, x2) + 32
			f(`<path class="vpb-link" data-from="%s" data-to="%s" d="M%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f" fill="none" stroke="#b03a2e" stroke-width="1.5" stroke-dasharray="6 4" marker-end="url(#vdisk-arrow)"/>`,
				esc(d.Name), esc(fs.Name), x1, y1, bulge, y1, bulge, y2, x2, y2)
			f(`<text x="%.1f" y="%.1f" font-size="11" fill="#b03a2e">VPB</text>`+"\n", bulge-8, (y1+y2)/2)
		}
	}
	// The legend.
	lx, ly := float64(margin), l.h-margin-legendH+28
	for _, k := range []string{KindDisk, KindPartition, KindVolume, KindFSVolume, KindFrame, KindFilter, KindControl} {
		c := kindColours[k]
		f(`<rect x="%.1f" y="%.1f" width="14" height="14" rx="3" fill="%s" stroke="%s"/><text x="%.1f" y="%.1f" font-size="11" fill="#333">%s</text>`, lx, ly, c[0], c[1], lx+19, ly+11, k)
		lx += 19 + float64(len(k))*charW11 + 22
	}
	f(`<path d="M%.1f,%.1f h34" stroke="#555" stroke-width="1.3" marker-end="url(#vdisk-arrow)"/><text x="%.1f" y="%.1f" font-size="11" fill="#333">sends to</text>`, lx, ly+7, lx+40, ly+11)
	lx += 40 + 8*charW11 + 22
	f(`<path d="M%.1f,%.1f h34" stroke="#b03a2e" stroke-width="1.5" stroke-dasharray="6 4" marker-end="url(#vdisk-arrow)"/><text x="%.1f" y="%.1f" font-size="11" fill="#333">VPB: mounted as</text>`, lx, ly+7, lx+40, ly+11)
	f("\n</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteHTML writes a standalone HTML page showing the SVG drawing: no
// script, nothing fetched.
func (si Info) WriteHTML(w io.Writer) error {
	if _, err := io.WriteString(w, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>vdisk device stacks</title>\n</head>\n<body style=\"margin:0;background:#fff\">\n"); err != nil {
		return err
	}
	if err := si.WriteSVG(w); err != nil {
		return err
	}
	_, err := io.WriteString(w, "</body>\n</html>\n")
	return err
}
