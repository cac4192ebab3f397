package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/vdisk-dev/vdisk/control"
	"github.com/vdisk-dev/vdisk/filter/monitor"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/internal/testsupport/browser"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
	"github.com/vdisk-dev/vdisk/stackview"
)

var readmeShot = flag.String("readme-screenshot", "", "write the README's screenshot of the page (a small PNG) to this path")

// view is a `vdisk serve --http` and the browser showing its page.
type view struct {
	t    *testing.T
	bin  string
	img  string
	sock string
	srv  *testsupport.Process
	url  string // with the token
	base string // http://127.0.0.1:PORT
	ctx  context.Context
}

var webViewOn = regexp.MustCompile(`web view on (http://(127\.0\.0\.1:\d+)/\?token=([0-9a-f]+))`)

// startView creates a GPT image with two FAT16 partitions (web@1, web@2),
// serves it with the trace and monitor filters, a control socket and the
// web view on a free loopback port, and starts a browser.
func startView(t *testing.T, args ...string) *view {
	t.Helper()
	bin := testsupport.BuildCLI(t)
	v := &view{t: t, bin: bin, img: filepath.Join(t.TempDir(), "web.img"), sock: testsupport.SocketPath(t)}
	testsupport.Must(t, bin, "create", v.img, "--size", "64MiB", "--table", "gpt", "--part", "24MiB:fat16:ESP", "--part", "rest:fat16:DATA")
	v.srv = testsupport.StartServe(t, bin, append([]string{v.img, "--control", v.sock, "--http", "127.0.0.1:0", "--filter", "trace", "--filter", "monitor"}, args...)...)
	v.srv.WaitFor(t, "web view address", testsupport.DefaultTimeout, func() bool {
		m := webViewOn.FindStringSubmatch(v.srv.Stderr())
		if m != nil {
			v.url, v.base = m[1], "http://"+m[2]
		}
		return m != nil
	})
	t.Cleanup(func() {
		if err := v.srv.Stop(30 * time.Second); err != nil {
			t.Errorf("vdisk serve: %v\n%s", err, v.srv.Stderr())
		}
	})
	v.ctx = browser.New(t, 1500, 950, 4*time.Minute)
	return v
}

// do runs browser actions; the test fails on an error.
func (v *view) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	v.t.Helper()
	if err := chromedp.Do(v.ctx, steps...); err != nil {
		v.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page into out.
func eval[T any](v *view, expr string) T {
	v.t.Helper()
	out, err := chromedp.Run(v.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		v.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return out
}

// wait polls a JavaScript expression until it is true (bounded).
func (v *view) wait(what, expr string) {
	v.t.Helper()
	if _, err := chromedp.Run(v.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		v.t.Fatalf("waiting for %s (%s): %v", what, expr, err)
	}
}

func (v *view) tab(name string) {
	v.t.Helper()
	v.do("tab "+name, chromedp.Click(chromedp.CSS(`#tabs button[data-tab="`+name+`"]`)))
	v.wait("tab "+name, `!document.getElementById('tab-`+name+`').hidden`)
}

// cli runs the vdisk CLI against the server and decodes its --json output.
func cliJSON[T any](v *view, args ...string) T {
	v.t.Helper()
	out := testsupport.Must(v.t, v.bin, append(args, "--control", v.sock, "--json")...)
	var x T
	if err := json.Unmarshal([]byte(out), &x); err != nil {
		v.t.Fatalf("vdisk %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return x
}

// pageDevice is a device box as the browser lays it out.
type pageDevice struct {
	Name       string  `json:"name"`
	AttachedTo string  `json:"attachedTo"`
	Stack      string  `json:"stack"`
	Index      int     `json:"index"`
	Kind       string  `json:"kind"`
	X          float64 `json:"x"`
	Top        float64 `json:"top"`
	Bottom     float64 `json:"bottom"`
}

const pageDevicesJS = `[...document.querySelectorAll('svg.vdisk-stacks g.device')].map((g) => {
  const r = g.querySelector('rect').getBoundingClientRect();
  return {name: g.dataset.name, attachedTo: g.dataset.attachedTo, stack: g.dataset.stack, index: +g.dataset.index,
          kind: g.dataset.kind, x: r.left, top: r.top, bottom: r.bottom};
})`

// stackMismatch compares the drawing in the browser with `vdisk stack
// --json`: every device drawn once, attached to what the CLI says, each
// attached device drawn directly above the one beneath it, so that every
// stack reads bottom-up in the order of its attachments. "" when they agree.
func stackMismatch(info stackview.Info, drawn []pageDevice) string {
	byName := map[string]pageDevice{}
	for _, d := range drawn {
		if _, dup := byName[d.Name]; dup {
			return "device " + d.Name + " drawn twice"
		}
		byName[d.Name] = d
	}
	if len(drawn) != len(info.Devices) {
		return fmt.Sprintf("%d devices drawn, vdisk stack --json lists %d", len(drawn), len(info.Devices))
	}
	for _, d := range info.Devices {
		g, ok := byName[d.Name]
		if !ok {
			return "device " + d.Name + " is not drawn"
		}
		if g.AttachedTo != d.AttachedTo {
			return fmt.Sprintf("%s drawn attached to %q, vdisk stack says %q", d.Name, g.AttachedTo, d.AttachedTo)
		}
		if d.AttachedTo == "" {
			if g.Index != 0 {
				return fmt.Sprintf("bottom device %s drawn at position %d", d.Name, g.Index)
			}
			continue
		}
		low := byName[d.AttachedTo]
		if g.Stack != low.Stack || g.Index != low.Index+1 || g.X != low.X || g.Bottom > low.Top || low.Top-g.Bottom > 12 {
			return fmt.Sprintf("%s (#%d, x %.0f, %.0f–%.0f) is not drawn directly above %s (#%d, x %.0f, %.0f–%.0f)",
				d.Name, g.Index, g.X, g.Top, g.Bottom, low.Name, low.Index, low.X, low.Top, low.Bottom)
		}
	}
	return ""
}

// checkStack waits (bounded) until the drawing agrees with `vdisk stack
// --json`, and returns the devices.
func (v *view) checkStack(what string) (stackview.Info, map[string]pageDevice) {
	v.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		info := cliJSON[stackview.Info](v, "stack")
		drawn := eval[[]pageDevice](v, pageDevicesJS)
		msg := stackMismatch(info, drawn)
		if msg == "" {
			byName := map[string]pageDevice{}
			for _, d := range drawn {
				byName[d.Name] = d
			}
			return info, byName
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("%s: the page's drawing disagrees with vdisk stack --json: %s", what, msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// volume is what `vdisk mount --json` lists.
func (v *view) volume(name string) control.VolumeStatus {
	v.t.Helper()
	for _, s := range cliJSON[struct{ Volumes []control.VolumeStatus }](v, "mount").Volumes {
		if s.Name == name {
			return s
		}
	}
	v.t.Fatalf("vdisk mount lists no volume %s", name)
	return control.VolumeStatus{}
}

// waitCLI polls a condition on what the CLI reports (bounded).
func (v *view) waitCLI(what string, ok func() bool) {
	v.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			v.t.Fatalf("the CLI never saw %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestWebView drives the page in Chromium: load it with the token, check
// the stack drawing against `vdisk stack --json`, mount a volume through
// the page and see the file system volume and the filter manager's frame
// with the monitor minifilter appear, lock and unlock it, see an error of
// the control API, attach and detach a filter with a parameter, run fio
// against an export and see its writes in the trace table (paused and
// filtered) and on the block map, compare the block map's allocation with
// nbdinfo --map, then dismount and see the devices go. Screenshots of each
// state are saved (browser.ArtifactDir).
func TestWebView(t *testing.T) {
	testsupport.NeedTool(t, "fio")
	testsupport.NeedTool(t, "nbdinfo")
	browser.Chromium(t)
	v := startView(t)

	// The address the server printed loads the page; the token leaves the
	// address bar.
	v.do("load the page", chromedp.Navigate(v.url))
	v.wait("the stack drawing", `document.querySelectorAll('#stack-drawing svg g.device').length > 0`)
	if loc := eval[string](v, `location.href`); strings.Contains(loc, "token") {
		t.Errorf("the token stayed in the address: %s", loc)
	}
	// The policy the server sent holds: a script injected inline does not run.
	if ran := eval[bool](v, `(() => { const s = document.createElement('script'); s.textContent = 'window.inlineRan = true'; document.body.append(s); return !!window.inlineRan; })()`); ran {
		t.Error("an inline script ran: the Content-Security-Policy does not hold")
	}
	info, _ := v.checkStack("at start")
	if len(info.Devices) < 8 {
		t.Fatalf("vdisk stack lists %d devices", len(info.Devices))
	}
	browser.Screenshot(t, v.ctx, "1-stacks")

	// Mount web@1 through the page: the FAT volume device and the filter
	// manager's frame (with the monitor minifilter) appear above it.
	v.tab("controls")
	v.wait("the volumes", `document.querySelector('tr[data-volume="web@1"] button[data-op="mount"]') !== null`)
	v.do("mount web@1", chromedp.Click(chromedp.CSS(`tr[data-volume="web@1"] button[data-op="mount"]`)))
	v.waitCLI("web@1 mounted", func() bool { return v.volume("web@1").Mounted })
	v.wait("web@1 mounted on the page", `document.querySelector('tr[data-volume="web@1"] td.state').textContent.startsWith('mounted')`)
	v.tab("stacks")
	info, drawn := v.checkStack("after mounting web@1")
	var fsVolume, frame string
	for _, d := range info.Devices {
		if d.Name == `\Device\HarddiskVolume1` && d.VPB != nil && d.VPB.Mounted {
			fsVolume = d.VPB.VolumeDevice
		}
	}
	for _, d := range info.Devices {
		if d.AttachedTo == fsVolume && fsVolume != "" && d.Driver == stackview.FltMgrDriver {
			frame = d.Name
			if len(d.Minifilters) != 1 || d.Minifilters[0].Name != "monitor" {
				t.Errorf("frame %s has minifilters %v, want monitor", d.Name, d.Minifilters)
			}
		}
	}
	if fsVolume == "" || frame == "" || drawn[fsVolume].Kind != stackview.KindFSVolume || drawn[frame].Kind != stackview.KindFrame {
		t.Fatalf("after mounting: file system volume %q (%s), frame %q (%s)", fsVolume, drawn[fsVolume].Kind, frame, drawn[frame].Kind)
	}
	if n := eval[int](v, `document.querySelectorAll('#stack-drawing path.vpb-link[data-from="\\\\Device\\\\HarddiskVolume1"]').length`); n != 1 {
		t.Errorf("%d VPB links drawn from HarddiskVolume1, want 1", n)
	}
	v.do("select the frame", chromedp.Click(chromedp.CSS(`#stack-drawing g.device[data-kind="fltmgr-frame"][data-attached-to="`+strings.ReplaceAll(fsVolume, `\`, `\\`)+`"]`)))
	v.wait("the frame's details", `document.getElementById('device-details').textContent.includes('monitor at altitude 385100')`)
	browser.Screenshot(t, v.ctx, "2-mounted")

	// Lock and unlock through the page; an error of the control API shows.
	v.tab("controls")
	v.do("lock web@1", chromedp.Click(chromedp.CSS(`tr[data-volume="web@1"] button[data-op="lock"]`)))
	v.waitCLI("web@1 locked", func() bool { return v.volume("web@1").Locked })
	v.do("unlock web@1", chromedp.Click(chromedp.CSS(`tr[data-volume="web@1"] button[data-op="unlock"]`)))
	v.waitCLI("web@1 unlocked", func() bool { return !v.volume("web@1").Locked })
	v.do("unlock web@2", chromedp.Click(chromedp.CSS(`tr[data-volume="web@2"] button[data-op="unlock"]`)))
	v.wait("the error", `[...document.querySelectorAll('#messages .msg.error')].some((m) => m.textContent === 'unlock web@2: the control API holds no lock on it')`)
	browser.Screenshot(t, v.ctx, "3-controls-error")

	// Attach a disk filter with a parameter through the page, see it in
	// the CLI's list and in the drawing, detach it.
	v.do("choose passthrough", chromedp.SetValue(chromedp.ID("af-name"), "passthrough"))
	eval[bool](v, `document.getElementById('af-name').dispatchEvent(new Event('change')) || true`)
	v.do("on=web@2", chromedp.SendKeys(chromedp.CSS(`#af-params input[data-param="on"]`), "web@2"))
	v.wait("the spec", `document.getElementById('af-spec').textContent === 'passthrough:on=web@2'`)
	v.do("attach", chromedp.Click(chromedp.ID("af-attach")))
	var pt control.FilterInfo
	v.waitCLI("passthrough attached", func() bool {
		for _, f := range cliJSON[struct{ Filters []control.FilterInfo }](v, "filter", "list").Filters {
			if f.Name == "passthrough" {
				pt = f
				return true
			}
		}
		return false
	})
	if len(pt.Devices) != 1 || pt.Devices[0].On != `\Device\Harddisk0\Partition2` {
		t.Errorf("passthrough:on=web@2 attached as %+v", pt.Devices)
	}
	v.tab("stacks")
	_, drawn = v.checkStack("with passthrough")
	if d := drawn[pt.Devices[0].Name]; d.AttachedTo != `\Device\Harddisk0\Partition2` || d.Kind != stackview.KindFilter {
		t.Errorf("the passthrough device is drawn as %+v", d)
	}
	v.tab("controls")
	v.wait("the filter row", `document.querySelector('tr[data-filter="`+pt.ID+`"] button') !== null`)
	v.do("detach", chromedp.Click(chromedp.CSS(`tr[data-filter="`+pt.ID+`"] button[data-op="detach"]`)))
	v.waitCLI("passthrough detached", func() bool {
		return !slices.ContainsFunc(cliJSON[struct{ Filters []control.FilterInfo }](v, "filter", "list").Filters, func(f control.FilterInfo) bool { return f.ID == pt.ID })
	})
	v.tab("stacks")
	v.checkStack("after detaching passthrough")

	// fio writes to web@2 over NBD while the page shows the trace and the
	// block map.
	parts := testsupport.Sfdisk(t, v.img)
	p2 := parts[1]
	const region, regionSize = 4 << 20, 2 << 20 // in web@2
	uri := "nbd://" + v.srv.Addr + "/web@2"
	fio := exec.Command("fio", "--name=web", "--ioengine=nbd", "--uri="+uri, "--rw=randwrite", "--bs=64k", "--iodepth=2",
		fmt.Sprintf("--offset=%d", region), fmt.Sprintf("--size=%d", regionSize), "--rate_iops=40", "--time_based", "--runtime=10")
	fioRun := testsupport.Start(t, fio)
	v.tab("blocks")
	v.do("the whole disk's map", chromedp.SetValue(chromedp.ID("bm-export"), "web"))
	eval[bool](v, `document.getElementById('bm-export').dispatchEvent(new Event('change')) || true`)
	v.wait("the block map of web", `window.vdiskBlockmap && window.vdiskBlockmap.export === 'web' && window.vdiskBlockmap.alloc.length > 0`)
	type cellColour struct {
		Cell    int `json:"cell"`
		R, G, B int
	}
	bm := eval[struct {
		Cells      int   `json:"cells"`
		CellSize   int64 `json:"cellSize"`
		Partitions []struct {
			Number      int
			Start, Size int64
		} `json:"partitions"`
	}](v, `window.vdiskBlockmap`)
	// The partition boundaries are sfdisk's.
	if len(bm.Partitions) != len(parts) {
		t.Fatalf("the block map marks %d partitions, sfdisk lists %d", len(bm.Partitions), len(parts))
	}
	for i, p := range parts {
		if bm.Partitions[i].Start != p.Start || bm.Partitions[i].Size != p.Size {
			t.Errorf("partition %d marked at %d+%d, sfdisk says %d+%d", i+1, bm.Partitions[i].Start, bm.Partitions[i].Size, p.Start, p.Size)
		}
	}
	first, last := int((p2.Start+region)/bm.CellSize), int((p2.Start+region+regionSize-1)/bm.CellSize)
	far := int((p2.Start + region + 3*regionSize) / bm.CellSize)
	pixelsJS := func(cells ...int) string {
		b, _ := json.Marshal(cells)
		return `(() => { const cv = document.getElementById('bm-canvas'); const ctx = cv.getContext('2d');
		  return ` + string(b) + `.map((i) => { const r = window.vdiskBlockmap.cellRect(i);
		    const d = ctx.getImageData(r.x + (r.w >> 1), r.y + (r.h >> 1), 1, 1).data; return {cell: i, R: d[0], G: d[1], B: d[2]}; }); })()`
	}
	red := func(c cellColour) bool { return c.R > c.G+60 && c.R > c.B+60 }
	cells := []int{}
	for c := first; c <= last; c++ {
		cells = append(cells, c)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := eval[[]cellColour](v, pixelsJS(append(cells, far)...))
		n := 0
		for _, c := range got[:len(cells)] {
			if red(c) {
				n++
			}
		}
		if red(got[len(got)-1]) {
			t.Fatalf("cell %d, far from fio's writes, is drawn as written: %+v", far, got[len(got)-1])
		}
		// fio's random writes cover the region within seconds; cells fade
		// after 4 s, so most of them are red at any moment.
		if n >= len(cells)/2 {
			t.Logf("%d of the %d cells of fio's region are drawn as written", n, len(cells))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of the %d cells of fio's region (%d–%d) are drawn as written: %+v", n, len(cells), first, last, got)
		}
		time.Sleep(300 * time.Millisecond)
	}
	browser.Screenshot(t, v.ctx, "4-blockmap")

	// The trace table shows fio's writes, with the disk's offsets; paused,
	// it stands still; filtered by operation and requestor, it shows only those.
	v.tab("trace")
	writeRow := fmt.Sprintf(`[...document.querySelectorAll('#trace tbody tr.write')].some((tr) => {
	  const m = tr.cells[5].textContent.match(/offset (\d+) length 65536/);
	  return m && +m[1] >= %d && +m[1] < %d && tr.cells[2].textContent.startsWith('127.0.0.1:'); })`, p2.Start+region, p2.Start+region+regionSize)
	v.wait("fio's writes in the trace", writeRow)
	v.do("pause", chromedp.Click(chromedp.ID("pause")))
	top := eval[string](v, `document.querySelector('#trace tbody tr').cells[0].textContent`)
	v.wait("records arriving while paused", `/Resume \(\d+ new\)/.test(document.getElementById('pause').textContent) && +document.getElementById('pause').textContent.match(/\d+/)[0] > 5`)
	if now := eval[string](v, `document.querySelector('#trace tbody tr').cells[0].textContent`); now != top {
		t.Errorf("the paused table moved: top row %s, then %s", top, now)
	}
	browser.Screenshot(t, v.ctx, "5-trace-paused")
	v.do("resume", chromedp.Click(chromedp.ID("pause")))
	v.wait("the table moving again", `document.querySelector('#trace tbody tr').cells[0].textContent !== '`+top+`'`)
	v.do("filter writes", chromedp.SendKeys(chromedp.ID("f-op"), "write"))
	v.do("filter the NBD client", chromedp.SendKeys(chromedp.ID("f-requestor"), "127.0.0.1:"))
	v.wait("only fio's writes", `(() => { const rows = [...document.querySelectorAll('#trace tbody tr:not(.gap)')];
	  return rows.length >= 10 && rows.every((tr) => tr.cells[4].textContent === 'IRP_MJ_WRITE' && tr.cells[2].textContent.startsWith('127.0.0.1:')); })()`)
	browser.Screenshot(t, v.ctx, "6-trace-filtered")
	if code := fioRun.Wait(t, time.Minute); code != 0 {
		t.Fatalf("fio: exit status %d\n%s%s", code, fioRun.Stdout(), fioRun.Stderr())
	}

	// Allocation on the map is what an NBD client (nbdinfo --map) sees.
	v.tab("blocks")
	v.do("web@2's map", chromedp.SetValue(chromedp.ID("bm-export"), "web@2"))
	eval[bool](v, `document.getElementById('bm-export').dispatchEvent(new Event('change')) || true`)
	nbdMap := testworld.NbdinfoMap(t, uri)
	v.wait("web@2's allocation", `window.vdiskBlockmap && window.vdiskBlockmap.export === 'web@2' && window.vdiskBlockmap.alloc.length === window.vdiskBlockmap.cells`)
	alloc := eval[struct {
		Alloc    string `json:"alloc"`
		CellSize int64  `json:"cellSize"`
	}](v, `window.vdiskBlockmap`)
	if want := cellsFromMap(nbdMap, p2.Size, alloc.CellSize); alloc.Alloc != want {
		t.Errorf("the block map's allocation of web@2 differs from nbdinfo --map:\npage    %s\nnbdinfo %s", alloc.Alloc, want)
	}
	if !strings.ContainsRune(alloc.Alloc, 'd') || !strings.ContainsRune(alloc.Alloc, 'h') {
		t.Errorf("web@2's map shows no data or no hole: %s", alloc.Alloc)
	}

	// Dismount through the page (forced): the file system volume and the
	// frame go.
	v.tab("controls")
	v.do("force", chromedp.Click(chromedp.CSS(`tr[data-volume="web@1"] input[data-op="force"]`)))
	v.do("dismount web@1", chromedp.Click(chromedp.CSS(`tr[data-volume="web@1"] button[data-op="dismount"]`)))
	v.waitCLI("web@1 dismounted", func() bool { return !v.volume("web@1").Mounted })
	v.tab("stacks")
	_, drawn = v.checkStack("after dismounting web@1")
	for _, gone := range []string{fsVolume, frame} {
		if _, ok := drawn[gone]; ok {
			t.Errorf("%s is still drawn after the dismount", gone)
		}
	}
	browser.Screenshot(t, v.ctx, "7-dismounted")
	if *readmeShot == "" {
		v.stopWithPageOpen()
	}
	if *readmeShot != "" {
		defer v.stopWithPageOpen()
		v.do("mount web@1 again", chromedp.Evaluate[chromedp.Void](`document.querySelector('tr[data-volume="web@1"] button[data-op="mount"]').click()`))
		v.waitCLI("web@1 mounted", func() bool { return v.volume("web@1").Mounted })
		v.checkStack("for the README")
		eval[bool](v, `document.getElementById('messages').replaceChildren() || true`)
		writeReadmeShot(t, v.ctx, *readmeShot, eval[int](v, `Math.ceil(document.querySelector('.stacks-layout').getBoundingClientRect().bottom) + 12`))
	}
}

// stopWithPageOpen stops the server (SIGTERM) while the page's event
// stream is open: it exits 0, and the page says it is disconnected.
func (v *view) stopWithPageOpen() {
	v.t.Helper()
	v.wait("the page live", `document.getElementById('conn').textContent === 'live'`)
	if err := v.srv.Stop(30 * time.Second); err != nil {
		v.t.Fatalf("vdisk serve with the page open: %v\n%s", err, v.srv.Stderr())
	}
	v.wait("the page disconnected", `document.getElementById('conn').textContent.startsWith('disconnected')`)
}

// cellsFromMap sums an nbdinfo map up per cell as GET /web/allocation does:
// h hole, d data, z allocated zeroes, m a cell with a hole and something else.
func cellsFromMap(m []testworld.Extent, size, cellSize int64) string {
	n := int((size + cellSize - 1) / cellSize)
	hole, other, data := make([]bool, n), make([]bool, n), make([]bool, n)
	for _, e := range m {
		for c := e.Offset / cellSize; c <= (e.Offset+e.Length-1)/cellSize && c < int64(n); c++ {
			switch {
			case e.Type&1 != 0:
				hole[c] = true
			case e.Type&2 != 0:
				other[c] = true
			default:
				other[c], data[c] = true, true
			}
		}
	}
	var b strings.Builder
	for c := range n {
		switch {
		case hole[c] && other[c]:
			b.WriteByte('m')
		case hole[c]:
			b.WriteByte('h')
		case data[c]:
			b.WriteByte('d')
		default:
			b.WriteByte('z')
		}
	}
	return b.String()
}

// TestWebViewAccess: without the token every request gets 401 (the page,
// its script, the control API, the event stream); the token in the address
// sets a cookie and redirects; a state-changing request with the cookie but
// from another origin, or without the page's CSRF header, gets 403, and
// changes nothing. In the browser: a page of another origin (another port
// of 127.0.0.1, so the same site: the SameSite cookie goes along) posts a
// form and a fetch to the mount operation; the server refuses both and
// the volume stays unmounted.
func TestWebViewAccess(t *testing.T) {
	browser.Chromium(t)
	v := startView(t)
	token := v.url[strings.LastIndex(v.url, "=")+1:]
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string, set func(*http.Request)) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, v.base+path, nil)
		if set != nil {
			set(req)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, path := range []string{"/", "/static/app.js", "/api/v1/volumes", "/web/events", "/web/stack.svg", "/?token=" + strings.Repeat("0", len(token))} {
		if resp := get(path, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %s, want 401", path, resp.Status)
		}
	}
	if resp := get("/api/v1/volumes", func(r *http.Request) { r.Header.Set("Cookie", "vdisk-0=x") }); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET with a wrong cookie: %s, want 401", resp.Status)
	}
	resp := get("/?token="+token, nil)
	cookies := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" || len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("GET /?token=: %s, Location %q, cookies %v", resp.Status, resp.Header.Get("Location"), cookies)
	}
	cookie := cookies[0].Name + "=" + cookies[0].Value
	page := get("/", func(r *http.Request) { r.Header.Set("Cookie", cookie) })
	if page.StatusCode != http.StatusOK || !strings.Contains(page.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("the page with the cookie: %s, policy %q", page.Status, page.Header.Get("Content-Security-Policy"))
	}
	post := func(set func(*http.Request)) int {
		req, _ := http.NewRequest(http.MethodPost, v.base+"/api/v1/volumes/web@2/mount", strings.NewReader("{}"))
		req.Header.Set("Cookie", cookie)
		req.Header.Set("Content-Type", "application/json")
		set(req)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(func(r *http.Request) {}); code != http.StatusForbidden {
		t.Errorf("POST without the CSRF header: %d, want 403", code)
	}
	if code := post(func(r *http.Request) {
		r.Header.Set("X-Vdisk-CSRF", "guess")
		r.Header.Set("Origin", "http://127.0.0.1:1")
		r.Header.Set("Sec-Fetch-Site", "same-site")
	}); code != http.StatusForbidden {
		t.Errorf("POST from another origin: %d, want 403", code)
	}

	// The browser has the cookie once it loaded the page.
	v.do("load the page", chromedp.Navigate(v.url))
	v.wait("the stack drawing", `document.querySelectorAll('#stack-drawing svg g.device').length > 0`)
	var posts []string
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!DOCTYPE html><html><body><p id="evil">another origin</p>
<iframe name="sink" id="sink"></iframe>
<form id="f" method="POST" action="%[1]s/api/v1/volumes/web@2/mount" enctype="text/plain" target="sink"><input name="{}" value=""></form>
<script>
window.fetchStatus = 'pending';
fetch('%[1]s/api/v1/volumes/web@2/mount', {method: 'POST', mode: 'no-cors', credentials: 'include', body: '{}'})
  .then((r) => { window.fetchStatus = 'sent ' + r.type; }, (e) => { window.fetchStatus = 'failed ' + e; });
document.getElementById('f').submit();
</script></body></html>`, v.base)
		posts = append(posts, r.URL.Path)
	}))
	t.Cleanup(evil.Close)
	v.do("load the other origin's page", chromedp.Navigate(evil.URL))
	v.wait("the forged requests sent", `window.fetchStatus !== 'pending'`)
	time.Sleep(time.Second) // the form's answer loads in the frame
	if st := v.volume("web@2"); st.Mounted {
		t.Fatal("a forged cross-origin POST mounted web@2")
	}
	if len(posts) == 0 {
		t.Fatal("the other origin's page was not served")
	}
	browser.Screenshot(t, v.ctx, "forged-post-refused")
}

// writeReadmeShot saves the page as the README shows it: a screenshot of
// its top height pixels, reduced to its 256 most frequent colours (a
// paletted PNG, a fraction of the size of the browser's), for a small file
// in the repository.
func writeReadmeShot(t *testing.T, ctx context.Context, path string, height int) {
	t.Helper()
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatal(err)
	}
	counts := map[color.RGBA]int{}
	b := img.Bounds()
	b.Max.Y = min(b.Max.Y, b.Min.Y+height)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			counts[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)]++
		}
	}
	byCount := slices.Collect(maps.Keys(counts))
	slices.SortFunc(byCount, func(a, b color.RGBA) int { return counts[b] - counts[a] })
	var pal color.Palette
	for _, c := range byCount[:min(256, len(byCount))] {
		pal = append(pal, c)
	}
	out := image.NewPaletted(b, pal)
	nearest := map[color.RGBA]uint8{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			i, ok := nearest[c]
			if !ok {
				i = uint8(pal.Index(c))
				nearest[c] = i
			}
			out.SetColorIndex(x, y, i)
		}
	}
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, out); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("README screenshot: %s (%d bytes)", path, buf.Len())
}

// TestWebViewTraceGaps: the page shows where the ring dropped records
// before the stream read them, and where the stream sent only the newest
// records of a tick, as gap rows in the trace table.
func TestWebViewTraceGaps(t *testing.T) {
	browser.Chromium(t)
	sys, srv, url, _ := newView(t, 64, 10)
	ctx := browser.New(t, 1300, 700, 2*time.Minute)
	v := &view{t: t, ctx: ctx}
	v.do("load the page", chromedp.Navigate(url+"/?token="+srv.Token()))
	v.wait("the stack drawing", `document.querySelectorAll('#stack-drawing svg g.device').length > 0`)
	v.tab("trace")
	for i := range 1000 {
		sys.Ring().Add(monitor.Record{Time: time.Now(), Requestor: "gap-test", Layer: "disk", Operation: "IRP_MJ_WRITE", Device: `\Device\Harddisk0\DR0`,
			Path: monitor.DirectIO, Offset: int64(i) * 4096, Length: 4096, Status: "STATUS_SUCCESS"})
	}
	v.wait("a dropped gap", `[...document.querySelectorAll('#trace tr.gap.dropped')].some((tr) => /records dropped by the server's ring/.test(tr.textContent))`)
	v.wait("a skipped gap", `[...document.querySelectorAll('#trace tr.gap.skipped')].some((tr) => /matching records not shown/.test(tr.textContent))`)
	v.wait("the newest record on top", `document.querySelector('#trace tbody tr:not(.gap)').cells[0].textContent === String(`+fmt.Sprint(sys.Ring().Next()-1)+`)`)
	browser.Screenshot(t, ctx, "trace-gaps")
}

// TestStackHTMLInTheBrowser: the page `vdisk stack --html` prints, opened
// from a file in Chromium, draws what `vdisk stack --json` lists for the
// same images and filters, every attached device directly above the one
// beneath it; it needs nothing from the network and runs no script.
func TestStackHTMLInTheBrowser(t *testing.T) {
	browser.Chromium(t)
	bin := testsupport.BuildCLI(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "offline.img")
	testsupport.Must(t, bin, "create", img, "--size", "64MiB", "--table", "gpt", "--part", "24MiB:fat16:ESP", "--part", "rest:fat16:DATA")
	args := []string{"stack", img, "--mount", "--filter", "monitor", "--filter", "trace", "--filter", "writeprotect:on=offline@2"}
	page := filepath.Join(dir, "stack.html")
	if err := os.WriteFile(page, []byte(testsupport.Must(t, bin, append(args, "--html")...)), 0o644); err != nil {
		t.Fatal(err)
	}
	var info stackview.Info
	if err := json.Unmarshal([]byte(testsupport.Must(t, bin, append(args, "--json")...)), &info); err != nil {
		t.Fatal(err)
	}
	v := &view{t: t, ctx: browser.New(t, 1400, 900, time.Minute)}
	v.do("open the file", chromedp.Navigate("file://"+page))
	v.wait("the drawing", `document.querySelectorAll('svg.vdisk-stacks g.device').length > 0`)
	if msg := stackMismatch(info, eval[[]pageDevice](v, pageDevicesJS)); msg != "" {
		t.Fatalf("the --html drawing disagrees with vdisk stack --json: %s", msg)
	}
	frames := 0
	for _, d := range info.Devices {
		if len(d.Minifilters) > 0 {
			frames++
		}
	}
	if n := eval[int](v, `document.querySelectorAll('svg.vdisk-stacks path.vpb-link').length`); frames != 2 || n != 2 {
		t.Errorf("%d frames with minifilters, %d VPB links drawn; want 2 of each (both volumes mounted)", frames, n)
	}
	if n := eval[int](v, `document.scripts.length`); n != 0 {
		t.Errorf("the page has %d scripts", n)
	}
	if fetched := eval[[]string](v, `performance.getEntriesByType('resource').map((e) => e.name)`); len(fetched) != 0 {
		t.Errorf("the offline page fetched %q", fetched)
	}
	browser.Screenshot(t, v.ctx, "stack-html")
}
