package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
)

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
	testsupport.NeedTool(t, "sfdisk")
	bin := testsupport.BuildCLI(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "locked.img")
	testsupport.Must(t, bin, "create", img, "--size", "40MiB", "--part", "16MiB:fat16:ONE", "--part", "rest:fat16:TWO")
	src := filepath.Join(dir, "f.bin")
	if err := os.WriteFile(src, testsupport.Random(300<<10, 5, false), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	srv := startControlServe(t, bin, img)
	if _, err := srv.client.Mount(ctx, "locked@1"); err != nil {
		t.Fatal(err)
	}
	served := testsupport.Random(200<<10, 6, false)
	if _, err := srv.client.WriteFile(ctx, "locked@1", "served.bin", bytes.NewReader(served)); err != nil {
		t.Fatal(err)
	}
	r := testsupport.Run(t, bin, "cp", src, img+"@1:/")
	if r.Code != 1 {
		t.Errorf("vdisk cp into a served image: exit status %d, want 1\n%s", r.Code, r.Stderr)
	}
	testsupport.OneLine(t, "vdisk cp into a served image", r.Stderr, img, "in use by another process that writes it")
	r = testsupport.Run(t, bin, "serve", "--listen", "unix:"+filepath.Join(dir, "second.sock"), img)
	if r.Code != 1 {
		t.Errorf("a second vdisk serve: exit status %d, want 1\n%s", r.Code, r.Stderr)
	}
	testsupport.OneLine(t, "a second vdisk serve", r.Stderr, img, "in use by another process that writes it")
	if r := testsupport.Run(t, bin, "--force-share", "ls", img+"@2:/"); r.Code != 0 {
		t.Errorf("vdisk --force-share ls of a served image: exit status %d\n%s", r.Code, r.Stderr)
	}
	if _, err := exec.LookPath("qemu-io"); err == nil {
		r := testsupport.Run(t, "qemu-io", "-f", "raw", img, "-c", "write 0 512")
		if r.Code == 0 || !strings.Contains(r.Stdout+r.Stderr, `Failed to get "write" lock`) {
			t.Errorf("qemu-io writing an image vdisk serves: exit status %d, want qemu's lock failure\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
	}
	if err := srv.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := srv.Wait(t, testsupport.DefaultTimeout); code != 0 {
		t.Fatalf("vdisk serve after SIGTERM: exit status %d\n%s", code, srv.Stderr())
	}

	testsupport.Must(t, bin, "cp", src, img+"@1:/")
	if got := testsupport.Must(t, bin, "cat", img+"@1:/served.bin"); got != string(served) {
		t.Error("the file the server wrote did not survive")
	}
	if got := testsupport.Must(t, bin, "cat", img+"@1:/f.bin"); got != string(testsupport.Random(300<<10, 5, false)) {
		t.Error("the file cp wrote after the server stopped reads back differently")
	}
	if fsck, err := exec.LookPath("fsck.fat"); err == nil {
		p1 := testsupport.Sfdisk(t, img)[0]
		part := filepath.Join(dir, "p1.img")
		if err := os.WriteFile(part, testsupport.ReadAt(t, img, p1.Start, p1.Size), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := testsupport.Run(t, fsck, "-n", part); r.Code != 0 {
			t.Errorf("fsck.fat -n of partition 1: exit status %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
	}

	t.Run("qemu-nbd holds it", func(t *testing.T) {
		qemuNBD := testsupport.NeedTool(t, "qemu-nbd")
		sock := filepath.Join(dir, "qemu.sock")
		q := testsupport.Start(t, exec.Command(qemuNBD, "-t", "-f", "raw", "-k", sock, img))
		testsupport.WaitNBD(t, q, "nbd+unix:///?socket="+sock)
		r := testsupport.Run(t, bin, "cp", src, img+"@2:/")
		if r.Code != 1 {
			t.Errorf("vdisk cp into an image qemu-nbd serves: exit status %d, want 1\n%s", r.Code, r.Stderr)
		}
		testsupport.OneLine(t, "vdisk cp into an image qemu-nbd serves", r.Stderr, img, "in use by another process that writes it")
		r = testsupport.Run(t, bin, "ls", img+"@2:/")
		if r.Code != 1 {
			t.Errorf("vdisk ls of an image qemu-nbd serves: exit status %d, want 1\n%s", r.Code, r.Stderr)
		}
		testsupport.OneLine(t, "vdisk ls of an image qemu-nbd serves", r.Stderr, "in use by another process that writes it", "--force-share")
	})
}
