package export_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
)

// End-to-end: FUA on every write-class command costs an fsync before the
// reply, and only then.

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
	py := testsupport.NeedNbdsh(t)
	dir := t.TempDir()
	gpt := testworld.GPT(t, dir)

	t.Run("store", func(t *testing.T) {
		img := filepath.Join(dir, "store.img")
		testsupport.Must(t, "cp", "--sparse=always", gpt, img)
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
		uri := testworld.ServeSystem(t, sys, false) + "/store@2"
		for _, op := range e2eFUAOps {
			before := st.syncs.Load()
			testworld.Nbdsh(t, py, uri, fmt.Sprintf(`%s
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
		strace := testsupport.NeedTool(t, "strace")
		bin := testsupport.BuildCLI(t)
		img := filepath.Join(dir, "strace.img")
		testsupport.Must(t, "cp", "--sparse=always", gpt, img)
		sock := filepath.Join(dir, "nbd.sock")
		trace := filepath.Join(dir, "fsync.trace")
		// strace leaves its tracee running when it is killed, so the test
		// stops the server itself, by the pid strace reports for execve.
		srv := testsupport.Start(t, exec.Command(strace, "-f", "-qq", "-e", "trace=execve,fsync,fdatasync", "-o", trace,
			bin, "serve", "--listen", "unix:"+sock, img))
		uri := "nbd+unix:///strace@2?socket=" + sock
		testsupport.WaitNBD(t, srv, uri)
		var pid int
		if b, err := os.ReadFile(trace); err != nil {
			t.Fatal(err)
		} else if _, err := fmt.Sscanf(string(b), "%d execve(", &pid); err != nil {
			t.Fatalf("no execve in the strace output: %v\n%s", err, b)
		}
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
		for _, op := range e2eFUAOps {
			before := e2eCountLines(t, trace, "sync(")
			testworld.Nbdsh(t, py, uri, fmt.Sprintf(`%s
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
