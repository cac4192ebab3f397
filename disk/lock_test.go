//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package disk

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
)

// lockedImage creates a 1 MiB image file holding a pattern and returns its path.
func lockedImage(t *testing.T) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	data := bytes.Repeat([]byte("vdisk lock test "), 1<<16)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// wantLocked checks that err is the LockError of a holder that writes
// (writer) or reads.
func wantLocked(t *testing.T, what string, err error, path string, writer bool) {
	t.Helper()
	var le *LockError
	if !errors.Is(err, ErrLocked) || !errors.As(err, &le) {
		t.Fatalf("%s: %v, want a LockError", what, err)
	}
	if le.Writer != writer || le.Path != path {
		t.Errorf("%s: %+v, want writer %v on %s", what, le, writer, path)
	}
	word := "reads"
	if writer {
		word = "writes"
	}
	if !strings.Contains(err.Error(), "in use by another process that "+word+" it") {
		t.Errorf("%s: message %q does not say the holder %s it", what, err, word)
	}
}

// TestFileStoreLocks: readers share an image, a writer excludes readers
// and writers, force-share opens anyway (read-only), a refused CreateFile
// leaves the file as it was, and closing a store lets the next one in.
func TestFileStoreLocks(t *testing.T) {
	path, data := lockedImage(t)
	open := func(readOnly bool) (*FileStore, error) { return OpenFile(path, readOnly) }

	w, err := open(false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = open(false)
	wantLocked(t, "a second writer", err, path, true)
	_, err = open(true)
	wantLocked(t, "a reader while a writer holds it", err, path, true)
	fs, err := OpenFileForceShare(path)
	if err != nil {
		t.Fatalf("force-share while a writer holds it: %v", err)
	}
	if !fs.ReadOnly() {
		t.Error("a force-share store is writable")
	}
	fs.Close()
	_, err = CreateFile(path, 4096)
	wantLocked(t, "CreateFile while a writer holds it", err, path, true)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	r1, err := open(true)
	if err != nil {
		t.Fatalf("a reader after the writer closed: %v", err)
	}
	r2, err := open(true)
	if err != nil {
		t.Fatalf("a second reader: %v", err)
	}
	_, err = open(false)
	wantLocked(t, "a writer while readers hold it", err, path, false)
	_, err = CreateFile(path, 4096)
	wantLocked(t, "CreateFile while readers hold it", err, path, false)
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("a refused CreateFile changed the file (%d bytes, %v)", len(got), err)
	}
	r1.Close()
	_, err = open(false)
	wantLocked(t, "a writer while one reader is left", err, path, false)
	r2.Close()

	c, err := CreateFile(path, 8192)
	if err != nil {
		t.Fatalf("CreateFile of the released file: %v", err)
	}
	if c.Size() != 8192 {
		t.Errorf("CreateFile over the old file: size %d, want 8192", c.Size())
	}
	_, err = open(true)
	wantLocked(t, "a reader while CreateFile's store holds it", err, path, true)
	c.Close()
	if _, err := OpenFile(filepath.Join(t.TempDir(), "none.img"), true); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
}

// TestFileStoreCloseReleasesTheLockWhileTheFileIsShared: a child process
// that a goroutine of this process forks shares every open file until it
// execs (Go's ForkExec closes the close-on-exec ones only then), and the
// lock belongs to the open file: Close must release it all the same, or a
// parallel exec makes the next open of the image fail as "in use" (the
// control tests' images did, now and then). A dup of the descriptor shares
// the open file as such a child does.
func TestFileStoreCloseReleasesTheLockWhileTheFileIsShared(t *testing.T) {
	path, _ := lockedImage(t)
	for _, readOnly := range []bool{false, true} {
		s, err := OpenFile(path, readOnly)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := s.f.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var shared int
		var derr error
		if err := rc.Control(func(fd uintptr) { shared, derr = syscall.Dup(int(fd)) }); err != nil || derr != nil {
			t.Fatal(err, derr)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		w, err := OpenFile(path, false)
		syscall.Close(shared)
		if err != nil {
			t.Fatalf("a writer after the store (read-only %v) closed while its file was shared: %v", readOnly, err)
		}
		w.Close()
	}
}

// TestFileStoreLockReleasedWhenKilled: the lock goes with the process, even
// one killed with SIGKILL: a child process holds the image for writing, a
// reader here is refused, and once the child is killed a writer gets in.
func TestFileStoreLockReleasedWhenKilled(t *testing.T) {
	if path := os.Getenv("VDISK_TEST_LOCK_HOLDER"); path != "" {
		s, err := OpenFile(path, false)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("locked")
		time.Sleep(time.Minute) // killed long before; a bound regardless
		s.Close()
		os.Exit(0)
	}
	path, _ := lockedImage(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestFileStoreLockReleasedWhenKilled$")
	cmd.Env = append(os.Environ(), "VDISK_TEST_LOCK_HOLDER="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("the holder process: %q, %v", line, err)
	}
	_, err = OpenFile(path, true)
	wantLocked(t, "a reader while another process writes", err, path, true)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	s, err := OpenFile(path, false)
	if err != nil {
		t.Fatalf("a writer after the holder was killed: %v", err)
	}
	s.Close()
}

// TestFileStoreLockReleasedAtCloseWhileProcessesStart: closing a store
// releases its lock at once, even while other goroutines start processes.
// A child shares every open file description of the parent from its fork
// until its exec closes the copies (close-on-exec), and an OFD or flock
// lock belongs to the description: a store whose file were only closed
// would stay locked through that window, so that the next open in this
// process (CreateImage, then AddImage) would find the image "in use by
// another process that writes it". The loop takes and releases the lock
// as readers and writers a few thousand times while two goroutines start
// processes without pause. The garbage collector is off, so that no
// finalizer closes a file the code under test left open.
func TestFileStoreLockReleasedAtCloseWhileProcessesStart(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	started := testsupport.StartProcesses(t)
	dir := t.TempDir()
	const rounds = 1500
	var failures []string
	for i := range rounds {
		path := filepath.Join(dir, fmt.Sprintf("%d.img", i%8))
		steps := []struct {
			what string
			open func() (*FileStore, error)
		}{
			{"CreateFile", func() (*FileStore, error) { return CreateFile(path, 1<<20) }},
			{"OpenFile for writing after the creating store closed", func() (*FileStore, error) { return OpenFile(path, false) }},
			{"OpenFile for reading after the writer closed", func() (*FileStore, error) { return OpenFile(path, true) }},
			{"OpenFile for writing after the reader closed", func() (*FileStore, error) { return OpenFile(path, false) }},
		}
		for _, step := range steps {
			s, err := step.open()
			if err != nil {
				failures = append(failures, fmt.Sprintf("round %d: %s: %v", i, step.what, err))
				continue
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if started() == 0 {
		t.Fatal("no process started meanwhile: the test proves nothing")
	}
	if len(failures) > 0 {
		t.Fatalf("%d of %d opens found the lock of a closed store (%d processes started meanwhile); the first: %s",
			len(failures), 4*rounds, started(), failures[0])
	}
	t.Logf("%d opens, %d processes started meanwhile", 4*rounds, started())
}
