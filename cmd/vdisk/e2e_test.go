package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk/imageinfo"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
)

// End-to-end tests of the vdisk binary: exit statuses and one-line
// errors, create and info against sfdisk, serve until SIGTERM.

// TestE2ECLI runs the vdisk binary: usage errors exit 2 with one line naming
// the problem, failures exit 1 naming the path, create/info agree with
// sfdisk, and `vdisk serve` serves until SIGTERM, then flushes and exits 0.
func TestE2ECLI(t *testing.T) {
	t.Parallel()
	bin := testsupport.BuildCLI(t)
	dir := t.TempDir()

	t.Run("create usage errors", func(t *testing.T) {
		img := filepath.Join(dir, "bad.img")
		for _, c := range []struct {
			args  []string
			words []string
		}{
			{[]string{img, "--size", "lots"}, []string{"--size", "lots"}},
			{[]string{img, "--size", "64MiB", "--table", "zfs"}, []string{"--table", "zfs"}},
			{[]string{img, "--size", "64MiB", "--part", "8MiB:ntfs"}, []string{"ntfs"}},
			{[]string{img, "--size", "64MiB", "--part", "banana"}, []string{"banana", "SIZE:TYPE"}},
			{[]string{img, "--size", "64MiB", "--part", "0:linux"}, []string{"0:linux", "size"}},
			{[]string{"--size", "64MiB"}, []string{"IMAGE"}},
			{[]string{img, "other.img", "--size", "64MiB"}, []string{"IMAGE"}},
			{[]string{img, "--size", "64MiB", "--bogus"}, []string{"bogus"}},
		} {
			r := testsupport.Run(t, bin, append([]string{"create"}, c.args...)...)
			what := fmt.Sprintf("vdisk create %q", c.args)
			if r.Code != 2 {
				t.Errorf("%s: exit status %d, want 2\n%s", what, r.Code, r.Stderr)
			}
			testsupport.OneLine(t, what, r.Stderr, c.words...)
			if _, err := os.Stat(img); err == nil {
				t.Fatalf("%s created the image", what)
			}
		}
	})

	t.Run("create and info", func(t *testing.T) {
		testsupport.NeedTool(t, "sfdisk")
		img := filepath.Join(dir, "made.img")
		r := testsupport.Run(t, bin, "create", img, "--size", "48MiB", "--table", "mbr",
			"--part", "8MiB:linux", "--part", "8MiB:raw", "--part", "8MiB:linux", "--part", "4MiB:linux", "--part", "rest:raw")
		if r.Code != 0 {
			t.Fatalf("vdisk create: exit status %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		r = testsupport.Run(t, bin, "info", img, "--json")
		if r.Code != 0 {
			t.Fatalf("vdisk info: exit status %d\n%s", r.Code, r.Stderr)
		}
		var info imageinfo.ImageInfo
		if err := json.Unmarshal([]byte(r.Stdout), &info); err != nil {
			t.Fatalf("vdisk info --json: %v\n%s", err, r.Stdout)
		}
		want := testsupport.Sfdisk(t, img)
		if info.Table != "mbr" || info.Size != 48*testsupport.MiB || info.SectorSize != 512 || len(info.Partitions) != len(want) {
			t.Fatalf("vdisk info: %+v, sfdisk sees %v", info, want)
		}
		for i, p := range info.Partitions {
			if p.Number != i+1 || p.Start != want[i].Start || p.Size != want[i].Size || p.Export != fmt.Sprintf("made@%d", i+1) {
				t.Errorf("vdisk info partition %d: %+v, sfdisk says %+v", i+1, p, want[i])
			}
		}
		// An existing file is not replaced.
		r = testsupport.Run(t, bin, "create", img, "--size", "8MiB")
		if r.Code != 1 {
			t.Errorf("vdisk create over an existing file: exit status %d, want 1", r.Code)
		}
		testsupport.OneLine(t, "create over an existing file", r.Stderr, img, "exists")
	})

	t.Run("info of a missing file", func(t *testing.T) {
		missing := filepath.Join(dir, "no-such.img")
		r := testsupport.Run(t, bin, "info", missing)
		if r.Code != 1 {
			t.Errorf("vdisk info %s: exit status %d, want 1", missing, r.Code)
		}
		testsupport.OneLine(t, "vdisk info of a missing file", r.Stderr, missing)
		r = testsupport.Run(t, bin, "serve", "--listen", "127.0.0.1:0", missing)
		if r.Code != 1 {
			t.Errorf("vdisk serve %s: exit status %d, want 1", missing, r.Code)
		}
		testsupport.OneLine(t, "vdisk serve of a missing file", r.Stderr, missing)
		r = testsupport.Run(t, bin, "serve")
		if r.Code != 2 {
			t.Errorf("vdisk serve without an image: exit status %d, want 2", r.Code)
		}
		testsupport.OneLine(t, "vdisk serve without an image", r.Stderr, "IMAGE")
	})

	t.Run("serve until SIGTERM", func(t *testing.T) {
		testsupport.NeedTool(t, "nbdinfo")
		testsupport.NeedTool(t, "nbdcopy")
		testsupport.NeedTool(t, "sfdisk")
		img := filepath.Join(dir, "served.img")
		if r := testsupport.Run(t, bin, "create", img, "--size", "32MiB", "--table", "gpt", "--part", "8MiB:linux:one", "--part", "rest:raw:two"); r.Code != 0 {
			t.Fatalf("vdisk create: %d\n%s", r.Code, r.Stderr)
		}
		parts := testsupport.Sfdisk(t, img)
		srv := testsupport.StartServe(t, bin, img)
		addr := srv.Addr

		list := testworld.Nbdinfo(t, "--list", "nbd://"+addr)
		if len(list) != 4 || list[2].Name != "served@1" || list[2].Size != parts[0].Size || list[3].Size != parts[1].Size {
			t.Fatalf("nbdinfo --list of vdisk serve: %+v", list)
		}
		src := filepath.Join(dir, "served-src.bin")
		data := testsupport.Random(int(parts[0].Size), 8, true)
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		testsupport.Must(t, "nbdcopy", src, "nbd://"+addr+"/served@1") // no --flush: the server's shutdown flushes

		// An idle client stays connected while the server stops.
		var idle *exec.Cmd
		if py, err := exec.LookPath("/usr/bin/python3"); err == nil && exec.Command(py, "-c", "import nbd").Run() == nil {
			idle = exec.Command(py, "-m", "nbd", "-u", "nbd://"+addr+"/served@2", "-c",
				`import sys; h.pwrite(b"idle" * 1024, 0); print("ready", flush=True); sys.stdin.read()`)
			stdin, err := idle.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := idle.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := idle.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { stdin.Close(); idle.Process.Kill(); idle.Wait() })
			ready := make(chan string, 1)
			go func() {
				b := make([]byte, 6)
				n, _ := stdout.Read(b)
				ready <- string(b[:n])
			}()
			select {
			case s := <-ready:
				if !strings.HasPrefix(s, "ready") {
					t.Fatalf("idle nbdsh client: %q", s)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("idle nbdsh client did not connect")
			}
		}

		if err := srv.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-srv.Done():
			if srv.Err() != nil {
				t.Fatalf("vdisk serve after SIGTERM: %v (want exit status 0)\n%s", srv.Err(), srv.Stderr())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("vdisk serve did not exit within 30 s of SIGTERM\n%s", srv.Stderr())
		}
		if !strings.Contains(srv.Stderr(), "flushing") {
			t.Errorf("vdisk serve did not say it flushed:\n%s", srv.Stderr())
		}
		if !bytes.Equal(testsupport.ReadAt(t, img, parts[0].Start, parts[0].Size), data) {
			t.Error("the data nbdcopy wrote through vdisk serve is not at partition 1's offset")
		}
		if idle != nil && !bytes.Equal(testsupport.ReadAt(t, img, parts[1].Start, 4096), bytes.Repeat([]byte("idle"), 1024)) {
			t.Error("the idle client's write is not at partition 2's offset")
		}
	})
}
