package vdisk_test

// End-to-end tests of the NBD data path's promises to clients: FUA on every
// write-class command, and requests that do not follow the block sizes.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/disk"
)

// syncCounter is an image's FileStore that counts Sync calls, the fsyncs
// that flushes and FUA end in.
type syncCounter struct {
	*disk.FileStore
	syncs atomic.Int64
}

func (s *syncCounter) Sync() error {
	s.syncs.Add(1)
	return s.FileStore.Sync()
}

// e2eFUAOps are write-class requests, with and without FUA, as nbdsh
// sends them to a partition export; fua says whether the reply must wait
// for stable storage.
var e2eFUAOps = []struct {
	name, call string
	fua        bool
}{
	{"write", `h.pwrite(b"\xa5" * 4096, 0)`, false},
	{"trim", `h.trim(65536, 65536)`, false},
	{"zero", `h.zero(65536, 131072)`, false},
	{"write FUA", `h.pwrite(b"\xa5" * 4096, 4096, nbd.CMD_FLAG_FUA)`, true},
	{"trim FUA", `h.trim(65536, 196608, nbd.CMD_FLAG_FUA)`, true},
	{"zero FUA", `h.zero(65536, 262144, nbd.CMD_FLAG_FUA)`, true},
	{"zero FUA no-hole", `h.zero(65536, 327680, nbd.CMD_FLAG_FUA | nbd.CMD_FLAG_NO_HOLE)`, true},
}

// TestE2EFUAOnTrimAndZero: a TRIM or WRITE_ZEROES with FUA is answered only
// after an fsync of the image, as a WRITE with FUA is (the NBD spec: the
// reply MUST NOT be sent before the data is persisted), and without FUA no
// fsync is spent. nbdsh sends the requests; the fsyncs are counted at the
// store, and, as an outside observer, by strace on a `vdisk serve`, which
// prints each fsync as the server makes it, so before the reply leaves.
func TestE2EFUAOnTrimAndZero(t *testing.T) {
	t.Parallel()
	py := e2eNeedNbdsh(t)
	dir := t.TempDir()
	gpt := e2eGPT(t, dir)

	t.Run("store", func(t *testing.T) {
		img := filepath.Join(dir, "store.img")
		e2eMust(t, "cp", "--sparse=always", gpt, img)
		fs, err := disk.OpenFile(img, false)
		if err != nil {
			t.Fatal(err)
		}
		st := &syncCounter{FileStore: fs}
		sys := vdisk.New(vdisk.Options{Requestor: "e2e"})
		t.Cleanup(func() { sys.Close() })
		if _, err := sys.AddStore("store", st, 512, false); err != nil {
			t.Fatal(err)
		}
		uri := e2eServeSystem(t, sys, false) + "/store@2"
		for _, op := range e2eFUAOps {
			before := st.syncs.Load()
			e2eNbdsh(t, py, uri, fmt.Sprintf(`%s
print("{}")`, op.call))
			got := st.syncs.Load() - before
			if op.fua && got == 0 {
				t.Errorf("%s: answered without a Sync of the store", op.name)
			}
			if !op.fua && got != 0 {
				t.Errorf("%s: %d Syncs of the store without FUA", op.name, got)
			}
		}
	})

	t.Run("strace", func(t *testing.T) {
		strace := e2eNeedTool(t, "strace")
		bin := e2eBuildCLI(t)
		img := filepath.Join(dir, "strace.img")
		e2eMust(t, "cp", "--sparse=always", gpt, img)
		sock := filepath.Join(dir, "nbd.sock")
		trace := filepath.Join(dir, "fsync.trace")
		// strace leaves its tracee running when it is killed, so the test
		// stops the server itself, by the pid strace reports for execve.
		srv := e2eStart(t, exec.Command(strace, "-f", "-qq", "-e", "trace=execve,fsync,fdatasync", "-o", trace,
			bin, "serve", "--listen", "unix:"+sock, img))
		uri := "nbd+unix:///strace@2?socket=" + sock
		e2eWaitFor(t, srv, uri)
		var pid int
		if b, err := os.ReadFile(trace); err != nil {
			t.Fatal(err)
		} else if _, err := fmt.Sscanf(string(b), "%d execve(", &pid); err != nil {
			t.Fatalf("no execve in the strace output: %v\n%s", err, b)
		}
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
		for _, op := range e2eFUAOps {
			before := e2eCountLines(t, trace, "sync(")
			e2eNbdsh(t, py, uri, fmt.Sprintf(`%s
print("{}")`, op.call))
			got := e2eCountLines(t, trace, "sync(") - before
			if op.fua && got == 0 {
				t.Errorf("%s: strace saw no fsync or fdatasync before the reply", op.name)
			}
			if !op.fua && got != 0 {
				t.Errorf("%s: strace saw %d fsyncs without FUA", op.name, got)
			}
		}
	})
}

// e2eWaitFor waits (bounded) until nbdinfo can open uri, served by p.
func e2eWaitFor(t *testing.T, p *e2eProcess, uri string) {
	t.Helper()
	e2eNeedTool(t, "nbdinfo")
	for i := 0; ; i++ {
		select {
		case <-p.done:
			t.Fatalf("the server exited at start: %v\n%s", p.err, p.stderr.String())
		default:
		}
		if exec.Command("nbdinfo", "--size", uri).Run() == nil {
			return
		}
		if i == 400 {
			t.Fatalf("%s did not answer within 20 s\n%s", uri, p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// e2eCountLines counts the lines of a file that contain s.
func e2eCountLines(t *testing.T, path, s string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestE2EUnalignedRequests: the block-size rules as clients meet them. A
// TRIM that is not aligned to the 512-byte minimum block is only a hint:
// qemu-io's `discard 400000 100000` (which sends a 384-byte TRIM for the
// unaligned head) succeeds, the whole blocks inside read as zeros and the
// bytes around them are untouched. A client that did not ask for block
// sizes (nbdsh with set_request_block_size(False)) is served at 1-byte
// granularity, as the NBD spec says it SHOULD be: unaligned reads, writes
// and zeroing land byte for byte, as the image file shows. A client that
// asked (libnbd's default) and then sends an unaligned read or write gets
// EINVAL.
func TestE2EUnalignedRequests(t *testing.T) {
	t.Parallel()
	py := e2eNeedNbdsh(t)
	e2eNeedTool(t, "sfdisk")
	dir := t.TempDir()
	gpt := e2eGPT(t, dir)
	p2 := e2eSfdisk(t, gpt)[1]
	const n = 2 * e2eMiB
	want := e2eRandom(n, 11, false)
	e2eWriteAt(t, gpt, want, p2.Start)
	sys, _ := e2eSystem(t, 0, false, gpt)
	uri := e2eServeSystem(t, sys, false) + "/gpt@2"
	check := func(t *testing.T, what string) {
		t.Helper()
		got := e2eReadAt(t, gpt, p2.Start, n)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: the image differs from the expected bytes first at partition offset %d: %#x, want %#x", what, i, got[i], want[i])
			}
		}
	}
	zero := func(off, length int) { clear(want[off : off+length]) }

	t.Run("qemu-io discard", func(t *testing.T) {
		e2eNeedTool(t, "qemu-io")
		r := e2eRun(t, "", "qemu-io", "-f", "raw", uri, "-c", "discard 400000 100000")
		if r.code != 0 || !strings.Contains(r.stdout, "discard 100000/100000 bytes at offset 400000") {
			t.Fatalf("qemu-io discard 400000 100000: exit status %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		zero(400384, 499712-400384) // the whole blocks inside
		check(t, "after qemu-io's discard")
	})

	t.Run("nbdsh without block sizes", func(t *testing.T) {
		r := e2eRun(t, "", py, "-c", e2eNbdshPrelude+fmt.Sprintf(`
h = nbd.NBD()
h.set_request_block_size(False)
h.set_strict_mode(h.get_strict_mode() & ~nbd.STRICT_ALIGN)
h.connect_uri(%q)
r = {}
r["write"] = tryop(h.pwrite, b"\x5a" * 1000, 123457)
r["read"] = h.pread(777, 123000).hex()
r["write_small"] = tryop(h.pwrite, b"\x01\x02\x03", 1048575)
r["write_fua"] = tryop(h.pwrite, b"\x77" * 5000, 1300001, nbd.CMD_FLAG_FUA)
r["zero"] = tryop(h.zero, 1001, 300001)
r["zero_small"] = tryop(h.zero, 5, 600003)
r["zero_fast"] = tryop(h.zero, 100, 650001, nbd.CMD_FLAG_FAST_ZERO)
r["trim"] = tryop(h.trim, 100000, 700001)
r["flush"] = tryop(h.flush)
print(json.dumps(r))
`, uri))
		if r.code != 0 {
			t.Fatalf("nbdsh: exit status %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("nbdsh output: %v\n%s", err, r.stdout)
		}
		copy(want[123457:], bytes.Repeat([]byte{0x5a}, 1000))
		if rd, _ := got["read"].(string); rd != fmt.Sprintf("%x", want[123000:123777]) {
			t.Errorf("unaligned read of 777 bytes at 123000: %.40s…, want %.40x…", rd, want[123000:123777])
		}
		copy(want[1048575:], []byte{1, 2, 3})
		copy(want[1300001:], bytes.Repeat([]byte{0x77}, 5000))
		zero(300001, 1001)
		zero(600003, 5)
		zero(700416, 799744-700416)
		// A fast zero that would need a read-modify-write is refused
		// (the client then writes the zeros itself).
		e2eExpect(t, "unaligned requests", got, map[string]any{"write": "ok", "write_small": "ok", "write_fua": "ok",
			"zero": "ok", "zero_small": "ok", "zero_fast": "ENOTSUP", "trim": "ok", "flush": "ok"})
		check(t, "after nbdsh's unaligned requests")
	})

	t.Run("nbdsh with block sizes", func(t *testing.T) {
		got := e2eNbdsh(t, py, uri, `
h.set_strict_mode(h.get_strict_mode() & ~nbd.STRICT_ALIGN)
r = {"min": h.get_block_size(nbd.SIZE_MINIMUM),
     "read": tryop(h.pread, 100, 1000),
     "write": tryop(h.pwrite, b"\xee" * 100, 1000),
     "zero": tryop(h.zero, 100, 1000),
     "trim": tryop(h.trim, 1000, 1000),
     "trim_small": tryop(h.trim, 300, 1600)}
print(json.dumps(r))
`)
		e2eExpect(t, "unaligned requests after agreeing to block sizes", got, map[string]any{"min": json.Number("512"),
			"read": "EINVAL", "write": "EINVAL", "zero": "EINVAL", "trim": "ok", "trim_small": "ok"})
		zero(1024, 512) // the one whole block inside the trim
		check(t, "after refused unaligned requests and an unaligned trim")
	})
}

// TestE2EImageLock reproduces the lost-files report: `vdisk serve` holds an
// image with a volume mounted in the server (and a file written into it
// through the control API, in the server's cache), and `vdisk cp` into the
// same volume from the CLI. The copy is refused (exit 1, one line saying
// that a process writing the image holds it) instead of writing beneath
// the server's cache; so is a second `vdisk serve`; `vdisk --force-share
// ls` reads. After the server stops, the file it wrote is there and
// fsck.fat finds nothing to reclaim. The lock is qemu's, so qemu is the
// outside proof both ways: qemu-io cannot open the served image for
// writing, and vdisk cannot write (nor read) an image qemu-nbd serves.
func TestE2EImageLock(t *testing.T) {
	t.Parallel()
	e2eNeedTool(t, "sfdisk")
	bin := e2eBuildCLI(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "locked.img")
	e2eMust(t, bin, "create", img, "--size", "40MiB", "--part", "16MiB:fat16:ONE", "--part", "rest:fat16:TWO")
	src := filepath.Join(dir, "f.bin")
	if err := os.WriteFile(src, e2eRandom(300<<10, 5, false), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	srv := startControlServe(t, bin, img)
	if _, err := srv.client.Mount(ctx, "locked@1"); err != nil {
		t.Fatal(err)
	}
	served := e2eRandom(200<<10, 6, false)
	if _, err := srv.client.WriteFile(ctx, "locked@1", "served.bin", bytes.NewReader(served)); err != nil {
		t.Fatal(err)
	}
	r := e2eRun(t, "", bin, "cp", src, img+"@1:/")
	if r.code != 1 {
		t.Errorf("vdisk cp into a served image: exit status %d, want 1\n%s", r.code, r.stderr)
	}
	e2eOneLine(t, "vdisk cp into a served image", r.stderr, img, "in use by another process that writes it")
	r = e2eRun(t, "", bin, "serve", "--listen", "unix:"+filepath.Join(dir, "second.sock"), img)
	if r.code != 1 {
		t.Errorf("a second vdisk serve: exit status %d, want 1\n%s", r.code, r.stderr)
	}
	e2eOneLine(t, "a second vdisk serve", r.stderr, img, "in use by another process that writes it")
	if r := e2eRun(t, "", bin, "--force-share", "ls", img+"@2:/"); r.code != 0 {
		t.Errorf("vdisk --force-share ls of a served image: exit status %d\n%s", r.code, r.stderr)
	}
	if _, err := exec.LookPath("qemu-io"); err == nil {
		r := e2eRun(t, "", "qemu-io", "-f", "raw", img, "-c", "write 0 512")
		if r.code == 0 || !strings.Contains(r.stdout+r.stderr, `Failed to get "write" lock`) {
			t.Errorf("qemu-io writing an image vdisk serves: exit status %d, want qemu's lock failure\n%s%s", r.code, r.stdout, r.stderr)
		}
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := srv.wait(t); code != 0 {
		t.Fatalf("vdisk serve after SIGTERM: exit status %d\n%s", code, srv.stderr.String())
	}

	e2eMust(t, bin, "cp", src, img+"@1:/")
	if got := e2eMust(t, bin, "cat", img+"@1:/served.bin"); got != string(served) {
		t.Error("the file the server wrote did not survive")
	}
	if got := e2eMust(t, bin, "cat", img+"@1:/f.bin"); got != string(e2eRandom(300<<10, 5, false)) {
		t.Error("the file cp wrote after the server stopped reads back differently")
	}
	if fsck, err := exec.LookPath("fsck.fat"); err == nil {
		p1 := e2eSfdisk(t, img)[0]
		part := filepath.Join(dir, "p1.img")
		if err := os.WriteFile(part, e2eReadAt(t, img, p1.Start, p1.Size), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := e2eRun(t, "", fsck, "-n", part); r.code != 0 {
			t.Errorf("fsck.fat -n of partition 1: exit status %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	}

	t.Run("qemu-nbd holds it", func(t *testing.T) {
		qemuNBD := e2eNeedTool(t, "qemu-nbd")
		sock := filepath.Join(dir, "qemu.sock")
		q := e2eStart(t, exec.Command(qemuNBD, "-t", "-f", "raw", "-k", sock, img))
		e2eWaitFor(t, q, "nbd+unix:///?socket="+sock)
		r := e2eRun(t, "", bin, "cp", src, img+"@2:/")
		if r.code != 1 {
			t.Errorf("vdisk cp into an image qemu-nbd serves: exit status %d, want 1\n%s", r.code, r.stderr)
		}
		e2eOneLine(t, "vdisk cp into an image qemu-nbd serves", r.stderr, img, "in use by another process that writes it")
		r = e2eRun(t, "", bin, "ls", img+"@2:/")
		if r.code != 1 {
			t.Errorf("vdisk ls of an image qemu-nbd serves: exit status %d, want 1\n%s", r.code, r.stderr)
		}
		e2eOneLine(t, "vdisk ls of an image qemu-nbd serves", r.stderr, "in use by another process that writes it", "--force-share")
	})
}
