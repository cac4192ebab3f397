package web_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/control"
	"github.com/vdisk-dev/vdisk/export"
	"github.com/vdisk-dev/vdisk/filter/monitor"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
	"github.com/vdisk-dev/vdisk/stackview"
	"github.com/vdisk-dev/vdisk/web"
)

// event is one server-sent event.
type event struct{ name, data string }

// newView serves the web view of a System over gpt.img (testworld.GPT)
// on loopback, with a ring of ringSize records.
func newView(t *testing.T, ringSize, maxRecords int) (*vdisk.System, *web.Server, string, string) {
	t.Helper()
	img := testworld.GPT(t, t.TempDir())
	sys := testworld.FilterSystem(t, vdisk.Options{RingSize: ringSize}, img)
	exports, _, err := sys.Exports(false, export.ClaimPerConnection)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := web.New(sys, control.NewServer(sys, exports), exports)
	if err != nil {
		t.Fatal(err)
	}
	srv.Tick, srv.MaxRecords = 10*time.Millisecond, maxRecords
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		_ = srv.Shutdown(t.Context()) // ends the event streams
		hs.Close()
	})
	return sys, srv, hs.URL, img
}

// events opens the event stream at url and returns its events, until the
// test ends.
func events(t *testing.T, url, token string) <-chan event {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s: %s %s", url, resp.Status, resp.Header.Get("Content-Type"))
	}
	ch := make(chan event, 100)
	go func() {
		defer resp.Body.Close()
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 16<<20)
		var e event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				e.name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				e.data = line[len("data: "):]
			case line == "":
				select {
				case ch <- e:
				case <-t.Context().Done():
					return
				}
				e = event{}
			}
		}
	}()
	return ch
}

// next returns the next event named name, skipping others (bounded).
func next(t *testing.T, ch <-chan event, name string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("the event stream ended before a %s event", name)
			}
			if e.name == name {
				return e.data
			}
		case <-timeout:
			t.Fatalf("no %s event within 10 s", name)
		}
	}
}

// traceEvent is a trace event with its records' strings looked up.
type traceEvent struct {
	Next    uint64
	Records [][]any
	Gaps    [][]any
	Strings []string
}

// traces reads trace events until the stream is at seq next, decoding
// the records with the stream's string table.
func traces(t *testing.T, ch <-chan event, upTo uint64) (recs []monitor.Record, gaps [][]any) {
	t.Helper()
	var table []string
	str := func(v any) string {
		if f, ok := v.(float64); ok {
			return table[int(f)]
		}
		return v.(string)
	}
	for {
		var te traceEvent
		if err := json.Unmarshal([]byte(next(t, ch, "trace")), &te); err != nil {
			t.Fatal(err)
		}
		table = append(table, te.Strings...)
		gaps = append(gaps, te.Gaps...)
		for _, r := range te.Records {
			recs = append(recs, monitor.Record{Seq: uint64(r[0].(float64)), Requestor: str(r[2]), Layer: str(r[3]), Operation: str(r[4]),
				Device: str(r[5]), Path: str(r[6]), Offset: int64(r[7].(float64)), Length: int64(r[8].(float64)), Status: str(r[9])})
		}
		if te.Next >= upTo {
			return recs, gaps
		}
	}
}

// TestEventStreamGapsAndFilters: records the ring dropped before the
// stream read them are a "dropped" gap; of more matching records than a
// tick sends, the newest go and the rest are a "skipped" gap; the filters
// (operation, requestor, status, text; case-insensitive) choose what is
// sent; strings go once through the stream's table.
func TestEventStreamGapsAndFilters(t *testing.T) {
	sys, srv, url, _ := newView(t, 64, 10)
	ring := sys.Ring()
	for i := range 200 {
		rec := monitor.Record{Requestor: "client-a", Layer: "disk", Operation: "IRP_MJ_READ", Device: `\Device\Harddisk0\DR0`,
			Path: monitor.DirectIO, Offset: int64(i) * 4096, Length: 4096, Status: "STATUS_SUCCESS"}
		if i%2 == 1 {
			rec.Requestor, rec.Operation = "client-b", "IRP_MJ_WRITE"
		}
		if i == 197 {
			rec.Status = "STATUS_ACCESS_DENIED"
		}
		ring.Add(rec)
	}
	// The ring keeps 137..200; the stream sends the newest 10.
	recs, gaps := traces(t, events(t, url+"/web/events?from=1", srv.Token()), 201)
	if len(gaps) != 2 || gaps[0][2] != "dropped" || gaps[0][0] != 1.0 || gaps[0][1] != 137.0 || gaps[0][3] != 136.0 ||
		gaps[1][2] != "skipped" || gaps[1][0] != 137.0 || gaps[1][1] != 191.0 || gaps[1][3] != 54.0 {
		t.Errorf("gaps %v, want [1 137 dropped 136] [137 191 skipped 54]", gaps)
	}
	if len(recs) != 10 || recs[0].Seq != 191 || recs[9].Seq != 200 {
		t.Fatalf("%d records from %d, want 191..200", len(recs), recs[0].Seq)
	}
	for _, r := range recs {
		if want := int64(r.Seq-1) * 4096; r.Offset != want || (r.Seq%2 == 0) != (r.Requestor == "client-b") || r.Path != monitor.DirectIO {
			t.Errorf("record %d decoded as %+v", r.Seq, r)
		}
	}

	recs, gaps = traces(t, events(t, url+"/web/events?from=1&op=Write&requestor=CLIENT-B", srv.Token()), 201)
	if len(recs) != 10 || len(gaps) != 2 || gaps[1][3] != 22.0 { // 32 writes kept, 10 sent
		t.Errorf("filtered: %d records, gaps %v; want 10 and 22 skipped", len(recs), gaps)
	}
	for _, r := range recs {
		if r.Operation != "IRP_MJ_WRITE" || r.Requestor != "client-b" {
			t.Errorf("the filter let %+v through", r)
		}
	}
	recs, _ = traces(t, events(t, url+"/web/events?from=1&status=error", srv.Token()), 201)
	if len(recs) != 1 || recs[0].Seq != 198 || recs[0].Status != "STATUS_ACCESS_DENIED" {
		t.Errorf("status=error: %+v", recs)
	}
	recs, _ = traces(t, events(t, url+"/web/events?from=1&q=CLIENT-A&status=ok", srv.Token()), 201)
	if len(recs) != 10 || recs[0].Requestor != "client-a" {
		t.Errorf("q=CLIENT-A: %d records, first %+v", len(recs), recs)
	}
}

// TestEventStreamBlocks: the hello event places every export on its disk
// with the partitions sfdisk sees; a write, a trim and a zeroing on the
// disk or a partition light the cells of every export over that part of
// the disk, and nothing else does (a failed write, an MDL read's release,
// a file's read).
func TestEventStreamBlocks(t *testing.T) {
	testsupport.NeedTool(t, "sfdisk")
	sys, srv, url, img := newView(t, 0, 500)
	parts := testsupport.Sfdisk(t, img)
	ch := events(t, url+"/web/events", srv.Token())
	var hello struct{ Exports []web.MapInfo }
	if err := json.Unmarshal([]byte(next(t, ch, "hello")), &hello); err != nil {
		t.Fatal(err)
	}
	maps := map[string]web.MapInfo{}
	for _, m := range hello.Exports {
		maps[m.Export] = m
	}
	whole := maps["gpt"]
	if len(maps) != 4 || len(whole.Partitions) != len(parts) {
		t.Fatalf("hello: %+v, sfdisk: %+v", hello.Exports, parts)
	}
	for i, p := range parts {
		if m := whole.Partitions[i]; m.Start != p.Start || m.Size != p.Size || m.Export != "gpt@"+string(rune('1'+i)) || maps[m.Export].Size != p.Size {
			t.Errorf("partition %d: %+v, sfdisk: %+v", i+1, m, p)
		}
	}
	p2 := parts[1]
	ring := sys.Ring()
	add := func(dev, op, path, status string, off, n int64) {
		ring.Add(monitor.Record{Layer: "disk", Device: dev, Operation: op, Path: path, Offset: off, Length: n, Status: status})
	}
	ok := "STATUS_SUCCESS"
	add(`\Device\Harddisk0\DR0`, "IRP_MJ_WRITE", monitor.DirectIO, ok, p2.Start+1<<20, 64<<10)
	add(`\Device\Harddisk0\Partition2`, "IRP_MJ_DEVICE_CONTROL/TRIM", monitor.DirectIO, ok, 4<<20, 4096)
	add(`\Device\HarddiskVolume2`, "IRP_MJ_DEVICE_CONTROL/ZERO", monitor.DirectIO, ok, 8<<20, 4096)
	add(`\Device\Harddisk0\DR0`, "IRP_MJ_WRITE", monitor.DirectIO, "STATUS_ACCESS_DENIED", 0, 4096)
	add(`\Device\Harddisk0\DR0`, "IRP_MJ_READ/IRP_MN_MDL_COMPLETE", monitor.DirectIO, ok, 0, 4096)
	add(`\Device\HarddiskVolume1`, "IRP_MJ_READ", `\EFI\BOOT\BOOTX64.EFI`, ok, 0, 4096)
	var blocks map[string][4][]int
	if err := json.Unmarshal([]byte(next(t, ch, "blocks")), &blocks); err != nil {
		t.Fatal(err)
	}
	cell := func(m web.MapInfo, off int64) int { return int(off / m.CellSize) }
	p2m := maps["gpt@2"]
	want := map[string][4][]int{
		"gpt":   {{}, {cell(whole, p2.Start+1<<20), 1 + cell(whole, 64<<10-1)}, {cell(whole, p2.Start+4<<20), 1}, {cell(whole, p2.Start+8<<20), 1}},
		"gpt@2": {{}, {cell(p2m, 1<<20), 1 + cell(p2m, 64<<10-1)}, {cell(p2m, 4<<20), 1}, {cell(p2m, 8<<20), 1}},
	}
	got, _ := json.Marshal(blocks)
	w, _ := json.Marshal(want)
	if string(got) != string(w) {
		t.Errorf("blocks %s, want %s", got, w)
	}
}

// TestAllocationIsWhatQemuSees: GET /web/allocation of the whole disk's
// export sums up per cell what qemu-img map sees of the image file
// (SEEK_DATA/SEEK_HOLE), before and after a write through the export.
func TestAllocationIsWhatQemuSees(t *testing.T) {
	testsupport.NeedTool(t, "qemu-img")
	_, srv, url, img := newView(t, 0, 500)
	get := func() web.Allocation {
		req, _ := http.NewRequest(http.MethodGet, url+"/web/allocation?export=gpt", nil)
		req.Header.Set("Authorization", "Bearer "+srv.Token())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a web.Allocation
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /web/allocation: %s %v", resp.Status, err)
		}
		return a
	}
	a := get()
	if want := cellsFromMap(testworld.QemuMap(t, img), 64<<20, a.CellSize); a.Cells != want {
		t.Errorf("allocation of a new image:\nweb  %s\nqemu %s", a.Cells, want)
	}
	testsupport.WriteAt(t, img, testsupport.Random(1<<20, 7, false), 40<<20)
	a = get()
	if want := cellsFromMap(testworld.QemuMap(t, img), 64<<20, a.CellSize); a.Cells != want || !strings.Contains(a.Cells, "dddd") {
		t.Errorf("allocation after a write of 1 MiB at 40 MiB:\nweb  %s\nqemu %s", a.Cells, want)
	}
	req, _ := http.NewRequest(http.MethodGet, url+"/web/allocation?export=nosuch", nil)
	req.Header.Set("Authorization", "Bearer "+srv.Token())
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("allocation of no export: %v %v", resp.Status, err)
	}
}

// TestListenLoopbackOnly: the web view listens on loopback addresses;
// others are refused unless allowed (and are not bound here).
func TestListenLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "127.0.0.2:0"} {
		l, err := web.Listen(addr, false)
		if err != nil {
			t.Errorf("Listen(%s): %v", addr, err)
			continue
		}
		l.Close()
	}
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:80", "example.com:80"} {
		if err := web.CheckAddr(addr, false); !errors.Is(err, web.ErrNotLoopback) {
			t.Errorf("CheckAddr(%s): %v, want ErrNotLoopback", addr, err)
		}
		if err := web.CheckAddr(addr, true); err != nil {
			t.Errorf("CheckAddr(%s, allowRemote): %v", addr, err)
		}
	}
	if err := web.CheckAddr("127.0.0.1", false); err == nil || errors.Is(err, web.ErrNotLoopback) {
		t.Errorf("CheckAddr without a port: %v", err)
	}
}

// TestStateFollowsControlRequests: control requests through the page's
// /api/ (with its CSRF header) mount and dismount, and each change comes
// as a state event at once (the request wakes the streams), while another
// stream and drawings of the stack run beside them (race-free under -race).
func TestStateFollowsControlRequests(t *testing.T) {
	_, srv, url, _ := newView(t, 0, 100)
	srv.Tick = time.Hour // only the control requests' wake-ups send states
	do := func(method, path string, body string, hdr map[string]string) (int, string) {
		req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+srv.Token())
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	_, page := do(http.MethodGet, "/", "", nil)
	m := regexp.MustCompile(`<meta name="vdisk-csrf" content="([0-9a-f]+)">`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", page)
	}
	csrf := map[string]string{web.CSRFHeader: m[1], "Content-Type": "application/json"}
	ch := events(t, url+"/web/events", srv.Token())
	other := events(t, url+"/web/events?op=READ", srv.Token())
	go func() {
		for range other { // another page, drained
		}
	}()
	stop := make(chan struct{})
	drawn := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				drawn <- nil
				return
			default:
			}
			if code, body := do(http.MethodGet, "/web/stack.svg", "", nil); code != http.StatusOK || !strings.HasPrefix(body, "<svg") {
				drawn <- fmt.Errorf("GET /web/stack.svg: %d %.100s", code, body)
				return
			}
		}
	}()
	mounted := func() bool {
		var st struct {
			Volumes []control.VolumeStatus
			Stack   stackview.Info
		}
		if err := json.Unmarshal([]byte(next(t, ch, "state")), &st); err != nil {
			t.Fatal(err)
		}
		vpb := false
		for _, d := range st.Stack.Devices {
			if d.Name == `\Device\HarddiskVolume1` && d.VPB != nil && d.VPB.Mounted {
				vpb = true
			}
		}
		if vpb != st.Volumes[0].Mounted {
			t.Fatalf("one state, two stories: the stack's VPB mounted %v, the volume's status %v", vpb, st.Volumes[0].Mounted)
		}
		return vpb
	}
	if mounted() {
		t.Fatal("gpt@1 mounted at start")
	}
	for i := range 10 {
		if code, body := do(http.MethodPost, "/api/v1/volumes/gpt@1/mount", "", csrf); code != http.StatusOK {
			t.Fatalf("round %d: mount: %d %s", i, code, body)
		}
		if !mounted() {
			t.Fatalf("round %d: the state after the mount says not mounted", i)
		}
		if code, body := do(http.MethodPost, "/api/v1/volumes/gpt@1/dismount", `{"force": true}`, csrf); code != http.StatusOK {
			t.Fatalf("round %d: dismount: %d %s", i, code, body)
		}
		if mounted() {
			t.Fatalf("round %d: the state after the dismount says mounted", i)
		}
	}
	// The control API's errors pass through as they are.
	if code, body := do(http.MethodPost, "/api/v1/volumes/gpt@1/dismount", "", csrf); code != http.StatusConflict || !strings.Contains(body, "not mounted") {
		t.Errorf("dismounting a dismounted volume: %d %s", code, body)
	}
	close(stop)
	if err := <-drawn; err != nil {
		t.Error(err)
	}
}

// TestTokenRedirectStaysOnThisServer: the redirect that takes the token
// out of the address goes to a path of this server, even from a path that
// starts with two slashes (which a browser reads as another host).
func TestTokenRedirectStaysOnThisServer(t *testing.T) {
	_, srv, url, _ := newView(t, 0, 100)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for path, want := range map[string]string{
		"/?token=":                  "/",
		"//evil.example/?token=":    "/evil.example/",
		"/web/stack.svg?x=1&token=": "/web/stack.svg?x=1",
		"///evil.example/a?token=":  "/evil.example/a",
	} {
		resp, err := noRedirect.Get(url + path + srv.Token())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != want {
			t.Errorf("GET %s…: %s, Location %q, want 303 to %q", path, resp.Status, loc, want)
		}
	}
}
