package disk

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// qemuIO runs qemu-io with a time limit and returns its exit status and
// output.
func qemuIO(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "qemu-io", args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("qemu-io %q: %v", args, err)
	}
	return 0, string(out)
}

// TestFileStoreLocksAgainstQemu: the lock is qemu's, so qemu is the oracle.
// While vdisk writes an image, qemu-io cannot open it for writing ("Failed
// to get "write" lock"), and with -U (force-share) it can read it; while
// vdisk only reads it, qemu-io can read but not write. While qemu-nbd serves
// an image writable, vdisk can neither write nor read it, and says the
// holder writes it; while qemu-nbd serves it read-only, vdisk can read.
func TestFileStoreLocksAgainstQemu(t *testing.T) {
	for _, tool := range []string{"qemu-io", "qemu-nbd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found (Debian package qemu-utils): it is the oracle for image locks", tool)
		}
	}
	path, _ := lockedImage(t)

	w, err := OpenFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	if code, out := qemuIO(t, "-f", "raw", path, "-c", "write 0 512"); code == 0 || !strings.Contains(out, `Failed to get "write" lock`) {
		t.Errorf("qemu-io writing an image vdisk writes: exit status %d, want a lock failure:\n%s", code, out)
	}
	if code, out := qemuIO(t, "-r", "-U", "-f", "raw", path, "-c", "read 0 512"); code != 0 {
		t.Errorf("qemu-io -r -U reading an image vdisk writes: exit status %d\n%s", code, out)
	}
	w.Close()

	r, err := OpenFile(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if code, out := qemuIO(t, "-f", "raw", path, "-c", "write 0 512"); code == 0 || !strings.Contains(out, `Failed to get "write" lock`) {
		t.Errorf("qemu-io writing an image vdisk reads: exit status %d, want a lock failure:\n%s", code, out)
	}
	if code, out := qemuIO(t, "-r", "-f", "raw", path, "-c", "read 0 512"); code != 0 {
		t.Errorf("qemu-io -r reading an image vdisk reads: exit status %d\n%s", code, out)
	}
	r.Close()
	if code, out := qemuIO(t, "-f", "raw", path, "-c", "write 0 512"); code != 0 {
		t.Errorf("qemu-io writing the image once vdisk closed it: exit status %d\n%s", code, out)
	}

	serve := func(readOnly bool) {
		t.Helper()
		sock := filepath.Join(t.TempDir(), "nbd.sock")
		args := []string{"-f", "raw", "-k", sock, path}
		if readOnly {
			args = append([]string{"-r"}, args...)
		}
		cmd := exec.Command("qemu-nbd", args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		stop := func() { cmd.Process.Kill(); cmd.Wait() }
		t.Cleanup(stop)
		// qemu-nbd opens (and locks) the image before it listens.
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if _, err := os.Stat(sock); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("qemu-nbd did not create its socket within 20 s")
			}
		}
		if readOnly {
			s, err := OpenFile(path, true)
			if err != nil {
				t.Errorf("vdisk reading an image qemu-nbd serves read-only: %v", err)
			} else {
				s.Close()
			}
		} else {
			_, err := OpenFile(path, false)
			wantLocked(t, "vdisk writing an image qemu-nbd serves", err, path, true)
			_, err = OpenFile(path, true)
			wantLocked(t, "vdisk reading an image qemu-nbd serves", err, path, true)
		}
		stop()
	}
	serve(false)
	serve(true)
	s, err := OpenFile(path, false)
	if err != nil {
		t.Fatalf("vdisk writing the image once qemu-nbd stopped: %v", err)
	}
	s.Close()
}
