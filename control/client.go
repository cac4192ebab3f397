package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vdisk-dev/vdisk/filter/monitor"
	"github.com/vdisk-dev/vdisk/stackview"
)

// ErrNoServer means nothing answers on the control socket.
var ErrNoServer = errors.New("no vdisk serve answers there")

// Error is an error the control API answered with.
type Error struct {
	// StatusCode is the HTTP status: 404 for a name that does not exist,
	// 409 for what the state of the stacks refuses, 400 for a bad request.
	StatusCode int
	// Message says what failed and why.
	Message string
}

func (e *Error) Error() string { return e.Message }

// Client talks to the control API of a running `vdisk serve`.
type Client struct {
	// Socket is the control socket's path.
	Socket string
	hc     *http.Client
}

// NewClient returns a client for the control socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableCompression: true,
	}
	return &Client{Socket: path, hc: &http.Client{Transport: tr}}
}

// Close releases the client's idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// do sends a request and returns the response of a 2xx status; other
// statuses become *Error, and a socket nothing answers on ErrNoServer.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://vdisk"+path, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		for _, errno := range []syscall.Errno{syscall.ENOENT, syscall.ECONNREFUSED} {
			if errors.Is(err, errno) {
				return nil, fmt.Errorf("control socket %s: %v: %w (start one with: vdisk serve IMAGE --control %s)", c.Socket, errno, ErrNoServer, c.Socket)
			}
		}
		return nil, fmt.Errorf("control socket %s: %w", c.Socket, unwrapURL(err))
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	var e struct {
		Error string `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		e.Error = fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	return nil, &Error{StatusCode: resp.StatusCode, Message: e.Error}
}

// unwrapURL drops net/http's `Get "http://vdisk/...":` prefix, which names
// no real URL.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// call sends a JSON request (in may be nil) and decodes the JSON answer into out.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	resp, err := c.do(ctx, method, path, body, ct)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("control socket %s: %s %s: bad answer: %w", c.Socket, method, path, err)
	}
	return nil
}

func volumePath(name, op string) string {
	p := "/v1/volumes/" + url.PathEscape(name)
	if op != "" {
		p += "/" + op
	}
	return p
}

// WaitReady waits until a server answers on the socket, for at most d: a
// script may start `vdisk serve --control` in the background and go on at
// once. Only "nothing answers" is retried; other errors return at once.
func (c *Client) WaitReady(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		_, err := c.Volumes(ctx)
		if err == nil || !errors.Is(err, ErrNoServer) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waited %v: %w", d, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Exports lists the exports being served.
func (c *Client) Exports(ctx context.Context) ([]ExportStatus, error) {
	var out struct {
		Exports []ExportStatus `json:"exports"`
	}
	err := c.call(ctx, http.MethodGet, "/v1/exports", nil, &out)
	return out.Exports, err
}

// Volumes lists the volumes and their mount state.
func (c *Client) Volumes(ctx context.Context) ([]VolumeStatus, error) {
	var out struct {
		Volumes []VolumeStatus `json:"volumes"`
	}
	err := c.call(ctx, http.MethodGet, "/v1/volumes", nil, &out)
	return out.Volumes, err
}

// Volume returns one volume's state.
func (c *Client) Volume(ctx context.Context, name string) (VolumeStatus, error) {
	var out VolumeStatus
	err := c.call(ctx, http.MethodGet, volumePath(name, ""), nil, &out)
	return out, err
}

// Mount mounts the named volume (`disk@1`) in the server.
func (c *Client) Mount(ctx context.Context, name string) (VolumeStatus, error) {
	var out VolumeStatus
	err := c.call(ctx, http.MethodPost, volumePath(name, "mount"), nil, &out)
	return out, err
}

// Dismount flushes and dismounts the named volume; force dismounts it even
// with files open (their handles then fail).
func (c *Client) Dismount(ctx context.Context, name string, force bool) (VolumeStatus, error) {
	var out VolumeStatus
	err := c.call(ctx, http.MethodPost, volumePath(name, "dismount"), dismountRequest{Force: force}, &out)
	return out, err
}

// Lock has the server lock the volume (FSCTL_LOCK_VOLUME) until Unlock:
// other opens are refused meanwhile.
func (c *Client) Lock(ctx context.Context, name string) (VolumeStatus, error) {
	var out VolumeStatus
	err := c.call(ctx, http.MethodPost, volumePath(name, "lock"), nil, &out)
	return out, err
}

// Unlock gives back a lock taken with Lock.
func (c *Client) Unlock(ctx context.Context, name string) (VolumeStatus, error) {
	var out VolumeStatus
	err := c.call(ctx, http.MethodPost, volumePath(name, "unlock"), nil, &out)
	return out, err
}

func filesPath(volume, name string) string {
	var parts []string
	for _, p := range strings.Split(strings.Trim(name, "/"), "/") {
		if p != "" {
			parts = append(parts, url.PathEscape(p))
		}
	}
	return volumePath(volume, "files") + "/" + strings.Join(parts, "/")
}

// WriteFile writes r to the file name (slash-separated) on the mounted
// volume, creating missing parent directories, and returns its size.
func (c *Client) WriteFile(ctx context.Context, volume, name string, r io.Reader) (int64, error) {
	resp, err := c.do(ctx, http.MethodPut, filesPath(volume, name), r, "application/octet-stream")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var fe FileEntry
	if err := json.NewDecoder(resp.Body).Decode(&fe); err != nil {
		return 0, fmt.Errorf("control socket %s: write %s:/%s: bad answer: %w", c.Socket, volume, name, err)
	}
	return fe.Size, nil
}

// ReadFile returns the contents of the file name on the volume.
func (c *Client) ReadFile(ctx context.Context, volume, name string) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, filesPath(volume, name), nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return nil, &Error{StatusCode: http.StatusBadRequest, Message: fmt.Sprintf("%s:/%s is a directory", volume, name)}
	}
	return io.ReadAll(resp.Body)
}

// Filters lists the loaded filters.
func (c *Client) Filters(ctx context.Context) ([]FilterInfo, error) {
	var out struct {
		Filters []FilterInfo `json:"filters"`
	}
	err := c.call(ctx, http.MethodGet, "/v1/filters", nil, &out)
	return out.Filters, err
}

// AttachFilter loads a built-in filter (`NAME[:key=value,...]`) into the
// running server.
func (c *Client) AttachFilter(ctx context.Context, spec string) (FilterInfo, error) {
	var out FilterInfo
	err := c.call(ctx, http.MethodPost, "/v1/filters", attachRequest{Spec: spec}, &out)
	return out, err
}

// DetachFilter unloads the filter with that ID (or the only one with that
// name); a disk filter with another device above it is refused (detach is
// last in, first out).
func (c *Client) DetachFilter(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/v1/filters/"+url.PathEscape(id), nil, nil)
}

// Stack describes the server's device stacks.
func (c *Client) Stack(ctx context.Context) (stackview.Info, error) {
	var out stackview.Info
	err := c.call(ctx, http.MethodGet, "/v1/stack", nil, &out)
	return out, err
}

// MonitorOptions choose what a monitor stream carries.
type MonitorOptions struct {
	// From is the first sequence number wanted (records the ring dropped
	// are skipped); 0 means only records added from now on.
	From uint64
	// NoFollow ends the stream after the records the server holds now,
	// instead of waiting for new ones.
	NoFollow bool
}

// Monitor streams monitor records to fn until ctx ends (nil is returned),
// the server ends the stream (nil), the connection fails, or fn returns an
// error (which is returned). A jump in Seq between two records is where the
// ring dropped records.
func (c *Client) Monitor(ctx context.Context, opts MonitorOptions, fn func(monitor.Record) error) error {
	q := url.Values{}
	if opts.From > 0 {
		q.Set("from", strconv.FormatUint(opts.From, 10))
	}
	if opts.NoFollow {
		q.Set("follow", "false")
	}
	p := "/v1/monitor"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	resp, err := c.do(ctx, http.MethodGet, p, nil, "")
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	sc.Split(scanRecords)
	for sc.Scan() {
		var rec monitor.Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return fmt.Errorf("control socket %s: monitor: bad record %q: %w", c.Socket, sc.Text(), err)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("control socket %s: monitor: %w", c.Socket, err)
	}
	return nil
}

// errCutRecord ends a monitor stream that stopped in the middle of a record.
var errCutRecord = errors.New("the stream ended in the middle of a record")

// scanRecords splits a monitor stream into its JSON lines. Unlike
// bufio.ScanLines it never returns a last line without its newline: the
// Scanner offers the data it holds when a read fails (a cancelled context
// closing the body, a connection cut), and such a line is a record cut
// short, not a bad one.
func scanRecords(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return 0, nil, errCutRecord
	}
	return 0, nil, nil
}
