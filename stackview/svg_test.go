package stackview_test

import (
	"bytes"
	"encoding/xml"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
	"github.com/vdisk-dev/vdisk/stackview"
)

// svgDevice is a device box of the drawing, as an XML reader sees it.
type svgDevice struct {
	name, attachedTo, stack, kind string
	index                         int
	x, y, w, h                    float64
	text                          []string
}

// svgLink is a target or VPB link.
type svgLink struct{ class, from, to string }

// readSVG parses the drawing with encoding/xml: the boxes and the links.
func readSVG(t *testing.T, b []byte) (map[string]svgDevice, []svgLink) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(b))
	devs := map[string]svgDevice{}
	var links []svgLink
	var cur *svgDevice
	inText := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v", err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			a := map[string]string{}
			for _, x := range e.Attr {
				a[x.Name.Local] = x.Value
			}
			num := func(k string) float64 {
				f, err := strconv.ParseFloat(a[k], 64)
				if err != nil {
					t.Fatalf("<%s %s=%q>: %v", e.Name.Local, k, a[k], err)
				}
				return f
			}
			switch {
			case e.Name.Local == "g" && a["class"] == "device":
				i, _ := strconv.Atoi(a["data-index"])
				cur = &svgDevice{name: a["data-name"], attachedTo: a["data-attached-to"], stack: a["data-stack"], kind: a["data-kind"], index: i}
			case e.Name.Local == "rect" && cur != nil && cur.w == 0:
				cur.x, cur.y, cur.w, cur.h = num("x"), num("y"), num("width"), num("height")
			case e.Name.Local == "text" && cur != nil:
				inText = true
			case e.Name.Local == "path" && (a["class"] == "target-link" || a["class"] == "vpb-link"):
				links = append(links, svgLink{a["class"], a["data-from"], a["data-to"]})
			}
		case xml.CharData:
			if inText {
				cur.text = append(cur.text, string(e))
			}
		case xml.EndElement:
			switch {
			case e.Name.Local == "text":
				inText = false
			case e.Name.Local == "g" && cur != nil:
				if _, dup := devs[cur.name]; dup {
					t.Errorf("device %s drawn twice", cur.name)
				}
				devs[cur.name] = *cur
				cur = nil
			}
		}
	}
	return devs, links
}

// TestStackSVGDrawsEveryDeviceBottomUp: the SVG drawing (vdisk stack
// --svg) is well-formed and draws every device of the stack once, each
// attached device directly above the one it is attached to, in the same
// stack; partitions and volumes link to the stack they send to, a mounted
// volume to its file system volume by its VPB; a frame lists its
// minifilters. The browser test in package web renders it.
func TestStackSVGDrawsEveryDeviceBottomUp(t *testing.T) {
	dir := t.TempDir()
	gpt := testworld.GPT(t, dir)
	sys := testworld.FilterSystem(t, vdisk.Options{}, gpt, "trace", "writeprotect:on=gpt@1", "monitor")
	v, err := testworld.VolumeNamed(sys, "gpt@2", "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Stat("."); err != nil {
		t.Logf("stat on the raw volume: %v", err)
	}
	info := sys.Stack()
	var svg bytes.Buffer
	if err := info.WriteSVG(&svg); err != nil {
		t.Fatal(err)
	}
	devs, links := readSVG(t, svg.Bytes())
	if len(devs) != len(info.Devices) {
		t.Errorf("the drawing has %d devices, the stack %d", len(devs), len(info.Devices))
	}
	hasLink := map[svgLink]bool{}
	for _, l := range links {
		hasLink[l] = true
	}
	frames := 0
	for _, d := range info.Devices {
		g, ok := devs[d.Name]
		if !ok {
			t.Errorf("device %s is not drawn", d.Name)
			continue
		}
		if g.attachedTo != d.AttachedTo {
			t.Errorf("%s drawn attached to %q, the stack says %q", d.Name, g.attachedTo, d.AttachedTo)
		}
		if d.AttachedTo == "" {
			if g.index != 0 || g.stack != d.Name {
				t.Errorf("bottom device %s drawn at index %d of stack %q", d.Name, g.index, g.stack)
			}
		} else {
			low := devs[d.AttachedTo]
			// Directly above: the box ends a gap above the lower one's top,
			// in the same column and stack.
			if low.stack != g.stack || g.index != low.index+1 || g.x != low.x || g.y+g.h > low.y || low.y-(g.y+g.h) > 10 {
				t.Errorf("%s (stack %s #%d at %v,%v) is not drawn directly above %s (stack %s #%d at %v,%v)",
					d.Name, g.stack, g.index, g.x, g.y, low.name, low.stack, low.index, low.x, low.y)
			}
		}
		if d.Target != "" && !hasLink[svgLink{"target-link", d.Name, d.Target}] {
			t.Errorf("no link from %s to the stack of %s, which it sends to", d.Name, d.Target)
		}
		if d.VPB != nil && d.VPB.Mounted && !hasLink[svgLink{"vpb-link", d.Name, d.VPB.VolumeDevice}] {
			t.Errorf("no VPB link from %s to %s", d.Name, d.VPB.VolumeDevice)
		}
		if len(d.Minifilters) > 0 {
			frames++
			if g.kind != stackview.KindFrame || !strings.Contains(strings.Join(g.text, "\n"), "monitor @ 385100") {
				t.Errorf("frame %s (kind %s) does not show its minifilter: %q", d.Name, g.kind, g.text)
			}
		}
	}
	if frames == 0 {
		t.Error("no frame with the monitor minifilter in the stack of the mounted volume")
	}
	var html bytes.Buffer
	if err := info.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(html.Bytes(), svg.Bytes()) || !bytes.HasPrefix(html.Bytes(), []byte("<!DOCTYPE html>")) || bytes.Contains(html.Bytes(), []byte("<script")) {
		t.Error("the HTML page does not hold the same SVG, or holds a script")
	}
}
