//go:build rbd

package disk

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk/internal/testsupport/rbdtest"
)

// Hooks for the driver-level RBD tests of package disk_test.
var (
	NewTestRBD  = newTestRBD
	RBDDiffData = rbdDiffData
	DataExtents = dataExtents
)

// The Store contract, with each subtest on its own new image.
func TestRBDStore(t *testing.T) {
	runStoreSuite(t, func(t *testing.T, size int64) Store { return newTestRBD(t, size) })
}

// Close while requests are in flight waits for them, and requests after it
// fail with fs.ErrClosed: librbd's handle is never used after it is closed
// (which would crash the process, not fail a test).
func TestRBDCloseDuringIO(t *testing.T) {
	s := newTestRBD(t, 8<<20)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			p := make([]byte, 64<<10)
			for i := 0; ; i++ {
				off := int64((g*97+i)%120) * int64(len(p))
				var err error
				switch i % 4 {
				case 0:
					_, err = s.WriteAt(p, off)
				case 1:
					err = s.WriteZeroes(off, int64(len(p)), 0)
				case 2:
					_, err = s.Allocation(off, int64(len(p)))
				default:
					_, err = s.ReadAt(p, off)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, fs.ErrClosed) {
			t.Errorf("request racing Close failed with %v, want fs.ErrClosed", err)
		}
	}
}

// rbdExport is the image (or snapshot) as `rbd export` reads it: Ceph's
// own view of the bytes, the oracle for what vdisk wrote.
func rbdExport(t testing.TB, spec RBDSpec) []byte {
	t.Helper()
	return rbdtest.Tool(t, "rbd", "export", "--no-progress", strings.TrimPrefix(spec.String(), RBDPrefix), "-")
}

// Writes through the store are what rbd export reads, once flushed; a
// snapshot taken meanwhile keeps what was there, reads back as itself
// through a read-only store, and refuses writes.
func TestRBDStoreMatchesRBDExport(t *testing.T) {
	const size = 12<<20 + 4096 // three 4 MiB objects and a bit of a fourth
	s := newTestRBD(t, size)
	model := make([]byte, size)
	r := rand.New(rand.NewPCG(11, 12))
	for _, w := range []struct{ off, n int }{{0, 4096}, {4<<20 - 100, 200}, {9 << 20, 3 << 20}, {size - 1, 1}} {
		p := randBytes(r, w.n)
		if _, err := s.WriteAt(p, int64(w.off)); err != nil {
			t.Fatal(err)
		}
		copy(model[w.off:], p)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := rbdExport(t, s.Spec()); !bytes.Equal(got, model) {
		t.Fatalf("rbd export differs from what was written, first at byte %d", firstDiff(got, model))
	}

	snap := s.Spec()
	snap.Snap = "before"
	if err := SnapshotRBD(snap, false, testRBDOptions(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteAt(bytes.Repeat([]byte{0xAA}, 8192), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenRBD(snap, testRBDOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if !ro.ReadOnly() || ro.Size() != size {
		t.Fatalf("snapshot store: read-only %v, size %d", ro.ReadOnly(), ro.Size())
	}
	checkAll(t, ro, model)
	if got := rbdExport(t, snap); !bytes.Equal(got, model) {
		t.Fatal("rbd export of the snapshot does not hold the data from before it")
	}
	if _, err := ro.WriteAt([]byte{1}, 0); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("write to a snapshot = %v, want ErrReadOnly", err)
	}
	if err := ZeroRange(ro, 0, 512, 0); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("zeroing a snapshot = %v, want ErrReadOnly", err)
	}
	// Two read-only opens of one snapshot share it; no lock is involved.
	ro2, err := OpenRBD(snap, testRBDOptions(t))
	if err != nil {
		t.Fatalf("a second read-only open of the snapshot: %v", err)
	}
	ro2.Close()
}

// A clone's allocation is its own writes and its parent's data together,
// whatever order librbd reports them in: a sparse golden image, a clone
// written between and over the golden's extents, and every byte that is
// not zero lies in a data extent (and the extents are rbd diff's).
func TestRBDCloneAllocation(t *testing.T) {
	opts := testRBDOptions(t)
	const size = 32 << 20
	golden := newTestRBD(t, size)
	model := make([]byte, size)
	write := func(s *RBDStore, off, n int64, b byte) {
		t.Helper()
		p := bytes.Repeat([]byte{b}, int(n))
		if _, err := s.WriteAt(p, off); err != nil {
			t.Fatal(err)
		}
		copy(model[off:], p)
	}
	write(golden, 8<<20, 4096, 1)  // object 2
	write(golden, 24<<20, 4096, 2) // object 6
	if err := golden.Close(); err != nil {
		t.Fatal(err)
	}
	snap := golden.Spec()
	snap.Snap = "base"
	if err := SnapshotRBD(snap, true, opts); err != nil {
		t.Fatal(err)
	}
	child := uniqueImage(t)
	if err := CloneRBD(snap, child, opts); err != nil {
		t.Fatal(err)
	}
	s, err := OpenRBD(child, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	write(s, 0, 4096, 3)        // object 0, before the parent's data
	write(s, 16<<20, 4096, 4)   // object 4, between the parent's extents
	write(s, 24<<20+8192, 1, 5) // object 6, over the parent's data
	write(s, 31<<20, 4096, 6)   // object 7, after it
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	checkAll(t, s, model)
	ext := checkExtents(t, s, 0, size)
	got := dataExtents(ext)
	for i, b := range model {
		in := false
		for _, e := range got {
			in = in || int64(i) >= e[0] && int64(i) < e[0]+e[1]
		}
		if b != 0 && !in {
			t.Fatalf("byte %d holds data but lies in no data extent of %v", i, got)
		}
	}
	if want := rbdDiffData(t, child, true); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("clone's Allocation %v, rbd diff --whole-object %v", got, want)
	}
	t.Logf("clone allocation: %v", got)
}

// An image in a namespace of the pool (rbd:POOL/NAMESPACE/IMAGE) is
// created, written and read there, as rbd export of POOL/NAMESPACE/IMAGE
// sees it.
func TestRBDNamespace(t *testing.T) {
	opts := testRBDOptions(t)
	ns := strings.ToLower(rbdtest.Image(t))
	rbdtest.Tool(t, "rbd", "namespace", "create", rbdtest.Pool+"/"+ns)
	spec, err := ParseRBD("rbd:" + rbdtest.Pool + "/" + ns + "/disk")
	if err != nil {
		t.Fatal(err)
	}
	if err := CreateRBD(spec, 1<<20, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenRBD(RBDSpec{Pool: rbdtest.Pool, Image: "disk"}, opts); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the image is also outside its namespace (open = %v)", err)
	}
	s, err := OpenRBD(spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := randBytes(rand.New(rand.NewPCG(41, 42)), 1<<20)
	if _, err := s.WriteAt(want, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := rbdExport(t, spec); !bytes.Equal(got, want) {
		t.Fatal("rbd export of the namespaced image differs from what was written")
	}
}

// rbdDiffData is `rbd diff` of the image (with --whole-object if whole):
// its extents holding data, adjacent ones merged.
func rbdDiffData(t testing.TB, spec RBDSpec, whole bool) [][2]int64 {
	t.Helper()
	var ext []Extent
	for _, d := range rbdtest.Diff(t, strings.TrimPrefix(spec.String(), RBDPrefix), whole) {
		ext = appendExtent(ext, Extent{Offset: d.Offset, Length: d.Length, Hole: !d.Data})
	}
	return dataExtents(ext)
}

// dataExtents lists the extents of ext that hold data, as offset and
// length pairs.
func dataExtents(ext []Extent) [][2]int64 {
	var out [][2]int64
	for _, e := range ext {
		if !e.Hole {
			out = append(out, [2]int64{e.Offset, e.Length})
		}
	}
	return out
}

// Opening what is not there, or cannot be reached, fails with an error
// that says so, in bounded time.
func TestRBDOpenErrors(t *testing.T) {
	opts := testRBDOptions(t)
	missing := uniqueImage(t)
	if _, err := OpenRBD(missing, opts); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing.String()) {
		t.Errorf("open of a missing image = %v, want fs.ErrNotExist naming it", err)
	}
	noPool := RBDSpec{Pool: "no-such-pool", Image: "x"}
	if _, err := OpenRBD(noPool, opts); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "no-such-pool") {
		t.Errorf("open in a missing pool = %v, want fs.ErrNotExist naming the pool", err)
	}
	noConf := filepath.Join(t.TempDir(), "none.conf")
	if _, err := OpenRBD(missing, RBDOptions{ConfFile: noConf}); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), noConf) {
		t.Errorf("open with a missing ceph.conf = %v, want fs.ErrNotExist naming the file", err)
	}
	// A monitor address where nothing listens: the open gives up after
	// ConnectTimeout instead of hanging.
	dead := filepath.Join(t.TempDir(), "dead.conf")
	if err := os.WriteFile(dead, []byte("[global]\nmon host = 127.0.0.1:1\nauth client required = none\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenRBD(missing, RBDOptions{ConfFile: dead, ConnectTimeout: 2 * time.Second}); err == nil ||
		!strings.Contains(err.Error(), "connect to the Ceph cluster") {
		t.Errorf("open against an unreachable monitor = %v, want a connect error", err)
	}

	spec := uniqueImage(t)
	if err := CreateRBD(spec, 1<<20, opts); err != nil {
		t.Fatal(err)
	}
	if err := CreateRBD(spec, 1<<20, opts); !errors.Is(err, fs.ErrExist) {
		t.Errorf("creating an existing image = %v, want fs.ErrExist", err)
	}
	if err := SnapshotRBD(RBDSpec{Pool: rbdtest.Pool, Image: missing.Image, Snap: "s"}, true, opts); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("snapshot of a missing image = %v, want fs.ErrNotExist", err)
	}
	if _, err := OpenRBD(RBDSpec{Pool: rbdtest.Pool, Image: spec.Image, Snap: "nosnap"}, opts); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("open of a missing snapshot = %v, want fs.ErrNotExist", err)
	}

	// An image without the exclusive-lock feature cannot promise a single
	// writer: a writable open refuses it and says how to fix it; a
	// read-only open is fine.
	bare := uniqueImage(t)
	rbdtest.Tool(t, "rbd", "create", "--size", "1M", "--image-feature", "layering", strings.TrimPrefix(bare.String(), RBDPrefix))
	if _, err := OpenRBD(bare, opts); err == nil || !strings.Contains(err.Error(), "rbd feature enable") {
		t.Errorf("writable open without exclusive-lock = %v, want a refusal saying how to enable it", err)
	}
	roOpts := opts
	roOpts.ReadOnly = true
	ro, err := OpenRBD(bare, roOpts)
	if err != nil {
		t.Fatalf("read-only open without exclusive-lock: %v", err)
	}
	ro.Close()
}

// An image without fast-diff (but with exclusive-lock, so it opens
// writable) answers allocation queries per written range, as plain
// `rbd diff` lists them.
func TestRBDAllocationWithoutFastDiff(t *testing.T) {
	opts := testRBDOptions(t)
	spec := uniqueImage(t)
	rbdtest.Tool(t, "rbd", "create", "--size", "16M", "--image-feature", "layering,exclusive-lock", strings.TrimPrefix(spec.String(), RBDPrefix))
	s, err := OpenRBD(spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, off := range []int64{4096, 9<<20 + 512} {
		if _, err := s.WriteAt(bytes.Repeat([]byte{1}, 1024), off); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	ext := checkExtents(t, s, 0, s.Size())
	got, want := dataExtents(ext), rbdDiffData(t, spec, false)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Allocation %v, rbd diff %v", got, want)
	}
	if whole := rbdDiffData(t, spec, true); fmt.Sprint(got) == fmt.Sprint(whole) {
		t.Fatalf("Allocation %v is per object, as rbd diff --whole-object lists it; want per written range", got)
	}
}

// The holder process of the lock tests.
type rbdHolder struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	client string
}

// startRBDHolder starts a process that opens spec writable and holds it.
func startRBDHolder(t *testing.T, spec RBDSpec) *rbdHolder {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), rbdHelperEnv+"="+rbdtest.Conf(t)+"|"+spec.String())
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	h := &rbdHolder{cmd: cmd, in: in, out: bufio.NewScanner(outPipe)}
	line := h.line(t)
	client, ok := strings.CutPrefix(line, "holding ")
	if !ok {
		t.Fatalf("holder process: %q", line)
	}
	h.client = client
	return h
}

func (h *rbdHolder) line(t *testing.T) string {
	t.Helper()
	if !h.out.Scan() {
		t.Fatalf("holder process ended: %v", h.out.Err())
	}
	return h.out.Text()
}

// write asks the holder to write and flush 4 KiB of b at off.
func (h *rbdHolder) write(t *testing.T, off int64, b byte) string {
	t.Helper()
	fmt.Fprintf(h.in, "write %d %d\n", off, b)
	return h.line(t)
}

// lockList is `rbd lock ls --format json`: lockers by id.
func lockList(t *testing.T, spec RBDSpec) string {
	return string(rbdtest.Tool(t, "rbd", "lock", "ls", "--format", "json", strings.TrimPrefix(spec.String(), RBDPrefix)))
}

// Two writers, one image: the second writable open fails at once naming
// the live holder, which goes on writing; readers are not kept out. When
// the holder is killed with SIGKILL, a new open waits while the dead
// client's watch on the image lasts (osd_client_watch_timeout); then
// librbd breaks the lock and blocklists the dead client, so nothing it had
// in flight can land later, and the open has the lock: RBD's broken-lock
// recovery.
func TestRBDSingleWriterAndDeadHolder(t *testing.T) {
	opts := testRBDOptions(t)
	spec := uniqueImage(t)
	if err := CreateRBD(spec, 4<<20, opts); err != nil {
		t.Fatal(err)
	}
	h := startRBDHolder(t, spec)
	if got := h.write(t, 0, 7); got != "ok" {
		t.Fatalf("holder's write: %s", got)
	}
	if ls := lockList(t, spec); !strings.Contains(ls, h.client) {
		t.Fatalf("rbd lock ls does not show the holder %s: %s", h.client, ls)
	}

	_, err := OpenRBD(spec, opts)
	var locked *RBDLockedError
	if !errors.As(err, &locked) || !errors.Is(err, ErrRBDLocked) {
		t.Fatalf("second writable open = %v, want an RBDLockedError", err)
	}
	if len(locked.Holders) != 1 || locked.Holders[0].Client != h.client || !locked.Holders[0].Watching ||
		!strings.Contains(err.Error(), h.client) || !strings.Contains(err.Error(), locked.Holders[0].Address) {
		t.Fatalf("second writable open names %+v (%v), want the live holder %s and its address", locked.Holders, err, h.client)
	}
	// The holder is undisturbed by the refused open.
	if got := h.write(t, 4096, 8); got != "ok" {
		t.Fatalf("holder's write after the refused open: %s", got)
	}
	// Readers are not writers.
	roOpts := opts
	roOpts.ReadOnly = true
	ro, err := OpenRBD(spec, roOpts)
	if err != nil {
		t.Fatalf("read-only open while another client holds the lock: %v", err)
	}
	got := make([]byte, 8192)
	if _, err := ro.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	ro.Close()
	if !bytes.Equal(got[:4096], bytes.Repeat([]byte{7}, 4096)) || !bytes.Equal(got[4096:], bytes.Repeat([]byte{8}, 4096)) {
		t.Fatal("a reader does not see the holder's flushed writes")
	}

	// Kill the holder as a crash would.
	if err := h.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	h.cmd.Wait()
	killed := time.Now()
	// The open asks the holder for the lock; no answer comes, and librbd
	// keeps asking until the OSDs drop the dead client's watch, then breaks
	// its lock. The open needs no LockWait for that.
	s, err := OpenRBD(spec, opts)
	if err != nil {
		t.Fatalf("writable open after the holder died: %v", err)
	}
	defer s.Close()
	t.Logf("lock taken over %.1fs after SIGKILL of the holder", time.Since(killed).Seconds())
	if ls := lockList(t, spec); !strings.Contains(ls, s.Client()) || strings.Contains(ls, h.client) {
		t.Fatalf("rbd lock ls after the takeover shows %s, want %s instead of %s", ls, s.Client(), h.client)
	}
	addr := locked.Holders[0].Address
	if bl := string(rbdtest.Tool(t, "ceph", "osd", "blocklist", "ls")); !strings.Contains(bl, addr) {
		t.Fatalf("the dead holder %s is not blocklisted: %s", addr, bl)
	}
	checkPrefix(t, s, []byte{7, 8})
	if _, err := s.WriteAt(bytes.Repeat([]byte{9}, 4096), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
}

// A writable open with LockWait keeps asking a live holder, and gets the
// lock when the holder closes the image: a clean handover, in which nobody
// is blocklisted.
func TestRBDLockWaitForRelease(t *testing.T) {
	opts := testRBDOptions(t)
	spec := uniqueImage(t)
	if err := CreateRBD(spec, 4<<20, opts); err != nil {
		t.Fatal(err)
	}
	h := startRBDHolder(t, spec)
	if got := h.write(t, 0, 3); got != "ok" {
		t.Fatalf("holder's write: %s", got)
	}
	_, err := OpenRBD(spec, opts)
	if !errors.Is(err, ErrRBDLocked) {
		t.Fatalf("writable open while the holder lives = %v, want ErrRBDLocked", err)
	}
	t.Logf("refused open: %v", err)
	type result struct {
		s   *RBDStore
		err error
	}
	done := make(chan result, 1)
	waitOpts := opts
	waitOpts.LockWait = time.Minute
	go func() {
		s, err := OpenRBD(spec, waitOpts)
		done <- result{s, err}
	}()
	time.Sleep(1500 * time.Millisecond) // let the open ask and be refused
	fmt.Fprintln(h.in, "close")
	if got := h.line(t); got != "closed" {
		t.Fatalf("holder's close: %s", got)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("writable open waiting for the holder to close: %v", r.err)
	}
	defer r.s.Close()
	checkPrefix(t, r.s, []byte{3})
	if bl := string(rbdtest.Tool(t, "ceph", "osd", "blocklist", "ls")); strings.Contains(bl, addrOf(t, h.client, err)) {
		t.Fatalf("a holder that closed cleanly was blocklisted: %s", bl)
	}
}

// addrOf is the address an RBDLockedError gives for client.
func addrOf(t *testing.T, client string, err error) string {
	t.Helper()
	var locked *RBDLockedError
	if errors.As(err, &locked) {
		for _, h := range locked.Holders {
			if h.Client == client {
				return h.Address
			}
		}
	}
	t.Fatalf("%v does not name %s", err, client)
	return ""
}

// checkPrefix checks that the store begins with 4 KiB of each of vals.
func checkPrefix(t *testing.T, s Store, vals []byte) {
	t.Helper()
	got := make([]byte, 4096*len(vals))
	if _, err := s.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		if !bytes.Equal(got[i*4096:(i+1)*4096], bytes.Repeat([]byte{v}, 4096)) {
			t.Fatalf("4 KiB block %d is not %d", i, v)
		}
	}
}

// BreakRBDLock fences a holder that is still running: it is blocklisted,
// so its next write fails, and a new writer can open the image at once.
func TestRBDBreakLockFencesTheHolder(t *testing.T) {
	opts := testRBDOptions(t)
	spec := uniqueImage(t)
	if err := CreateRBD(spec, 4<<20, opts); err != nil {
		t.Fatal(err)
	}
	h := startRBDHolder(t, spec)
	if got := h.write(t, 0, 5); got != "ok" {
		t.Fatalf("holder's write: %s", got)
	}
	broken, err := BreakRBDLock(spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(broken) != 1 || broken[0].Client != h.client {
		t.Fatalf("BreakRBDLock broke %+v, want %s", broken, h.client)
	}
	s, err := OpenRBD(spec, opts)
	if err != nil {
		t.Fatalf("writable open after breaking the lock: %v", err)
	}
	defer s.Close()
	if got := h.write(t, 4096, 6); !strings.HasPrefix(got, "error:") || !strings.Contains(got, "blocklisted") {
		t.Fatalf("the fenced holder's write answered %q, want a blocklisted error", got)
	}
	// A fenced client can still close the image, promptly.
	fmt.Fprintln(h.in, "close")
	t.Logf("the fenced holder's close answered %q", h.line(t))
	checkPrefix(t, s, []byte{5, 0})
	if broken, err := BreakRBDLock(spec, RBDOptions{ConfFile: opts.ConfFile}); err != nil || len(broken) != 1 || broken[0].Client != s.Client() {
		t.Fatalf("BreakRBDLock of our own lock = %+v, %v", broken, err)
	}
}

// sha256Hex is the hex SHA-256 of b.
func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Golden image to clones: ten copy-on-write clones of one protected
// snapshot, each written differently, each reading as the golden image plus
// its own writes (rbd export), with the golden snapshot unchanged (sha256
// of its rbd export) and named as each clone's parent (rbd info).
func TestRBDClonesOfGoldenSnapshot(t *testing.T) {
	opts := testRBDOptions(t)
	const size = 8 << 20
	golden := newTestRBD(t, size)
	goldenData := randBytes(rand.New(rand.NewPCG(21, 22)), size)
	if _, err := golden.WriteAt(goldenData, 0); err != nil {
		t.Fatal(err)
	}
	if err := golden.Close(); err != nil {
		t.Fatal(err)
	}
	snap := golden.Spec()
	snap.Snap = "base"
	if err := SnapshotRBD(snap, true, opts); err != nil {
		t.Fatal(err)
	}
	before := sha256Hex(rbdExport(t, snap))
	if before != sha256Hex(goldenData) {
		t.Fatal("rbd export of the golden snapshot differs from what was written")
	}
	info := string(rbdtest.Tool(t, "rbd", "snap", "ls", "--format", "json", strings.TrimPrefix(golden.Spec().String(), RBDPrefix)))
	if !strings.Contains(info, `"protected":"true"`) {
		t.Fatalf("golden snapshot is not protected: %s", info)
	}

	for i := range 10 {
		child := uniqueImage(t)
		if err := CloneRBD(snap, child, opts); err != nil {
			t.Fatal(err)
		}
		if js := string(rbdtest.Tool(t, "rbd", "info", "--format", "json", strings.TrimPrefix(child.String(), RBDPrefix))); !strings.Contains(js, `"image":"`+snap.Image+`"`) || !strings.Contains(js, `"snapshot":"base"`) {
			t.Fatalf("clone %d has not the golden snapshot as parent: %s", i, js)
		}
		s, err := OpenRBD(child, opts)
		if err != nil {
			t.Fatal(err)
		}
		want := bytes.Clone(goldenData)
		off := int64(i) * 700 * 1024 // each clone writes elsewhere, some across objects
		p := bytes.Repeat([]byte{byte(0xC0 + i)}, 64*1024+i*512)
		if _, err := s.WriteAt(p, off); err != nil {
			t.Fatal(err)
		}
		copy(want[off:], p)
		if err := s.WriteZeroes(size-1<<20, 4096, 0); err != nil {
			t.Fatal(err)
		}
		clear(want[size-1<<20 : size-1<<20+4096])
		checkAll(t, s, want)
		ext, err := s.Allocation(0, size)
		if err != nil {
			t.Fatal(err)
		}
		if got, rbd := dataExtents(ext), rbdDiffData(t, child, true); fmt.Sprint(got) != fmt.Sprint(rbd) {
			t.Fatalf("clone %d: Allocation %v, rbd diff %v", i, got, rbd)
		} else if i == 0 {
			t.Logf("clone allocation (rbd diff): %v", rbd)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if got := rbdExport(t, child); !bytes.Equal(got, want) {
			t.Fatalf("rbd export of clone %d differs from golden plus its writes at byte %d", i, firstDiff(got, want))
		}
	}
	if after := sha256Hex(rbdExport(t, snap)); after != before {
		t.Fatalf("golden snapshot changed: sha256 %s, was %s", after, before)
	}
	if head := sha256Hex(rbdExport(t, golden.Spec())); head != before {
		t.Fatal("golden image's head changed")
	}
}

// RemoveRBD removes an image as `rbd rm` does: `rbd info` no longer finds
// it; removing it again, or an image with a snapshot, is refused.
func TestRBDRemove(t *testing.T) {
	opts := testRBDOptions(t)
	spec := uniqueImage(t)
	if err := CreateRBD(spec, 1<<20, opts); err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(spec.String(), RBDPrefix)
	rbdtest.Tool(t, "rbd", "info", name)
	if err := RemoveRBD(spec, opts); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("rbd", "-c", opts.ConfFile, "info", name).CombinedOutput(); err == nil {
		t.Errorf("rbd info finds %s after RemoveRBD:\n%s", name, out)
	}
	if err := RemoveRBD(spec, opts); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("removing a missing image = %v, want fs.ErrNotExist", err)
	}
	snapped := uniqueImage(t)
	if err := CreateRBD(snapped, 1<<20, opts); err != nil {
		t.Fatal(err)
	}
	if err := SnapshotRBD(RBDSpec{Pool: snapped.Pool, Image: snapped.Image, Snap: "s"}, false, opts); err != nil {
		t.Fatal(err)
	}
	if err := RemoveRBD(snapped, opts); err == nil {
		t.Error("RemoveRBD removed an image that has a snapshot")
	}
	rbdtest.Tool(t, "rbd", "info", strings.TrimPrefix(snapped.String(), RBDPrefix))
}
