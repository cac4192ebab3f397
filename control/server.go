package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/filter"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/mount"
	"github.com/vdisk-dev/vdisk/nbd"
	"github.com/vdisk-dev/vdisk/volume"
)

// Requestor names the control API's own requests in traces.
const Requestor = "vdisk control"

// Server serves the control API for a System and its NBD exports.
type Server struct {
	sys     *vdisk.System
	exports []nbd.Export
	hs      *http.Server

	// mu serializes the operations that change the stacks (mount,
	// dismount, lock, unlock, filters), so that one cannot see another
	// half done, and guards locks. Lock order: mu, then the System's and
	// the mount manager's locks.
	mu    sync.Mutex
	locks map[*iomgr.Device]*vdisk.VolumeLock // the volume locks the API holds

	quit     chan struct{} // closed by Shutdown: monitor streams end
	quitOnce sync.Once
}

// NewServer returns a control server for sys; exports are the NBD
// exports being served (for the export list and the write claims they hold).
func NewServer(sys *vdisk.System, exports []nbd.Export) *Server {
	c := &Server{sys: sys, exports: exports, locks: map[*iomgr.Device]*vdisk.VolumeLock{}, quit: make(chan struct{})}
	c.hs = &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 10 * time.Second}
	return c
}

// Serve answers control requests on l until Shutdown.
func (c *Server) Serve(l net.Listener) error {
	err := c.hs.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting requests, ends monitor streams, waits for the
// requests in flight (or ctx), closes the listeners (removing the socket)
// and gives back the volume locks the API holds.
func (c *Server) Shutdown(ctx context.Context) error {
	c.quitOnce.Do(func() { close(c.quit) })
	err := c.hs.Shutdown(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	for dev := range c.locks {
		c.unlockLocked(dev)
	}
	return err
}

// DismountAll flushes and dismounts every mounted volume, for a server that
// is stopping: first politely, then, if files are still open on a volume,
// forced (their handles then fail).
func (c *Server) DismountAll() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, v := range c.sys.Volumes() {
		if vp := v.Device.VPB(); vp == nil || !vp.Mounted() {
			continue
		}
		c.unlockLocked(v.Device)
		v.Requestor = Requestor
		err := v.Dismount(false)
		if errors.Is(err, iomgr.StatusAccessDenied) {
			err = v.Dismount(true)
		}
		if err != nil && !errors.Is(err, mount.ErrNotMounted) {
			errs = append(errs, fmt.Errorf("dismount %s: %w", v.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Handler returns the API's HTTP handler (for tests and other transports;
// serve it only where the caller is trusted).
func (c *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/exports", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"exports": c.ExportStatuses()})
	})
	mux.HandleFunc("GET /v1/volumes", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"volumes": c.VolumeStatuses()})
	})
	mux.HandleFunc("GET /v1/volumes/{name}", c.volumeOp(func(v *vdisk.Volume, _ *http.Request) error { return nil }))
	mux.HandleFunc("POST /v1/volumes/{name}/mount", c.volumeOp(c.mount))
	mux.HandleFunc("POST /v1/volumes/{name}/dismount", c.volumeOp(c.dismount))
	mux.HandleFunc("POST /v1/volumes/{name}/lock", c.volumeOp(c.lock))
	mux.HandleFunc("POST /v1/volumes/{name}/unlock", c.volumeOp(c.unlock))
	mux.HandleFunc("GET /v1/volumes/{name}/files/{path...}", c.readFile)
	mux.HandleFunc("PUT /v1/volumes/{name}/files/{path...}", c.writeFile)
	mux.HandleFunc("GET /v1/filters", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"filters": c.FilterInfos()})
	})
	mux.HandleFunc("POST /v1/filters", c.attachFilter)
	mux.HandleFunc("DELETE /v1/filters/{id}", c.detachFilter)
	mux.HandleFunc("GET /v1/stack", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, c.sys.Stack())
	})
	mux.HandleFunc("GET /v1/monitor", c.monitor)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{code: http.StatusNotFound, err: fmt.Errorf("%s %s: no such control operation", r.Method, r.URL.Path)})
	})
	return mux
}

// apiError carries the HTTP status an error is answered with.
type apiError struct {
	code int
	err  error
}

func (e *apiError) Error() string { return e.err.Error() }
func (e *apiError) Unwrap() error { return e.err }

// httpStatus chooses the HTTP status of an error: 404 for what does not
// exist, 409 for what the state of the stacks refuses (exclusivity, open
// files, the order of filters), 400 for a bad request, 500 otherwise.
func httpStatus(err error) int {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae.code
	case errors.Is(err, vdisk.ErrNoSuchFilter), errors.Is(err, fs.ErrNotExist):
		return http.StatusNotFound
	case errors.Is(err, volume.ErrExportedWritable), errors.Is(err, volume.ErrMounted), errors.Is(err, filter.ErrNotOnTop),
		errors.Is(err, mount.ErrNotMounted), errors.Is(err, iomgr.StatusAccessDenied), errors.Is(err, iomgr.StatusSharingViolation),
		errors.Is(err, iomgr.StatusDeviceBusy), errors.Is(err, iomgr.StatusNotLocked), errors.Is(err, fs.ErrExist):
		return http.StatusConflict
	case errors.Is(err, fs.ErrInvalid):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away: nothing to tell it
}

func writeError(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus(err))
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// decodeBody decodes a JSON request body into v; an empty body leaves v
// as it is.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return &apiError{code: http.StatusBadRequest, err: fmt.Errorf("request body: %w", err)}
	}
	return nil
}
