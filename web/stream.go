package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vdisk-dev/vdisk/control"
	"github.com/vdisk-dev/vdisk/filter/builtin"
	"github.com/vdisk-dev/vdisk/filter/monitor"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/stackview"
)

// The event stream (GET /web/events, server-sent events) tells the page
// what changed, every Server.Tick (the state and the blocks every third
// tick, or at once after a control request):
//
//	hello   {"exports": [MapInfo], "filters": [FilterKind], "next": SEQ, "max_records": N}, first
//	state   {"stack": stackview.Info, "svg": "<svg…>", "volumes": [...], "filters": [...], "exports": [...]}
//	        (the control API's types), whenever one of them changed
//	trace   {"next": SEQ, "strings": [...], "records": [[seq, time µs, requestor, layer,
//	        operation, device, path, offset, length, status, duration ns, fast I/O 0|1], ...],
//	        "gaps": [[first seq, seq after, "dropped"|"skipped", records], ...]}
//	blocks  {"EXPORT": [[first cell, count, ...] for reads, writes, trims, zeroes], ...}
//
// A trace record's text fields are numbers into the stream's string table
// (each string is sent once, in "strings", appended in order) or, once
// the table is full, strings. The records are those of the ring from
// ?from= on (by default the last MaxRecords; 0: all the ring holds) that
// match the stream's filter (?q=, ?op=, ?status=, ?requestor=, see
// traceFilter), at most MaxRecords a tick: the newest, the others a
// "skipped" gap. A "dropped" gap is where the ring overwrote records
// before the stream read them. The blocks event counts every record,
// matched and sent or not.

// maxStrings bounds a stream's string table: paths are many.
const maxStrings = 8192

// FilterKind is a built-in filter as the page's attach form offers it.
type FilterKind struct {
	Name   string   `json:"name"`
	Kind   string   `json:"kind"`
	Params []string `json:"params"`
	Help   string   `json:"help"`
}

// pageState is the state event.
type pageState struct {
	Stack   stackview.Info         `json:"stack"`
	SVG     string                 `json:"svg"`
	Volumes []control.VolumeStatus `json:"volumes"`
	Filters []control.FilterInfo   `json:"filters"`
	Exports []control.ExportStatus `json:"exports"`
}

// traceFilter chooses the records a stream sends. Each field is a
// case-insensitive substring to find; status "ok" means STATUS_SUCCESS and
// "error" anything else. q looks in every text field.
type traceFilter struct {
	q, op, status, requestor string
	// matched caches each answer per string, as the strings repeat.
	matched [4]map[string]bool
}

func newTraceFilter(r *http.Request) *traceFilter {
	v := r.URL.Query()
	f := &traceFilter{q: strings.ToLower(v.Get("q")), op: strings.ToLower(v.Get("op")),
		status: strings.ToLower(v.Get("status")), requestor: strings.ToLower(v.Get("requestor"))}
	for i := range f.matched {
		f.matched[i] = map[string]bool{}
	}
	return f
}

func (f *traceFilter) empty() bool {
	return f.q == "" && f.op == "" && f.status == "" && f.requestor == ""
}

// contains answers, through cache i, whether s contains sub, ignoring case.
func (f *traceFilter) contains(i int, s, sub string) bool {
	if sub == "" {
		return true
	}
	c := f.matched[i]
	if m, ok := c[s]; ok {
		return m
	}
	if len(c) > maxStrings {
		clear(c)
	}
	m := strings.Contains(strings.ToLower(s), sub)
	c[s] = m
	return m
}

func (f *traceFilter) match(r *monitor.Record) bool {
	if f.empty() {
		return true
	}
	switch f.status {
	case "":
	case "ok":
		if r.Status != iomgr.StatusSuccess.Name() {
			return false
		}
	case "error":
		if r.Status == iomgr.StatusSuccess.Name() {
			return false
		}
	default:
		if !f.contains(1, r.Status, f.status) {
			return false
		}
	}
	if !f.contains(0, r.Operation, f.op) || !f.contains(2, r.Requestor, f.requestor) {
		return false
	}
	if f.q == "" {
		return true
	}
	for _, s := range []string{r.Requestor, r.Layer, r.Operation, r.Device, r.Path, r.Status} {
		if f.contains(3, s, f.q) {
			return true
		}
	}
	return false
}

// stream is one page's event stream.
type stream struct {
	s      *Server
	w      http.ResponseWriter
	rc     *http.ResponseController
	filter *traceFilter
	from   uint64
	recs   []monitor.Record
	sent   []*monitor.Record
	act    *activity
	buf    []byte // an event
	data   []byte // a trace event's JSON
	strs   map[string]int
	fresh  []string // strings new to the table, sent with the next records
	state  []byte   // the last state event sent
}

func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	ring := s.sys.Ring()
	st := &stream{s: s, w: w, rc: http.NewResponseController(w), filter: newTraceFilter(r), strs: map[string]int{}}
	next := ring.Next()
	st.from = next - min(next-1, uint64(s.MaxRecords))
	if q := r.URL.Query().Get("from"); q != "" {
		n, err := strconv.ParseUint(q, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("events: from=%q is not a sequence number", q))
			return
		}
		st.from = n
	}
	geo := s.newGeometry()
	st.act = newActivity(geo)
	wake := make(chan struct{}, 1)
	s.mu.Lock()
	s.streams[wake] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.streams, wake)
		s.mu.Unlock()
	}()

	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	kinds := []FilterKind{}
	for _, f := range builtin.Filters() {
		kinds = append(kinds, FilterKind{Name: f.Name, Kind: f.Kind.String(), Params: f.Params, Help: f.Help})
	}
	hello, _ := json.Marshal(map[string]any{"exports": geo.infos(), "filters": kinds, "next": st.from, "max_records": s.MaxRecords})
	if st.event("hello", hello) != nil {
		return
	}
	tick := time.NewTicker(s.Tick)
	defer tick.Stop()
	poked := true
	for n := 0; ; n++ {
		// The stacks change seldom: look every third tick, or at once
		// after a control request.
		if poked || n%3 == 0 {
			if st.sendState() != nil {
				return
			}
		}
		if st.sendTrace(ring) != nil {
			return
		}
		// Cells fade over seconds: a few updates a second do.
		if (poked || n%3 == 0) && st.sendBlocks() != nil || st.rc.Flush() != nil {
			return
		}
		poked = false
		select {
		case <-tick.C:
		case <-wake:
			poked = true
		case <-r.Context().Done():
			return
		case <-s.quit:
			return
		}
	}
}

// event writes one server-sent event (data must be one line: JSON is).
func (st *stream) event(name string, data []byte) error {
	st.buf = append(st.buf[:0], "event: "...)
	st.buf = append(st.buf, name...)
	st.buf = append(st.buf, "\ndata: "...)
	st.buf = append(st.buf, data...)
	st.buf = append(st.buf, "\n\n"...)
	_, err := st.w.Write(st.buf)
	return err
}

// sendState sends the state event if anything in it changed.
func (st *stream) sendState() error {
	s := st.s
	info := s.sys.Stack()
	var svg bytes.Buffer
	if err := info.WriteSVG(&svg); err != nil {
		return err
	}
	b, err := json.Marshal(pageState{Stack: info, SVG: svg.String(), Volumes: s.ctl.VolumeStatuses(),
		Filters: s.ctl.FilterInfos(), Exports: s.ctl.ExportStatuses()})
	if err != nil || bytes.Equal(b, st.state) {
		return err
	}
	st.state = b
	return st.event("state", b)
}

// sendTrace reads the ring from where the stream is, counts every record
// in the block map and sends the newest matching ones.
func (st *stream) sendTrace(ring *monitor.Ring) error {
	var next uint64
	st.recs, next = ring.AppendSince(st.recs[:0], st.from)
	if len(st.recs) == 0 && next == st.from {
		return nil
	}
	type gap struct {
		from, to uint64
		why      string
		n        int
	}
	var gaps []gap
	if len(st.recs) > 0 && st.recs[0].Seq > st.from {
		gaps = append(gaps, gap{st.from, st.recs[0].Seq, "dropped", int(st.recs[0].Seq - st.from)})
	}
	st.sent = st.sent[:0]
	for i := range st.recs {
		rec := &st.recs[i]
		st.act.add(rec)
		if st.filter.match(rec) {
			st.sent = append(st.sent, rec)
		}
	}
	if n := len(st.sent) - st.s.MaxRecords; n > 0 {
		gaps = append(gaps, gap{st.sent[0].Seq, st.sent[n].Seq, "skipped", n})
		st.sent = st.sent[n:]
	}
	st.from = next
	b := append(st.data[:0], `{"next":`...)
	b = strconv.AppendUint(b, next, 10)
	b = append(b, `,"records":[`...)
	for i, rec := range st.sent {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendUint(b, rec.Seq, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, rec.Time.UnixMicro(), 10)
		for _, s := range []string{rec.Requestor, rec.Layer, rec.Operation, rec.Device, rec.Path} {
			b = append(b, ',')
			b = st.appendString(b, s)
		}
		b = append(b, ',')
		b = strconv.AppendInt(b, rec.Offset, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, rec.Length, 10)
		b = append(b, ',')
		b = st.appendString(b, rec.Status)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(rec.Duration), 10)
		if rec.FastIO {
			b = append(b, ",1]"...)
		} else {
			b = append(b, ",0]"...)
		}
	}
	b = append(b, `],"gaps":[`...)
	for i, g := range gaps {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendUint(b, g.from, 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, g.to, 10)
		b = append(b, `,"`...)
		b = append(b, g.why...)
		b = append(b, `",`...)
		b = strconv.AppendInt(b, int64(g.n), 10)
		b = append(b, ']')
	}
	b = append(b, `],"strings":`...)
	strs, err := json.Marshal(st.fresh)
	if err != nil {
		return err
	}
	if st.fresh == nil {
		strs = []byte("[]")
	}
	b = append(b, strs...)
	b = append(b, '}')
	st.fresh = st.fresh[:0]
	st.data = b
	return st.event("trace", b)
}

// appendString appends a string field: its number in the table, adding
// it (to be sent in "strings") while there is room, or the string itself.
func (st *stream) appendString(b []byte, s string) []byte {
	if i, ok := st.strs[s]; ok {
		return strconv.AppendInt(b, int64(i), 10)
	}
	if len(st.strs) < maxStrings {
		i := len(st.strs)
		st.strs[s] = i
		st.fresh = append(st.fresh, s)
		return strconv.AppendInt(b, int64(i), 10)
	}
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// sendBlocks sends the cells touched since the last blocks event.
func (st *stream) sendBlocks() error {
	t := st.act.take()
	if t == nil {
		return nil
	}
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return st.event("blocks", b)
}

// writeJSONValue answers v as JSON.
func writeJSONValue(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v) // the browser went away: nothing to tell it
}
