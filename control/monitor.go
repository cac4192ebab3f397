package control

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// monitor streams the monitor ring as JSON lines: the records from
// sequence number `from` on (those still kept; by default only new ones),
// then, unless follow=false, each new record as it comes, flushed at once. A gap in the sequence
// numbers is where the ring dropped records a slow reader did not get.
func (c *Server) monitor(w http.ResponseWriter, r *http.Request) {
	ring := c.sys.Ring()
	from := ring.Next()
	if q := r.URL.Query().Get("from"); q != "" {
		n, err := strconv.ParseUint(q, 10, 64)
		if err != nil {
			writeError(w, &apiError{code: http.StatusBadRequest, err: fmt.Errorf("monitor: from=%q is not a sequence number", q)})
			return
		}
		from = n
	}
	follow := true
	if q := r.URL.Query().Get("follow"); q != "" {
		f, err := strconv.ParseBool(q)
		if err != nil {
			writeError(w, &apiError{code: http.StatusBadRequest, err: fmt.Errorf("monitor: follow=%q is not true or false", q)})
			return
		}
		follow = f
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Vdisk-Monitor-Next", strconv.FormatUint(from, 10))
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	enc := json.NewEncoder(w)
	for {
		// Ask to be woken before reading, so a record added in between
		// is not missed.
		wake := ring.Wait()
		recs, next := ring.Since(from)
		for _, rec := range recs {
			if enc.Encode(rec) != nil {
				return
			}
		}
		from = next
		if len(recs) > 0 && rc.Flush() != nil || !follow {
			return
		}
		select {
		case <-wake:
		case <-r.Context().Done():
			return
		case <-c.quit:
			return
		}
	}
}
