package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk/control"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/stackview"
)

// controlServe is a `vdisk serve --control` process.
type controlServe struct {
	*testsupport.Process
	sock   string
	client *control.Client
}

// startControlServe starts `vdisk serve IMAGE --listen 127.0.0.1:0
// --control SOCK` with extra arguments and waits (bounded) until the
// control API answers; the process is killed at the end of the test if it
// is still running.
func startControlServe(t *testing.T, bin, img string, args ...string) *controlServe {
	t.Helper()
	sock := testsupport.SocketPath(t)
	p := &controlServe{sock: sock,
		Process: testsupport.Start(t, exec.Command(bin, append([]string{"serve", img, "--listen", "127.0.0.1:0", "--control", sock}, args...)...))}
	p.client = control.NewClient(p.sock)
	t.Cleanup(p.client.Close)
	p.WaitFor(t, "control API answering", testsupport.DefaultTimeout, func() bool {
		_, err := p.client.Volumes(context.Background())
		return err == nil
	})
	return p
}

// startMonitor starts `vdisk monitor --control SOCK --from 1 --json` and
// returns once it printed a record (so it is connected and streaming).
func startMonitor(t *testing.T, bin, sock string) *testsupport.Process {
	t.Helper()
	m := testsupport.Start(t, exec.Command(bin, "monitor", "--control", sock, "--from", "1", "--json"))
	m.WaitFor(t, "record", testsupport.DefaultTimeout, func() bool { return strings.Contains(m.Stdout(), "\n") })
	line, _, _ := strings.Cut(m.Stdout(), "\n")
	var rec struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Seq == 0 {
		t.Fatalf("vdisk monitor --json printed %q (%v)\n%s", line, err, m.Stderr())
	}
	return m
}

// TestControlCLIMountWriteAndStopOnSIGTERM runs the vdisk binary: `vdisk
// serve --control` with the monitor filter, `vdisk mount` through the CLI,
// files written into the mounted volume through the control API, the stack
// as `vdisk stack --json` shows it, failures with their exit status, `vdisk
// monitor` stopped by Ctrl-C and by the server's exit; then SIGTERM: the
// server exits 0, removes its socket, and the partition it wrote passes
// fsck.fat -n and reads back with mtools.
func TestControlCLIMountWriteAndStopOnSIGTERM(t *testing.T) {
	t.Parallel()
	testsupport.NeedTool(t, "fsck.fat")
	testsupport.NeedTool(t, "sfdisk")
	bin := testsupport.BuildCLI(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "cli.img")
	testsupport.Must(t, bin, "create", img, "--size", "40MiB", "--table", "gpt", "--part", "16MiB:fat16:ONE", "--part", "rest:fat16:TWO")
	srv := startControlServe(t, bin, img, "--filter", "monitor")
	ctx := context.Background()

	r := testsupport.Run(t, bin, "mount", "cli@1", "--control", srv.sock)
	if r.Code != 0 || !strings.Contains(r.Stdout, "cli@1: mounted") {
		t.Fatalf("vdisk mount: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	files := map[string][]byte{
		"hello.txt":                      []byte("hello from the control API\n"),
		"EFI/BOOT/BOOTX64.EFI":           bytes.Repeat([]byte("MZ"), 1000),
		"A Long Directory Name/data.bin": testsupport.Random(300<<10, 3, false),
	}
	for name, data := range files {
		if _, err := srv.client.WriteFile(ctx, "cli@1", name, bytes.NewReader(data)); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
	}

	r = testsupport.Run(t, bin, "stack", "--control", srv.sock, "--json")
	var st stackview.Info
	if err := json.Unmarshal([]byte(r.Stdout), &st); r.Code != 0 || err != nil {
		t.Fatalf("vdisk stack --json: exit %d, %v\n%s%s", r.Code, err, r.Stdout, r.Stderr)
	}
	driverOf := map[string]string{}
	for _, d := range st.Devices {
		driverOf[d.Name] = d.Driver
	}
	frameOnFAT := false
	for _, d := range st.Devices {
		frameOnFAT = frameOnFAT || d.Driver == `\FileSystem\Filters\FltMgr` && driverOf[d.AttachedTo] == `\FileSystem\Fat`
	}
	if !frameOnFAT {
		t.Errorf("vdisk stack --json shows no filter manager frame attached to a FAT volume device:\n%s", r.Stdout)
	}

	for _, c := range []struct {
		code  int
		args  []string
		words []string
	}{
		{2, []string{"mount", "cli@1"}, []string{"--control"}},
		{1, []string{"mount", "nosuch@1", "--control", srv.sock}, []string{"nosuch"}},
		{1, []string{"dismount", "cli@2", "--control", srv.sock}, []string{"cli@2", "not mounted"}},
		{1, []string{"mount", "cli@1", "--control", srv.sock + ".missing"}, []string{srv.sock + ".missing", "no such file"}},
		{1, []string{"filter", "detach", "trace0", "--control", srv.sock}, []string{"trace0", "monitor"}},
	} {
		r := testsupport.Run(t, bin, c.args...)
		what := "vdisk " + strings.Join(c.args, " ")
		if r.Code != c.code {
			t.Errorf("%s: exit status %d, want %d\n%s", what, r.Code, c.code, r.Stderr)
		}
		testsupport.OneLine(t, what, r.Stderr, c.words...)
	}

	// Two live monitors: Ctrl-C stops one, the server's exit the other.
	interrupted := startMonitor(t, bin, srv.sock)
	if err := interrupted.Cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := interrupted.Wait(t, testsupport.DefaultTimeout); code != 0 {
		t.Errorf("vdisk monitor after SIGINT: exit status %d, want 0\n%s", code, interrupted.Stderr())
	}
	orphaned := startMonitor(t, bin, srv.sock)

	if err := srv.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := srv.Wait(t, testsupport.DefaultTimeout); code != 0 {
		t.Fatalf("vdisk serve after SIGTERM: exit status %d, want 0\n%s", code, srv.Stderr())
	}
	if code := orphaned.Wait(t, testsupport.DefaultTimeout); code != 0 || !strings.Contains(orphaned.Stderr(), "the server ended the stream") {
		t.Errorf("vdisk monitor when the server stopped: exit status %d, want 0 and a note\n%s", code, orphaned.Stderr())
	}
	if !strings.Contains(srv.Stderr(), "dismounting") {
		t.Errorf("vdisk serve did not say it dismounts:\n%s", srv.Stderr())
	}
	if _, err := os.Lstat(srv.sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the control socket is still there after exit: %v", err)
	}

	// fsck.fat has no --offset: check a copy of the partition.
	parts := testsupport.Sfdisk(t, img)
	p1 := filepath.Join(dir, "p1.img")
	if err := os.WriteFile(p1, testsupport.ReadAt(t, img, parts[0].Start, parts[0].Size), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := testsupport.Run(t, "fsck.fat", "-n", p1); r.Code != 0 {
		t.Fatalf("fsck.fat -n on the partition written by vdisk serve: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if _, err := exec.LookPath("mcopy"); err == nil {
		for name, data := range files {
			out := filepath.Join(dir, "out.bin")
			os.Remove(out)
			if r := testsupport.Run(t, "mcopy", "-n", "-i", p1, "::/"+name, out); r.Code != 0 {
				t.Fatalf("mcopy %s: exit %d\n%s", name, r.Code, r.Stderr)
			}
			if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
				t.Errorf("mtools reads %s back different (%d bytes, want %d)", name, len(got), len(data))
			}
		}
	}
}

// TestControlCLISecondSignalStopsAtOnce: while the first SIGTERM's
// shutdown waits for a control request in flight (an upload that does not
// finish), a second signal makes the server exit at once with a nonzero
// status, still removing its socket.
func TestControlCLISecondSignalStopsAtOnce(t *testing.T) {
	t.Parallel()
	bin := testsupport.BuildCLI(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "sig.img")
	testsupport.Must(t, bin, "create", img, "--size", "16MiB", "--table", "none")
	testsupport.Must(t, bin, "format", img, "--fat", "16")
	srv := startControlServe(t, bin, img)
	ctx := context.Background()
	if _, err := srv.client.Mount(ctx, "sig"); err != nil {
		t.Fatal(err)
	}
	// An upload that stays open: the file is created, then no more comes.
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = srv.client.WriteFile(context.Background(), "sig", "slow.bin", pr) }()
	if _, err := pw.Write(make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(testsupport.DefaultTimeout)
	for {
		vs, err := srv.client.Volume(ctx, "sig")
		if err != nil {
			t.Fatal(err)
		}
		if vs.References > 0 {
			break // the upload's file is open: its request is in progress
		}
		if time.Now().After(deadline) {
			t.Fatalf("the upload never opened its file: %+v", vs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := srv.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(srv.Stderr(), "again to stop at once") {
		if time.Now().After(deadline) {
			t.Fatalf("vdisk serve did not start shutting down:\n%s", srv.Stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := srv.Cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := srv.Wait(t, testsupport.DefaultTimeout); code == 0 {
		t.Fatalf("vdisk serve after a second signal: exit status 0, want nonzero\n%s", srv.Stderr())
	}
	if !strings.Contains(srv.Stderr(), "second signal") {
		t.Errorf("vdisk serve did not say why it stopped:\n%s", srv.Stderr())
	}
	if _, err := os.Lstat(srv.sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the control socket is still there after exit: %v", err)
	}
}
