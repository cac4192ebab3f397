package vdisk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/vdisk-dev/vdisk/filter"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/mount"
	"github.com/vdisk-dev/vdisk/nbd"
	"github.com/vdisk-dev/vdisk/volume"
	"github.com/vdisk-dev/vdisk/vpb"
)

// The control API of a running `vdisk serve --control SOCKET`: HTTP with
// JSON bodies on a unix socket only its owner can use (mode 0600). Errors
// come back as {"error": "..."} with a 4xx or 5xx status.
//
//	GET    /v1/exports                        {"exports": [ExportStatus]}
//	GET    /v1/volumes                        {"volumes": [VolumeStatus]}
//	GET    /v1/volumes/{name}                 VolumeStatus
//	POST   /v1/volumes/{name}/mount           VolumeStatus
//	POST   /v1/volumes/{name}/dismount        {"force": bool} → VolumeStatus
//	POST   /v1/volumes/{name}/lock            VolumeStatus (FSCTL_LOCK_VOLUME, held by the server)
//	POST   /v1/volumes/{name}/unlock          VolumeStatus
//	GET    /v1/volumes/{name}/files/{path...} file contents, or {"entries": [FileEntry]} for a directory
//	PUT    /v1/volumes/{name}/files/{path...} body → the file (parents created) → FileEntry
//	GET    /v1/filters                        {"filters": [FilterInfo]}
//	POST   /v1/filters                        {"spec": "monitor"} → FilterInfo
//	DELETE /v1/filters/{id}                   {"detached": id}
//	GET    /v1/stack                          StackInfo
//	GET    /v1/monitor?from=SEQ&follow=BOOL   monitor.Record as JSON lines, until the client or server leaves
//	                                          (follow=false: only the records held now)
//
// A volume's name is its export name: `disk@1`, or `disk` for a disk
// without a partition table.

// ControlRequestor names the control API's own requests in traces.
const ControlRequestor = "vdisk control"

// ExportStatus describes an NBD export; the JSON field names are stable.
type ExportStatus struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Size        int64  `json:"size"`
	ReadOnly    bool   `json:"read_only"`
	// Volumes are the volumes beneath the export: a write claims them all.
	Volumes []string `json:"volumes"`
	// Writers is the number of connections that wrote and still hold the
	// claim, which keeps the volumes from being mounted.
	Writers int `json:"writers"`
}

// VolumeStatus describes a volume and its mount state; the JSON field names
// are stable.
type VolumeStatus struct {
	// Name is what mount and dismount take (`disk@1`).
	Name string `json:"name"`
	// Device is the storage volume device (`\Device\HarddiskVolume1`).
	Device string `json:"device"`
	Size   int64  `json:"size"`
	// Mounted is set while a file system has the volume mounted.
	Mounted bool `json:"mounted"`
	// FileSystem is the driver that mounted it (`\FileSystem\FAT`).
	FileSystem string `json:"file_system,omitempty"`
	Label      string `json:"label,omitempty"`
	Serial     string `json:"serial,omitempty"`
	// References counts the open file objects on the mounted volume.
	References int `json:"references"`
	// Locked is set while the control API holds FSCTL_LOCK_VOLUME on it.
	Locked bool `json:"locked"`
	// ExportWriters counts the NBD connections that wrote to an export
	// over the volume and are still connected: mounting waits for zero.
	ExportWriters int `json:"export_writers"`
}

// FileEntry describes a file in a directory listing or a written file.
type FileEntry struct {
	Name    string    `json:"name"`
	Size    int64     `json:"size"`
	Dir     bool      `json:"dir"`
	ModTime time.Time `json:"mod_time"`
}

// ControlServer serves the control API for a System and its NBD exports.
type ControlServer struct {
	sys     *System
	exports []nbd.Export
	hs      *http.Server

	// mu serializes the operations that change the stacks (mount,
	// dismount, lock, unlock, filters), so that one cannot see another
	// half done, and guards locks. Lock order: mu, then the System's and
	// the mount manager's locks.
	mu    sync.Mutex
	locks map[*iomgr.Device]*iomgr.FileObject // volume handles holding FSCTL_LOCK_VOLUME

	quit     chan struct{} // closed by Shutdown: monitor streams end
	quitOnce sync.Once
}

// NewControlServer returns a control server for sys; exports are the NBD
// exports being served (for the export list and the write claims they hold).
func NewControlServer(sys *System, exports []nbd.Export) *ControlServer {
	c := &ControlServer{sys: sys, exports: exports, locks: map[*iomgr.Device]*iomgr.FileObject{}, quit: make(chan struct{})}
	c.hs = &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 10 * time.Second}
	return c
}

// ListenControl listens on a unix socket at path that only the current user
// can connect to. The socket gets mode 0600 before it is bound (fchmod on
// the unbound socket, which Linux applies to the file bind creates), so it
// is never reachable by others, not even for an instant. A stale socket (no
// server answers on it) is replaced; a live one, or anything that is not a
// socket, is refused. The socket file is removed when the listener closes.
func ListenControl(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("control socket %s: the file exists and is not a socket: not replacing it", path)
		}
		conn, err := net.DialTimeout("unix", path, 2*time.Second)
		if err == nil {
			conn.Close()
			return nil, fmt.Errorf("control socket %s: another server is listening on it", path)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("control socket %s: %w", path, err)
		}
		// Nothing listens: a server that died left it behind.
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control socket %s: removing the stale socket: %w", path, err)
		}
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		if cerr := rc.Control(func(fd uintptr) { err = restrictSocket(fd) }); cerr != nil {
			return cerr
		}
		return err
	}}
	l, err := lc.Listen(context.Background(), "unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	// On systems where the socket's mode does not carry over to the file,
	// tighten it now, and refuse to serve if that fails.
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return l, nil
}

// Serve answers control requests on l until Shutdown.
func (c *ControlServer) Serve(l net.Listener) error {
	err := c.hs.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting requests, ends monitor streams, waits for the
// requests in flight (or ctx), closes the listeners (removing the socket)
// and gives back the volume locks the API holds.
func (c *ControlServer) Shutdown(ctx context.Context) error {
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
func (c *ControlServer) DismountAll() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, img := range c.sys.Images() {
		for _, v := range img.Volumes {
			if vp := v.VPB(); vp == nil || !vp.Mounted() {
				continue
			}
			c.unlockLocked(v)
			opts := mount.DismountOptions{Requestor: ControlRequestor}
			err := c.sys.Mounts.Dismount(v, opts)
			if errors.Is(err, iomgr.StatusAccessDenied) {
				opts.Force = true
				err = c.sys.Mounts.Dismount(v, opts)
			}
			if err != nil && !errors.Is(err, mount.ErrNotMounted) {
				errs = append(errs, fmt.Errorf("dismount %s: %w", volumeName(v), err))
			}
		}
	}
	return errors.Join(errs...)
}

// Handler returns the API's HTTP handler (for tests and other transports;
// serve it only where the caller is trusted).
func (c *ControlServer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/exports", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"exports": c.ExportStatuses()})
	})
	mux.HandleFunc("GET /v1/volumes", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"volumes": c.VolumeStatuses()})
	})
	mux.HandleFunc("GET /v1/volumes/{name}", c.volumeOp(func(v *Volume, _ *http.Request) error { return nil }))
	mux.HandleFunc("POST /v1/volumes/{name}/mount", c.volumeOp(c.mount))
	mux.HandleFunc("POST /v1/volumes/{name}/dismount", c.volumeOp(c.dismount))
	mux.HandleFunc("POST /v1/volumes/{name}/lock", c.volumeOp(c.lock))
	mux.HandleFunc("POST /v1/volumes/{name}/unlock", c.volumeOp(c.unlock))
	mux.HandleFunc("GET /v1/volumes/{name}/files/{path...}", c.readFile)
	mux.HandleFunc("PUT /v1/volumes/{name}/files/{path...}", c.writeFile)
	mux.HandleFunc("GET /v1/filters", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"filters": c.sys.FilterInfos()})
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

// statusOf chooses the HTTP status of an error: 404 for what does not
// exist, 409 for what the state of the stacks refuses (exclusivity, open
// files, the order of filters), 400 for a bad request, 500 otherwise.
func statusOf(err error) int {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae.code
	case errors.Is(err, ErrNoSuchFilter), errors.Is(err, fs.ErrNotExist):
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
	w.WriteHeader(statusOf(err))
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// ExportStatuses describes the exports being served.
func (c *ControlServer) ExportStatuses() []ExportStatus {
	out := []ExportStatus{}
	for _, e := range c.exports {
		es := ExportStatus{Name: e.Name, Description: e.Description, Size: e.Device.Size(), ReadOnly: e.ReadOnly, Volumes: []string{}}
		if ed, ok := e.Device.(*ExportDevice); ok {
			es.Writers = ed.Writers()
			for _, v := range c.volumesUnder(ed) {
				es.Volumes = append(es.Volumes, volumeName(v))
			}
		}
		out = append(out, es)
	}
	return out
}

// volumesUnder returns the volumes an export's writes reach: its claims
// when it has them, else the volume it is, or the volumes of its disk.
func (c *ControlServer) volumesUnder(ed *ExportDevice) []*iomgr.Device {
	if len(ed.Claims) > 0 {
		return ed.Claims
	}
	if _, ok := ed.Device.Extension.(*volume.Extension); ok {
		return []*iomgr.Device{ed.Device}
	}
	for _, img := range c.sys.Images() {
		if img.Disk == ed.Device {
			return img.Volumes
		}
	}
	return nil
}

// exportWriters counts the connections holding write claims on v, each
// export device once (the default export shares the first disk's).
func (c *ControlServer) exportWriters(v *iomgr.Device) int {
	seen := map[*ExportDevice]bool{}
	n := 0
	for _, e := range c.exports {
		ed, ok := e.Device.(*ExportDevice)
		if !ok || seen[ed] {
			continue
		}
		seen[ed] = true
		for _, cl := range ed.Claims {
			if cl == v {
				n += ed.Writers()
			}
		}
	}
	return n
}

// VolumeStatuses describes every volume of the System.
func (c *ControlServer) VolumeStatuses() []VolumeStatus {
	out := []VolumeStatus{}
	for _, img := range c.sys.Images() {
		for _, v := range img.Volumes {
			out = append(out, c.volumeStatus(v))
		}
	}
	return out
}

func (c *ControlServer) volumeStatus(v *iomgr.Device) VolumeStatus {
	vs := VolumeStatus{Name: volumeName(v), Device: v.String(), ExportWriters: c.exportWriters(v)}
	if ext, ok := v.Extension.(*volume.Extension); ok {
		vs.Size = ext.Size
	}
	if vp := v.VPB(); vp != nil && vp.Mounted() {
		snap := vp.Snapshot()
		vs.Mounted = true
		if snap.Device != nil {
			vs.FileSystem = snap.Device.Driver.Name
		}
		vs.Label = snap.Label
		vs.Serial = fmt.Sprintf("%04X-%04X", snap.SerialNumber>>16, snap.SerialNumber&0xFFFF)
		vs.References = snap.ReferenceCount
		vs.Locked = snap.Flags&vpb.Locked != 0
	}
	return vs
}

// volume resolves a volume name as the CLI spells it.
func (c *ControlServer) volume(name string) (*Volume, error) {
	v, err := c.sys.OpenVolume(name, ControlRequestor)
	if err != nil {
		return nil, &apiError{code: http.StatusNotFound, err: fmt.Errorf("volume %q: %w", name, err)}
	}
	return v, nil
}

// volumeOp runs op on the named volume and answers with its status.
func (c *ControlServer) volumeOp(op func(v *Volume, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := c.volume(r.PathValue("name"))
		if err == nil {
			err = op(v, r)
		}
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, c.volumeStatus(v.Device))
	}
}

// mount mounts the volume in the server; mounting a mounted volume is no
// error.
func (c *ControlServer) mount(v *Volume, _ *http.Request) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.sys.Mounts.Mount(v.Device, mount.MountOptions{Requestor: ControlRequestor}); err != nil {
		if errors.Is(err, volume.ErrExportedWritable) {
			return fmt.Errorf("mount %s refused: %d NBD connection(s) wrote to it over an export and are still connected (two writers would corrupt it): disconnect them, or serve the image --read-only: %w",
				v.Name, c.exportWriters(v.Device), err)
		}
		return fmt.Errorf("mount %s: %w", v.Name, err)
	}
	return nil
}

// dismountRequest is the body of a dismount.
type dismountRequest struct {
	Force bool `json:"force"`
}

// dismount flushes and dismounts the volume, refused with files open
// unless the request says force.
func (c *ControlServer) dismount(v *Volume, r *http.Request) error {
	var req dismountRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if vp := v.Device.VPB(); vp == nil || !vp.Mounted() {
		return fmt.Errorf("dismount %s: %w", v.Name, mount.ErrNotMounted)
	}
	// The lock is the API's own handle: it would hold the volume open.
	c.unlockLocked(v.Device)
	err := c.sys.Mounts.Dismount(v.Device, mount.DismountOptions{Force: req.Force, Requestor: ControlRequestor})
	if errors.Is(err, iomgr.StatusAccessDenied) {
		return fmt.Errorf("dismount %s refused: files are open on it (force dismounts anyway; their handles then fail): %w", v.Name, err)
	}
	if err != nil {
		return fmt.Errorf("dismount %s: %w", v.Name, err)
	}
	return nil
}

// lock takes FSCTL_LOCK_VOLUME on a volume handle the API keeps until
// unlock, dismount or shutdown.
func (c *ControlServer) lock(v *Volume, _ *http.Request) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.locks[v.Device] != nil {
		return &apiError{code: http.StatusConflict, err: fmt.Errorf("lock %s: the control API already holds its lock", v.Name)}
	}
	// A volume open (no path after the volume's name) that mounts it if
	// needed; the lock then belongs to this handle.
	fo, _, err := c.sys.Mounts.Open(`\DosDevices\`+v.Name, mount.OpenOptions{Requestor: ControlRequestor,
		DesiredAccess: iomgr.FileGenericRead | iomgr.FileGenericWrite, ShareAccess: iomgr.ShareRead | iomgr.ShareWrite,
		Disposition: iomgr.FileOpen})
	if err != nil {
		return fmt.Errorf("lock %s: %w", v.Name, err)
	}
	if err := mount.FileSystemControl(fo, iomgr.FSCTLLockVolume, nil, nil, ControlRequestor); err != nil {
		fo.CloseHandle(ControlRequestor)
		return fmt.Errorf("lock %s refused: files are open on it: %w", v.Name, err)
	}
	c.locks[v.Device] = fo
	return nil
}

// unlock gives back the API's lock on the volume.
func (c *ControlServer) unlock(v *Volume, _ *http.Request) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.locks[v.Device] == nil {
		return &apiError{code: http.StatusConflict, err: fmt.Errorf("unlock %s: the control API holds no lock on it", v.Name)}
	}
	return c.unlockLocked(v.Device)
}

// unlockLocked gives back the lock the API holds on dev, if any; c.mu is
// held.
func (c *ControlServer) unlockLocked(dev *iomgr.Device) error {
	fo := c.locks[dev]
	if fo == nil {
		return nil
	}
	delete(c.locks, dev)
	err := mount.FileSystemControl(fo, iomgr.FSCTLUnlockVolume, nil, nil, ControlRequestor)
	// Closing the handle unlocks too (the cleanup of a handle that holds
	// the lock), so the volume is free whatever the control said.
	fo.CloseHandle(ControlRequestor)
	if err != nil && !errors.Is(err, iomgr.StatusVolumeDismounted) {
		return fmt.Errorf("unlock %s: %w", volumeName(dev), err)
	}
	return nil
}

// filePath is the volume path of a files request ("." for the root).
func filePath(r *http.Request) string {
	p := path.Clean("/" + r.PathValue("path"))
	if p == "/" {
		return "."
	}
	return p[1:]
}

// readFile answers a file's contents, or a directory's listing as JSON.
func (c *ControlServer) readFile(w http.ResponseWriter, r *http.Request) {
	v, err := c.volume(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	name := filePath(r)
	info, err := v.Stat(name)
	if err != nil {
		writeError(w, fmt.Errorf("%s:/%s: %w", v.Name, name, err))
		return
	}
	if info.IsDir() {
		entries, err := v.ReadDir(name)
		if err != nil {
			writeError(w, fmt.Errorf("%s:/%s: %w", v.Name, name, err))
			return
		}
		list := []FileEntry{}
		for _, e := range entries {
			fi, err := e.Info()
			if err != nil {
				writeError(w, err)
				return
			}
			list = append(list, FileEntry{Name: e.Name(), Size: fi.Size(), Dir: e.IsDir(), ModTime: fi.ModTime()})
		}
		writeJSON(w, map[string]any{"entries": list})
		return
	}
	f, err := v.Open(name)
	if err != nil {
		writeError(w, fmt.Errorf("%s:/%s: %w", v.Name, name, err))
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(info.Size(), 10))
	_, _ = io.Copy(w, f) // a failure midway can only cut the body short
}

// writeFile stores the request body as a file, creating its parents.
func (c *ControlServer) writeFile(w http.ResponseWriter, r *http.Request) {
	v, err := c.volume(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	name := filePath(r)
	if name == "." {
		writeError(w, &apiError{code: http.StatusBadRequest, err: fmt.Errorf("%s:/: name a file to write", v.Name)})
		return
	}
	n, err := func() (int64, error) {
		if err := v.MkdirAll(path.Dir(name)); err != nil {
			return 0, err
		}
		f, err := v.Create(name)
		if err != nil {
			return 0, err
		}
		n, err := io.Copy(f, r.Body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return n, err
	}()
	if err != nil {
		writeError(w, fmt.Errorf("%s:/%s: %w", v.Name, name, err))
		return
	}
	writeJSON(w, FileEntry{Name: path.Base(name), Size: n, ModTime: time.Now()})
}

// attachRequest is the body of a filter attach.
type attachRequest struct {
	Spec string `json:"spec"`
}

// attachFilter loads a built-in filter into the running System.
func (c *ControlServer) attachFilter(w http.ResponseWriter, r *http.Request) {
	var req attachRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Spec == "" {
		writeError(w, &apiError{code: http.StatusBadRequest, err: errors.New("attach: give a filter spec NAME[:key=value,...]")})
		return
	}
	c.mu.Lock()
	lf, err := c.sys.AddFilterWhileServing(req.Spec)
	c.mu.Unlock()
	if err != nil {
		if statusOf(err) == http.StatusInternalServerError {
			// A spec the filter refused (unknown name, bad key, a
			// file it could not open): the request was at fault.
			err = &apiError{code: http.StatusBadRequest, err: err}
		}
		writeError(w, err)
		return
	}
	for _, fi := range c.sys.FilterInfos() {
		if fi.ID == lf.ID() {
			writeJSON(w, fi)
			return
		}
	}
	writeJSON(w, FilterInfo{ID: lf.ID(), Name: lf.Spec.Name, Spec: lf.Spec.Raw})
}

// detachFilter unloads a filter (last in, first out for disk filters).
func (c *ControlServer) detachFilter(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c.mu.Lock()
	err := c.sys.RemoveFilter(id)
	c.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, map[string]string{"detached": id})
}

// monitor streams the monitor ring as JSON lines: the records from
// sequence number `from` on (those still kept; by default only new ones),
// then, unless follow=false, each new record as it comes, flushed at once. A gap in the sequence
// numbers is where the ring dropped records a slow reader did not get.
func (c *ControlServer) monitor(w http.ResponseWriter, r *http.Request) {
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
