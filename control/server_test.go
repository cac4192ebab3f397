package control_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/control"
	"github.com/vdisk-dev/vdisk/export"
	"github.com/vdisk-dev/vdisk/filter/monitor"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
	"github.com/vdisk-dev/vdisk/nbd"
	"github.com/vdisk-dev/vdisk/stackview"
)

// controlFixture is a System serving an image with two FAT16 partitions
// over NBD (shared exports: writers claim volumes per connection) with a
// control server on a unix socket.
type controlFixture struct {
	sys    *vdisk.System
	client *control.Client
	sock   string
	uri    string // nbd://127.0.0.1:PORT

	mu      sync.Mutex
	refused []string // messages of refused NBD writes
}

func newControlFixture(t *testing.T, opts vdisk.Options, specs ...string) *controlFixture {
	t.Helper()
	f := &controlFixture{}
	f.sys = testworld.FilterSystem(t, opts, testworld.ControlImage(t, t.TempDir()), specs...)
	exports := testworld.Exports(t, f.sys, false, export.ClaimPerConnection)
	for _, e := range exports {
		e.Device.(*export.Device).Refused = func(_ *nbd.Request, err error) {
			f.mu.Lock()
			f.refused = append(f.refused, err.Error())
			f.mu.Unlock()
		}
	}
	// Registered before testworld.Serve's cleanup, so it runs after it: the
	// server drains its connections before the control server dismounts.
	_, f.sock, _ = testworld.ServeControl(t, f.sys, exports)
	f.uri = testworld.Serve(t, exports, nil)
	f.client = control.NewClient(f.sock)
	t.Cleanup(f.client.Close)
	return f
}

func (f *controlFixture) deviceCount(t *testing.T) int {
	t.Helper()
	st, err := f.client.Stack(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(st.Devices)
}

// wantStatus checks that err is a control API error with the HTTP status
// and a message naming every word.
func wantStatus(t *testing.T, what string, err error, code int, words ...string) {
	t.Helper()
	var ce *control.Error
	if !errors.As(err, &ce) || ce.StatusCode != code {
		t.Fatalf("%s: %v, want a control error with status %d", what, err, code)
	}
	for _, w := range words {
		if !strings.Contains(ce.Message, w) {
			t.Errorf("%s: message %q does not say %q", what, ce.Message, w)
		}
	}
}

// TestControlSocketIsPrivateAndStaleOnesAreReplaced: the socket is created
// with mode 0600; a live socket is not taken over, a stale one is replaced,
// anything else is left alone; closing the listener removes the socket.
func TestControlSocketIsPrivateAndStaleOnesAreReplaced(t *testing.T) {
	t.Parallel()
	sock := testsupport.SocketPath(t)
	l, err := control.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("control socket: %v %v, want a socket with mode 0600", fi.Mode(), err)
	}
	if _, err := control.Listen(sock); err == nil || !strings.Contains(err.Error(), "another server") {
		t.Fatalf("listening on a live socket: %v", err)
	}
	l.Close()
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket not removed on close: %v", err)
	}

	// A server that died leaves its socket file behind.
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	l, err = control.Listen(sock)
	if err != nil {
		t.Fatalf("replacing a stale socket: %v", err)
	}
	l.Close()

	if err := os.WriteFile(sock, []byte("not a socket"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := control.Listen(sock); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("listening over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(sock); string(b) != "not a socket" {
		t.Fatal("the regular file was replaced")
	}

	// Nothing answers: the client says so.
	os.Remove(sock)
	_, err = control.NewClient(sock).Volumes(context.Background())
	if !errors.Is(err, control.ErrNoServer) || !strings.Contains(err.Error(), sock) {
		t.Fatalf("client without a server: %v", err)
	}
}

// TestControlMountAttachesFilterAndDismountDeletesIt: mounting through the
// API makes the FAT file system claim the volume and the filter manager's
// frame attach above its volume device (the mount-completion capture);
// files written through the API read back; a lock held by the API keeps
// others out; dismounting deletes the file system's and the filter's
// devices, so the device count is back where it was.
func TestControlMountAttachesFilterAndDismountDeletesIt(t *testing.T) {
	t.Parallel()
	f := newControlFixture(t, vdisk.Options{Requestor: "test"}, "monitor")
	ctx := context.Background()
	before := f.deviceCount(t)

	vs, err := f.client.Mount(ctx, "ctl@1")
	if err != nil {
		t.Fatal(err)
	}
	if !vs.Mounted || vs.FileSystem != `\FileSystem\Fat` || vs.Label != "ONE" {
		t.Fatalf("after mount: %+v", vs)
	}
	st, err := f.client.Stack(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]stackview.DeviceInfo{}
	for _, d := range st.Devices {
		byName[d.Name] = d
	}
	vol := byName[vs.Device]
	if vol.VPB == nil || !vol.VPB.Mounted || byName[vol.VPB.VolumeDevice].Driver != `\FileSystem\Fat` {
		t.Fatalf("storage volume %s in the stack: %+v", vs.Device, vol)
	}
	fatDev := vol.VPB.VolumeDevice
	var frames []string
	for _, d := range st.Devices {
		if d.Driver == `\FileSystem\Filters\FltMgr` && d.AttachedTo == fatDev {
			frames = append(frames, d.Name)
		}
	}
	if len(frames) != 1 {
		t.Fatalf("filter manager frames attached to the FAT volume device %s: %v\n%+v", fatDev, frames, st.Devices)
	}
	if got := f.deviceCount(t); got != before+2 {
		t.Errorf("mount added %d devices, want 2 (the FAT volume device and the frame)", got-before)
	}

	data := []byte("written through the control API\n")
	if n, err := f.client.WriteFile(ctx, "ctl@1", "/dir/sub/hello.txt", strings.NewReader(string(data))); err != nil || n != int64(len(data)) {
		t.Fatalf("WriteFile: %d, %v", n, err)
	}
	if got, err := f.client.ReadFile(ctx, "ctl@1", "dir/sub/hello.txt"); err != nil || string(got) != string(data) {
		t.Fatalf("ReadFile: %q, %v", got, err)
	}
	_, err = f.client.ReadFile(ctx, "ctl@1", "missing.txt")
	wantStatus(t, "reading a missing file", err, http.StatusNotFound, "missing.txt")

	if vs, err := f.client.Lock(ctx, "ctl@1"); err != nil || !vs.Locked {
		t.Fatalf("lock: %+v, %v", vs, err)
	}
	_, err = f.client.WriteFile(ctx, "ctl@1", "locked.txt", strings.NewReader("x"))
	wantStatus(t, "writing to a locked volume", err, http.StatusConflict, "locked.txt")
	_, err = f.client.Lock(ctx, "ctl@1")
	wantStatus(t, "locking twice", err, http.StatusConflict, "ctl@1")
	if vs, err := f.client.Unlock(ctx, "ctl@1"); err != nil || vs.Locked {
		t.Fatalf("unlock: %+v, %v", vs, err)
	}
	if _, err := f.client.WriteFile(ctx, "ctl@1", "unlocked.txt", strings.NewReader("x")); err != nil {
		t.Fatalf("writing after unlock: %v", err)
	}

	if vs, err := f.client.Dismount(ctx, "ctl@1", false); err != nil || vs.Mounted {
		t.Fatalf("dismount: %+v, %v", vs, err)
	}
	if got := f.deviceCount(t); got != before {
		t.Fatalf("device count after dismount %d, want %d as before the mount", got, before)
	}
	_, err = f.client.Dismount(ctx, "ctl@1", false)
	wantStatus(t, "dismounting twice", err, http.StatusConflict, "not mounted")
	_, err = f.client.Mount(ctx, "nosuch@1")
	wantStatus(t, "mounting an unknown volume", err, http.StatusNotFound, "nosuch")
	_, err = f.client.Mount(ctx, "ctl@9")
	wantStatus(t, "mounting a missing partition", err, http.StatusNotFound, "9")

	// The data survived the dismount: a fresh mount reads it back.
	if got, err := f.client.ReadFile(ctx, "ctl@1", "dir/sub/hello.txt"); err != nil || string(got) != string(data) {
		t.Fatalf("ReadFile after remount: %q, %v", got, err)
	}
}

// TestControlFilterDetachIsLastInFirstOut: disk filters attached at run
// time stack up on the disk; the lower one cannot leave while the upper is
// above it; minifilters leave at once; the devices go with them.
func TestControlFilterDetachIsLastInFirstOut(t *testing.T) {
	t.Parallel()
	f := newControlFixture(t, vdisk.Options{Requestor: "test"})
	ctx := context.Background()
	before := f.deviceCount(t)
	lower, err := f.client.AttachFilter(ctx, "trace")
	if err != nil {
		t.Fatal(err)
	}
	upper, err := f.client.AttachFilter(ctx, "passthrough")
	if err != nil {
		t.Fatal(err)
	}
	if lower.ID == upper.ID || lower.Kind != "disk" || len(lower.Devices) != 1 || lower.Devices[0].On != `\Device\Harddisk0\DR0` {
		t.Fatalf("attached: %+v and %+v", lower, upper)
	}
	if _, err := f.client.AttachFilter(ctx, "monitor"); err != nil {
		t.Fatal(err)
	}
	list, err := f.client.Filters(ctx)
	if err != nil || len(list) != 3 || list[0].ID != lower.ID || list[1].ID != upper.ID || list[2].Kind != "minifilter" {
		t.Fatalf("filter list: %+v, %v", list, err)
	}
	if list[0].Devices[0].Below == "" {
		t.Errorf("the lower filter's device does not show the device above it: %+v", list[0])
	}
	// Reads through the stack still work with the filters in it.
	if _, err := f.client.ReadFile(ctx, "ctl@2", "/"); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("reading the root directory as a file: %v", err)
	}

	err = f.client.DetachFilter(ctx, lower.ID)
	wantStatus(t, "detaching the lower disk filter", err, http.StatusConflict, lower.ID, "detach "+upper.ID+" first", "last in, first out")
	err = f.client.DetachFilter(ctx, "nosuch")
	wantStatus(t, "detaching an unknown filter", err, http.StatusNotFound, "nosuch", lower.ID)
	_, err = f.client.AttachFilter(ctx, "nosuch")
	wantStatus(t, "attaching an unknown filter", err, http.StatusBadRequest, "nosuch")
	for _, id := range []string{upper.ID, lower.ID, "monitor"} {
		if err := f.client.DetachFilter(ctx, id); err != nil {
			t.Fatalf("detach %s: %v", id, err)
		}
	}
	if list, err := f.client.Filters(ctx); err != nil || len(list) != 0 {
		t.Fatalf("filters after detaching all: %+v, %v", list, err)
	}
	// The filter manager's control-device frames stay (it is loaded once);
	// every disk filter device is gone.
	st, err := f.client.Stack(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range st.Devices {
		if strings.HasPrefix(d.Driver, `\Driver\trace`) || strings.HasPrefix(d.Driver, `\Driver\passthrough`) {
			t.Errorf("disk filter device left: %+v", d)
		}
	}
	if len(st.Devices) < before {
		t.Errorf("device count %d, fewer than the %d before", len(st.Devices), before)
	}
}

// nbdshHold starts nbdsh on uri running script, then waiting on its stdin;
// it returns once the script printed "ready", and a function that ends the
// client (closing its connection) and waits for it.
func nbdshHold(t *testing.T, py, uri, script string) (stop func()) {
	t.Helper()
	cmd := exec.Command(py, "-m", "nbd", "-u", uri, "-c", testworld.NbdshPrelude+script+"\nprint(\"ready\", flush=True)\nsys.stdin.read()\n")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := testsupport.Start(t, cmd)
	stop = sync.OnceFunc(func() {
		stdin.Close()
		select {
		case <-p.Done():
		case <-time.After(testsupport.DefaultTimeout):
			cmd.Process.Kill()
			<-p.Done()
		}
	})
	t.Cleanup(stop)
	p.WaitFor(t, "ready", testsupport.DefaultTimeout, func() bool { return len(p.Stdout()) >= len("ready\n") })
	if s := p.Stdout(); s != "ready\n" {
		stop()
		t.Fatalf("nbdsh on %s: %q\n%s", uri, s, p.Stderr())
	}
	return stop
}

// TestControlMountAndNBDWritesExcludeEachOther: a writable NBD export and
// an in-process mount of the same partition never coexist. While a volume
// is mounted, NBD writes to it (through its own export or the whole disk)
// fail with EPERM and the server says why; reads go on. While an NBD
// client that wrote to a volume is connected, mounting the volume is
// refused with a message naming the NBD writer; once it disconnects, the
// mount succeeds.
func TestControlMountAndNBDWritesExcludeEachOther(t *testing.T) {
	t.Parallel()
	py := testsupport.NeedNbdsh(t)
	f := newControlFixture(t, vdisk.Options{Requestor: "test"})
	ctx := context.Background()

	if _, err := f.client.Mount(ctx, "ctl@1"); err != nil {
		t.Fatal(err)
	}
	got := testworld.Nbdsh(t, py, f.uri+"/ctl@1", `
w = tryop(h.pwrite, b"x" * 4096, 8192)
r = tryop(h.pread, 4096, 0)
print(json.dumps({"w": w, "r": r}))
`)
	testworld.Expect(t, "NBD on the mounted ctl@1", got, map[string]any{"w": "EPERM", "r": "ok"})
	got = testworld.Nbdsh(t, py, f.uri+"/ctl", `
w = tryop(h.pwrite, b"x" * 512, 0)
print(json.dumps({"w": w}))
`)
	testworld.Expect(t, "NBD on the whole disk with ctl@1 mounted", got, map[string]any{"w": "EPERM"})
	f.mu.Lock()
	refused := append([]string(nil), f.refused...)
	f.mu.Unlock()
	if len(refused) != 2 || !strings.Contains(refused[0], "ctl@1") || !strings.Contains(refused[0], "mounted") {
		t.Errorf("refused writes reported: %q", refused)
	}

	// The other way: a connected writer keeps ctl@2 from being mounted.
	stop := nbdshHold(t, py, f.uri+"/ctl@2", `h.pwrite(b"w" * 4096, 1 << 20)`)
	if vs, err := f.client.Volume(ctx, "ctl@2"); err != nil || vs.ExportWriters != 1 {
		t.Fatalf("ctl@2 with a connected NBD writer: %+v, %v", vs, err)
	}
	_, err := f.client.Mount(ctx, "ctl@2")
	wantStatus(t, "mounting ctl@2 while an NBD client writes to it", err, http.StatusConflict, "ctl@2", "NBD", "exported writable")
	stop()
	// The server notices the disconnection on its own time: wait for it.
	deadline := time.Now().Add(testsupport.DefaultTimeout)
	for {
		vs, err := f.client.Volume(ctx, "ctl@2")
		if err != nil {
			t.Fatal(err)
		}
		if vs.ExportWriters == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the NBD writer's claim on ctl@2 outlived its connection: %+v", vs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if vs, err := f.client.Mount(ctx, "ctl@2"); err != nil || !vs.Mounted {
		t.Fatalf("mount after the writer left: %+v, %v", vs, err)
	}
	exports, err := f.client.Exports(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range exports {
		if e.Name == "ctl" && (len(e.Volumes) != 2 || e.Writers != 0 || e.ReadOnly) {
			t.Errorf("export ctl: %+v", e)
		}
	}
}

// TestControlMonitorStreamShowsNBDWrites: the monitor stream carries the
// disk trace of an NBD client's write, with increasing sequence numbers;
// asking for records the ring no longer holds starts after a gap.
func TestControlMonitorStreamShowsNBDWrites(t *testing.T) {
	t.Parallel()
	py := testsupport.NeedNbdsh(t)
	f := newControlFixture(t, vdisk.Options{Requestor: "test", RingSize: 64}, "monitor", "trace")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	recs := make(chan monitor.Record, 1024)
	streamErr := make(chan error, 1)
	go func() {
		streamErr <- f.client.Monitor(ctx, control.MonitorOptions{From: 1}, func(r monitor.Record) error {
			select {
			case recs <- r:
			default: // the test stopped reading
			}
			return nil
		})
	}()
	testworld.Nbdsh(t, py, f.uri+"/ctl@2", `
h.pwrite(b"m" * 4096, 12288)
print(json.dumps({}))
`)
	var last uint64
	timeout := time.After(testsupport.DefaultTimeout)
	for found := false; !found; {
		select {
		case r := <-recs:
			if r.Seq <= last {
				t.Fatalf("sequence numbers not increasing: %d after %d", r.Seq, last)
			}
			last = r.Seq
			found = r.Operation == "IRP_MJ_WRITE" && r.Layer == "disk" && r.Length == 4096 &&
				strings.HasPrefix(r.Requestor, "127.0.0.1:") && r.Status == "STATUS_SUCCESS"
		case err := <-streamErr:
			t.Fatalf("monitor stream ended: %v", err)
		case <-timeout:
			t.Fatal("the NBD write did not show in the monitor stream")
		}
	}
	cancel()
	if err := <-streamErr; err != nil {
		t.Fatalf("monitor stream after cancel: %v", err)
	}

	// Overflow the 64-record ring through the file system, then ask for
	// everything from sequence number 1: the stream starts after a gap.
	if _, err := f.client.Mount(context.Background(), "ctl@1"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, err := f.client.WriteFile(context.Background(), "ctl@1", "f.txt", strings.NewReader("data")); err != nil {
			t.Fatal(err)
		}
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	var first monitor.Record
	errStop := errors.New("got one")
	err := f.client.Monitor(ctx2, control.MonitorOptions{From: 1}, func(r monitor.Record) error { first = r; return errStop })
	if !errors.Is(err, errStop) || first.Seq <= 1 || first.Seq <= last {
		t.Fatalf("first record from an overflowed ring: seq %d (%v), want a gap after 1 and %d", first.Seq, err, last)
	}
}

// TestControlDismountRefusedWithFilesOpenUnlessForced: while an upload
// holds a file open on the volume, a dismount is refused, naming the open
// files; a forced one succeeds, the upload then fails, and once its handle
// is closed the file system's devices are gone.
func TestControlDismountRefusedWithFilesOpenUnlessForced(t *testing.T) {
	t.Parallel()
	f := newControlFixture(t, vdisk.Options{Requestor: "test"}, "monitor")
	ctx := context.Background()
	before := f.deviceCount(t)
	if _, err := f.client.Mount(ctx, "ctl@2"); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	uploaded := make(chan error, 1)
	go func() {
		_, err := f.client.WriteFile(context.Background(), "ctl@2", "open.bin", pr)
		uploaded <- err
	}()
	if _, err := pw.Write(make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(testsupport.DefaultTimeout)
	for {
		vs, err := f.client.Volume(ctx, "ctl@2")
		if err != nil {
			t.Fatal(err)
		}
		if vs.References > 0 {
			break // the upload's file is open
		}
		if time.Now().After(deadline) {
			t.Fatalf("the upload never opened its file: %+v", vs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, err := f.client.Dismount(ctx, "ctl@2", false)
	wantStatus(t, "dismount with a file open", err, http.StatusConflict, "ctl@2", "files are open", "force")
	if vs, err := f.client.Dismount(ctx, "ctl@2", true); err != nil || vs.Mounted {
		t.Fatalf("forced dismount: %+v, %v", vs, err)
	}
	if _, err := pw.Write(make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-uploaded; err == nil || !strings.Contains(err.Error(), "open.bin") {
		t.Fatalf("upload across a forced dismount: %v, want an error naming the file", err)
	}
	if got := f.deviceCount(t); got != before {
		t.Fatalf("device count %d after the last handle closed, want %d", got, before)
	}
}

// TestControlMonitorCancelMidRecordIsNoError: a monitor stream cut by the
// caller's context in the middle of a record ends without error, like any
// other cancel; the partial line is not a record. (bufio.Scanner hands a
// last line without its newline to the caller when the read fails, which
// TestStress saw as "bad record" when it stopped following the stream.)
func TestControlMonitorCancelMidRecordIsNoError(t *testing.T) {
	t.Parallel()
	sock := testsupport.SocketPath(t)
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, `{"seq":1,"operation":"IRP_MJ_READ"}`+"\n"+`{"seq":2,"operation":"IRP_MJ_WR`)
		w.(http.Flusher).Flush()
		select { // the rest of the record never comes while the client listens
		case <-r.Context().Done():
		case <-release:
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { close(release); srv.Close() })
	c := control.NewClient(sock)
	t.Cleanup(c.Close)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []uint64
	err = c.Monitor(ctx, control.MonitorOptions{}, func(r monitor.Record) error {
		got = append(got, r.Seq)
		cancel() // stop following after the first record
		return nil
	})
	if err != nil || len(got) != 1 || got[0] != 1 {
		t.Fatalf("monitor cancelled mid-record: records %v, %v; want record 1 and no error", got, err)
	}
}
