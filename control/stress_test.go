package control_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/control"
	"github.com/vdisk-dev/vdisk/create"
	"github.com/vdisk-dev/vdisk/export"
	"github.com/vdisk-dev/vdisk/filter/monitor"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
	"github.com/vdisk-dev/vdisk/partition"
)

// Bounds of TestStress. The loops run while fio runs; fio's own work is
// bounded by its size and runtime, and stressHardDeadline bounds everything
// (every control request carries it), so that a deadlock fails the test
// with the goroutines' stacks instead of hanging it.
const (
	stressFioRuntime   = 6 * time.Second
	stressHardDeadline = 60 * time.Second
	stressMaxCycles    = 150 // mount cycles: keeps partition 1 far from full
)

// TestStress runs the control plane against NBD traffic at once and looks
// for races (run it under -race) and deadlocks:
//
//	(a) fio, two jobs on two NBD connections, random mixed 4 KiB and 1 MiB
//	    reads and writes with crc32c verification, on partition 3's export;
//	(b) mount cycles of partition 1 through the control API: files written
//	    through the API, listed in-process, locks, dismounts (forced while
//	    an in-process handle is open);
//	(c) disk filters (passthrough, trace) attached and detached beneath
//	    fio's traffic, with detach out of order refused (last in, first out);
//	(d) readers of the stack, filter, volume and export descriptions and of
//	    the monitor stream.
//
// Its checks do not depend on timing: fio must verify clean; every refusal
// must be the documented one; afterwards the device count is what it was,
// fsck.fat -n is clean on partition 1, mtools reads back every file the
// mount cycles wrote, and the image outside partitions 1 and 3 (the
// tables, partition 2, the backup GPT) has not changed.
func TestStress(t *testing.T) {
	t.Parallel()
	testsupport.NeedTool(t, "fio")
	testsupport.NeedTool(t, "sfdisk")
	testsupport.NeedTool(t, "fsck.fat")
	testsupport.NeedTool(t, "mtype")

	dir := t.TempDir()
	img := filepath.Join(dir, "stress.img")
	if _, err := create.Image(img, create.Options{Size: 64 * testsupport.MiB, Table: partition.GPT, Parts: []partition.Spec{
		{Size: 16 * testsupport.MiB, Type: "fat16", Label: "ONE"}, {Size: 16 * testsupport.MiB, Type: "fat16", Label: "TWO"},
		{Size: partition.Rest, Type: "fat16", Label: "THREE"}}}); err != nil {
		t.Fatal(err)
	}
	parts := testsupport.Sfdisk(t, img)
	if len(parts) != 3 {
		t.Fatalf("sfdisk sees %d partitions, want 3: %+v", len(parts), parts)
	}
	untouched := stressHashUntouched(t, img, parts[0], parts[2])

	// The System, its NBD server and its control server are stopped by the
	// test itself before the oracles look at the image; the cleanups only
	// catch a test that failed on the way.
	sys := vdisk.New(vdisk.Options{Workers: 4, Requestor: "stress"})
	var closeOnce sync.Once
	closeSys := func() {
		closeOnce.Do(func() {
			if err := sys.Close(); err != nil {
				t.Errorf("System.Close: %v", err)
			}
		})
	}
	t.Cleanup(closeSys)
	if _, err := sys.AddImage(img, false); err != nil {
		t.Fatal(err)
	}
	// The monitor minifilter puts the filter manager's frames on every
	// mounted volume, and feeds the monitor stream with file system traffic.
	if _, err := sys.AddFilter("monitor"); err != nil {
		t.Fatal(err)
	}
	exports := testworld.Exports(t, sys, false, export.ClaimPerConnection)
	uri, stopNBD := testworld.ServeNBD(t, exports, nil)
	ctl, sock, stopControl := testworld.ServeControl(t, sys, exports)
	// The NBD server drains first, then the control server dismounts.
	stopServers := func() { stopNBD(); stopControl() }
	t.Cleanup(stopServers)
	client := control.NewClient(sock)
	t.Cleanup(client.Close)

	hard, cancelHard := context.WithTimeout(context.Background(), stressHardDeadline)
	defer cancelHard()
	st, err := client.Stack(hard)
	if err != nil {
		t.Fatal(err)
	}
	devicesBefore := len(st.Devices)

	// stop ends the loops: closed when fio is done. Each loop finishes the
	// cycle it is in and always runs at least one.
	stop := make(chan struct{})
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	var wg sync.WaitGroup
	run := func(name string, fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}()
	}

	var fioRes stressFioResult
	var written map[string][]byte
	var cycles, filterCycles, stackReads, monitorRecs int
	run("monitor stream", func() error {
		var err error
		monitorRecs, err = stressMonitor(hard, client, stop)
		return err
	})
	run("stack reader", func() error {
		var err error
		stackReads, err = stressReadStack(hard, client, stopped)
		return err
	})
	run("filter loop", func() error {
		var err error
		filterCycles, err = stressFilters(hard, client, stopped)
		return err
	})
	run("mount loop", func() error {
		var err error
		written, cycles, err = stressMounts(hard, client, sys, stopped)
		return err
	})
	run("fio", func() error {
		defer close(stop)
		fioRes = stressFio(hard, dir, uri+"/stress@3")
		return nil
	})

	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(stressHardDeadline + 10*time.Second):
		buf := make([]byte, 1<<22)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("the stress loops did not end (deadlock?); goroutines:\n%s", buf)
	}
	t.Logf("fio %v; %d mount cycles, %d filter cycles, %d stack reads, %d monitor records",
		fioRes.elapsed.Round(time.Millisecond), cycles, filterCycles, stackReads, monitorRecs)

	// (a) fio verified every block it wrote.
	if fioRes.err != nil {
		t.Errorf("fio: %v\n%s", fioRes.err, fioRes.out)
	} else {
		if len(fioRes.jobs) != 2 {
			t.Errorf("fio: %d jobs in its report, want 2\n%s", len(fioRes.jobs), fioRes.out)
		}
		for i, j := range fioRes.jobs {
			if j.Error != 0 || j.TotalErr == nil || *j.TotalErr != 0 || j.Write.Bytes == 0 || j.Read.Bytes == 0 {
				t.Errorf("fio job %d: error %d, total_err %v, wrote %d, read %d\n%s", i, j.Error, j.TotalErr, j.Write.Bytes, j.Read.Bytes, fioRes.out)
			}
		}
	}
	if t.Failed() {
		return
	}

	// Everything the loops put in the stacks has left.
	if err := ctl.DismountAll(); err != nil {
		t.Fatalf("DismountAll: %v", err)
	}
	if fl, err := client.Filters(hard); err != nil || len(fl) != 1 || fl[0].ID != "monitor" {
		t.Fatalf("filters after the loops: %+v, %v (want only monitor)", fl, err)
	}
	if st, err = client.Stack(hard); err != nil {
		t.Fatal(err)
	}
	if len(st.Devices) != devicesBefore {
		t.Errorf("device count after the loops %d, want %d as before them\n%+v", len(st.Devices), devicesBefore, st.Devices)
	}
	stopServers()
	closeSys()

	// Outside oracles on the image the server left.
	p1 := filepath.Join(dir, "p1.img") // fsck.fat has no --offset
	if err := os.WriteFile(p1, testsupport.ReadAt(t, img, parts[0].Start, parts[0].Size), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := testsupport.Run(t, "fsck.fat", "-n", p1); r.Code != 0 {
		t.Errorf("fsck.fat -n on partition 1 after %d mount cycles: exit %d\n%s%s", cycles, r.Code, r.Stdout, r.Stderr)
	}
	names := make([]string, 0, len(written))
	for name := range written {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		r := testsupport.Run(t, "mtype", "-i", img+"@@"+strconv.FormatInt(parts[0].Start, 10), "::/"+name)
		if r.Code != 0 || r.Stdout != string(written[name]) {
			t.Errorf("mtype %s: exit %d, %d bytes, want %d\n%s", name, r.Code, len(r.Stdout), len(written[name]), r.Stderr)
		}
	}
	if got := stressHashUntouched(t, img, parts[0], parts[2]); got != untouched {
		t.Error("the image changed outside partitions 1 and 3, where nothing wrote")
	}
}

// stressHashUntouched hashes an image except partitions a and b (a before b).
func stressHashUntouched(t *testing.T, path string, a, b testsupport.Part) [32]byte {
	t.Helper()
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	h.Write(img[:a.Start])
	h.Write(img[a.End():b.Start])
	h.Write(img[b.End():])
	return [32]byte(h.Sum(nil))
}

type stressFioResult struct {
	jobs    []testworld.FioJob
	out     string
	err     error
	elapsed time.Duration
}

// stressFio runs fio's nbd engine on uri: two jobs, each on its own
// connection and its own 8 MiB region, random reads and writes mixing 4 KiB
// and 1 MiB blocks, every write checked with crc32c. It cannot use
// e2eFio, which fails the test from the goroutine it runs in.
func stressFio(ctx context.Context, dir, uri string) (res stressFioResult) {
	fioDir := filepath.Join(dir, "fio") // fio may leave verify state files
	if res.err = os.Mkdir(fioDir, 0o755); res.err != nil {
		return res
	}
	out := filepath.Join(fioDir, "fio.json")
	const region = 8 * testsupport.MiB
	cmd := exec.CommandContext(ctx, "fio", "--name=stress", "--ioengine=nbd", "--uri="+uri,
		"--rw=randrw", "--bssplit=4k/80:1m/20", "--iodepth=8", "--numjobs=2",
		"--size="+strconv.Itoa(region), "--offset_increment="+strconv.Itoa(region),
		"--time_based", "--runtime="+strconv.Itoa(int(stressFioRuntime/time.Second)),
		"--verify=crc32c", "--verify_backlog=64", "--continue_on_error=verify", "--verify_state_save=0",
		"--output-format=json", "--output="+out)
	cmd.Dir = fioDir
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	start := time.Now()
	err := cmd.Run()
	res.elapsed = time.Since(start)
	res.out = buf.String()
	if err != nil {
		res.err = fmt.Errorf("fio: %w", err)
		return res
	}
	b, err := os.ReadFile(out)
	if err != nil {
		res.err = err
		return res
	}
	var j struct {
		Jobs []testworld.FioJob `json:"jobs"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		res.err = fmt.Errorf("fio output: %w", err)
		res.out += string(b)
		return res
	}
	res.jobs = j.Jobs
	return res
}

// stressConflict reports whether err is the control API's 409 answer.
func stressConflict(err error) bool {
	var ce *control.Error
	return errors.As(err, &ce) && ce.StatusCode == http.StatusConflict
}

// stressFilters attaches a passthrough filter on the disk and a trace
// filter on the disk or on partition 1 or 3, tries to detach the
// passthrough first (which the API must refuse when both sit on the disk's
// stack), then detaches them last in, first out.
func stressFilters(ctx context.Context, c *control.Client, stopped func() bool) (int, error) {
	n := 0
	for ; n == 0 || !stopped(); n++ {
		lower, err := c.AttachFilter(ctx, "passthrough")
		if err != nil {
			return n, fmt.Errorf("cycle %d: attach passthrough: %w", n, err)
		}
		// On the disk beneath passthrough, or on partition 3 beneath fio's
		// traffic, or on partition 1 beneath the file system the mount
		// loop mounts and dismounts.
		spec := [...]string{"trace", "trace:on=stress@3", "trace:on=stress@1"}[n%3]
		upper, err := c.AttachFilter(ctx, spec)
		if err != nil {
			return n, fmt.Errorf("cycle %d: attach %s: %w", n, spec, err)
		}
		err = c.DetachFilter(ctx, lower.ID)
		switch {
		case spec == "trace" && !stressConflict(err):
			return n, fmt.Errorf("cycle %d: detaching %s beneath %s: %v, want the last-in-first-out refusal", n, lower.ID, upper.ID, err)
		case spec == "trace" && !strings.Contains(err.Error(), "detach "+upper.ID+" first"):
			return n, fmt.Errorf("cycle %d: refusal does not name the filter in the way: %v", n, err)
		case spec != "trace" && err != nil:
			// On different stacks (disk and partition) neither is above
			// the other: the lower one may leave first.
			return n, fmt.Errorf("cycle %d: detaching %s (not beneath %s): %w", n, lower.ID, upper.ID, err)
		}
		if err := c.DetachFilter(ctx, upper.ID); err != nil {
			return n, fmt.Errorf("cycle %d: detach %s: %w", n, upper.ID, err)
		}
		if spec == "trace" {
			if err := c.DetachFilter(ctx, lower.ID); err != nil {
				return n, fmt.Errorf("cycle %d: detach %s: %w", n, lower.ID, err)
			}
		}
	}
	return n, nil
}

// stressReadStack reads every description the API gives, checking that
// each is consistent with itself.
func stressReadStack(ctx context.Context, c *control.Client, stopped func() bool) (int, error) {
	n := 0
	for ; n == 0 || !stopped(); n++ {
		st, err := c.Stack(ctx)
		if err != nil {
			return n, fmt.Errorf("stack: %w", err)
		}
		names := map[string]bool{}
		for _, d := range st.Devices {
			if names[d.Name] {
				return n, fmt.Errorf("stack: device %s listed twice", d.Name)
			}
			names[d.Name] = true
		}
		if _, err := c.Filters(ctx); err != nil {
			return n, fmt.Errorf("filters: %w", err)
		}
		vols, err := c.Volumes(ctx)
		if err != nil || len(vols) != 3 {
			return n, fmt.Errorf("volumes: %+v, %v", vols, err)
		}
		if _, err := c.Exports(ctx); err != nil {
			return n, fmt.Errorf("exports: %w", err)
		}
	}
	return n, nil
}

// stressMonitor follows the monitor stream until stop, checking that
// sequence numbers only grow.
func stressMonitor(ctx context.Context, c *control.Client, stop <-chan struct{}) (int, error) {
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-stop:
		case <-mctx.Done():
		}
		cancel()
	}()
	var last uint64
	n := 0
	err := c.Monitor(mctx, control.MonitorOptions{From: 1}, func(r monitor.Record) error {
		if r.Seq <= last {
			return fmt.Errorf("sequence number %d after %d", r.Seq, last)
		}
		last = r.Seq
		n++
		return nil
	})
	if err == nil && ctx.Err() != nil {
		err = ctx.Err() // the hard deadline, not stop, ended it
	}
	return n, err
}

// stressMounts runs mount cycles of partition 1 through the control API
// and returns the files written (path → contents), which must all survive.
// The cycles take turns: a plain dismount; a lock that keeps the API's own
// writes out; a dismount refused while an in-process handle is open, then
// forced; a lock taken on the unmounted volume (which mounts it).
func stressMounts(ctx context.Context, c *control.Client, sys *vdisk.System, stopped func() bool) (map[string][]byte, int, error) {
	const vol = "stress@1"
	written := map[string][]byte{}
	n := 0
	for ; n < stressMaxCycles && (n == 0 || !stopped()); n++ {
		mode := n % 4
		if mode == 3 {
			if vs, err := c.Lock(ctx, vol); err != nil || !vs.Mounted || !vs.Locked {
				return written, n, fmt.Errorf("cycle %d: lock of the unmounted volume: %+v, %v", n, vs, err)
			}
			if vs, err := c.Unlock(ctx, vol); err != nil || vs.Locked {
				return written, n, fmt.Errorf("cycle %d: unlock: %+v, %v", n, vs, err)
			}
		} else if vs, err := c.Mount(ctx, vol); err != nil || !vs.Mounted {
			return written, n, fmt.Errorf("cycle %d: mount: %+v, %v", n, vs, err)
		}
		dir := fmt.Sprintf("cycle %03d", n)
		for i, size := range []int{0, 100, 5000, 33000} {
			name := fmt.Sprintf("%s/File number %d of cycle %d.txt", dir, i, n)
			unit := fmt.Sprintf("%d:%d;", n, i)
			data := bytes.Repeat([]byte(unit), size/len(unit)+1)[:size]
			if got, err := c.WriteFile(ctx, vol, name, bytes.NewReader(data)); err != nil || got != int64(size) {
				return written, n, fmt.Errorf("cycle %d: write %s: %d, %v", n, name, got, err)
			}
			written[name] = data
		}
		v, err := testworld.VolumeNamed(sys, vol, "stress")
		if err != nil {
			return written, n, err
		}
		entries, err := v.ReadDir(dir)
		if err != nil || len(entries) != 4 {
			return written, n, fmt.Errorf("cycle %d: list %s: %d entries, %v", n, dir, len(entries), err)
		}
		if got, err := c.ReadFile(ctx, vol, dir+"/File number 2 of cycle "+strconv.Itoa(n)+".txt"); err != nil || len(got) != 5000 {
			return written, n, fmt.Errorf("cycle %d: read back: %d bytes, %v", n, len(got), err)
		}
		switch mode {
		case 1:
			if _, err := c.Lock(ctx, vol); err != nil {
				return written, n, fmt.Errorf("cycle %d: lock: %w", n, err)
			}
			if _, err := c.WriteFile(ctx, vol, dir+"/locked.txt", strings.NewReader("x")); !stressConflict(err) {
				return written, n, fmt.Errorf("cycle %d: write to the locked volume: %v, want a 409", n, err)
			}
			if _, err := c.Unlock(ctx, vol); err != nil {
				return written, n, fmt.Errorf("cycle %d: unlock: %w", n, err)
			}
		case 2:
			f, err := v.Create(dir + "/held open.bin")
			if err != nil {
				return written, n, fmt.Errorf("cycle %d: create the held file: %w", n, err)
			}
			if _, err := f.Write(make([]byte, 3000)); err != nil {
				f.Close()
				return written, n, fmt.Errorf("cycle %d: write the held file: %w", n, err)
			}
			_, err = c.Dismount(ctx, vol, false)
			if !stressConflict(err) {
				f.Close()
				return written, n, fmt.Errorf("cycle %d: dismount with a file open: %v, want a 409", n, err)
			}
			if vs, err := c.Dismount(ctx, vol, true); err != nil || vs.Mounted {
				f.Close()
				return written, n, fmt.Errorf("cycle %d: forced dismount: %+v, %v", n, vs, err)
			}
			// The handle outlived its volume: it must fail, not write.
			if _, err := f.Write(make([]byte, 3000)); err == nil {
				f.Close()
				return written, n, fmt.Errorf("cycle %d: a write on a handle of a dismounted volume succeeded", n)
			}
			f.Close()
			continue
		}
		if vs, err := c.Dismount(ctx, vol, false); err != nil || vs.Mounted {
			return written, n, fmt.Errorf("cycle %d: dismount: %+v, %v", n, vs, err)
		}
	}
	return written, n, nil
}
