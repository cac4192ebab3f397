package vdisk_test

import (
	"bufio"
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

	"github.com/vdisk-dev/vdisk"
)

// controlServe is a `vdisk serve --control` process.
type controlServe struct {
	*e2eProcess
	sock   string
	client *vdisk.ControlClient
}

// startControlServe starts `vdisk serve IMAGE --listen 127.0.0.1:0
// --control SOCK` with extra arguments and waits (bounded) until the
// control API answers; the process is killed at the end of the test if it
// is still running.
func startControlServe(t *testing.T, bin, img string, args ...string) *controlServe {
	t.Helper()
	sock := controlSocketPath(t)
	p := &controlServe{sock: sock,
		e2eProcess: e2eStart(t, exec.Command(bin, append([]string{"serve", img, "--listen", "127.0.0.1:0", "--control", sock}, args...)...))}
	p.client = vdisk.NewControlClient(p.sock)
	t.Cleanup(p.client.Close)
	deadline := time.Now().Add(e2eCmdTimeout)
	for {
		_, err := p.client.Volumes(context.Background())
		if err == nil {
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("vdisk serve exited at start: %v\n%s", p.err, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("vdisk serve --control did not answer within %v: %v\n%s", e2eCmdTimeout, err, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait waits (bounded) for the process to exit and returns its exit status.
func (p *controlServe) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(e2eCmdTimeout):
		t.Fatalf("vdisk serve did not exit within %v\n%s", e2eCmdTimeout, p.stderr.String())
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("vdisk serve: %v", p.err)
	return -1
}

// monitorProcess is a running `vdisk monitor --json`.
type monitorProcess struct {
	cmd    *exec.Cmd
	stderr *e2eLockedBuffer
	done   chan struct{}
	err    error
}

// startMonitor starts `vdisk monitor --control SOCK --from 1 --json` and
// returns once it printed a record (so it is connected and streaming).
func startMonitor(t *testing.T, bin, sock string) *monitorProcess {
	t.Helper()
	m := &monitorProcess{cmd: exec.Command(bin, "monitor", "--control", sock, "--from", "1", "--json"), stderr: &e2eLockedBuffer{}, done: make(chan struct{})}
	m.cmd.Stderr = m.stderr
	stdout, err := m.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make(chan string, 1)
	go func() {
		br := bufio.NewReader(stdout)
		s, _ := br.ReadString('\n')
		line <- s
		_, _ = io.Copy(io.Discard, br) // keep the pipe drained until exit
		m.err = m.cmd.Wait()
		close(m.done)
	}()
	t.Cleanup(func() {
		select {
		case <-m.done:
		default:
			m.cmd.Process.Kill()
			<-m.done
		}
	})
	select {
	case s := <-line:
		var rec struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal([]byte(s), &rec); err != nil || rec.Seq == 0 {
			t.Fatalf("vdisk monitor --json printed %q (%v)\n%s", s, err, m.stderr.String())
		}
	case <-time.After(e2eCmdTimeout):
		t.Fatalf("vdisk monitor printed nothing\n%s", m.stderr.String())
	}
	return m
}

// wait waits (bounded) for the monitor to exit and returns its exit status.
func (m *monitorProcess) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-m.done:
	case <-time.After(e2eCmdTimeout):
		t.Fatalf("vdisk monitor did not exit within %v\n%s", e2eCmdTimeout, m.stderr.String())
	}
	var ee *exec.ExitError
	switch {
	case m.err == nil:
		return 0
	case errors.As(m.err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("vdisk monitor: %v", m.err)
	return -1
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
	e2eNeedTool(t, "fsck.fat")
	e2eNeedTool(t, "sfdisk")
	bin := e2eBuildCLI(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "cli.img")
	e2eMust(t, bin, "create", img, "--size", "40MiB", "--table", "gpt", "--part", "16MiB:fat16:ONE", "--part", "rest:fat16:TWO")
	srv := startControlServe(t, bin, img, "--filter", "monitor")
	ctx := context.Background()

	r := e2eRun(t, "", bin, "mount", "cli@1", "--control", srv.sock)
	if r.code != 0 || !strings.Contains(r.stdout, "cli@1: mounted") {
		t.Fatalf("vdisk mount: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	files := map[string][]byte{
		"hello.txt":                      []byte("hello from the control API\n"),
		"EFI/BOOT/BOOTX64.EFI":           bytes.Repeat([]byte("MZ"), 1000),
		"A Long Directory Name/data.bin": e2eRandom(300<<10, 3, false),
	}
	for name, data := range files {
		if _, err := srv.client.WriteFile(ctx, "cli@1", name, bytes.NewReader(data)); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
	}

	r = e2eRun(t, "", bin, "stack", "--control", srv.sock, "--json")
	var st vdisk.StackInfo
	if err := json.Unmarshal([]byte(r.stdout), &st); r.code != 0 || err != nil {
		t.Fatalf("vdisk stack --json: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
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
		t.Errorf("vdisk stack --json shows no filter manager frame attached to a FAT volume device:\n%s", r.stdout)
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
		r := e2eRun(t, "", bin, c.args...)
		what := "vdisk " + strings.Join(c.args, " ")
		if r.code != c.code {
			t.Errorf("%s: exit status %d, want %d\n%s", what, r.code, c.code, r.stderr)
		}
		e2eOneLine(t, what, r.stderr, c.words...)
	}

	// Two live monitors: Ctrl-C stops one, the server's exit the other.
	interrupted := startMonitor(t, bin, srv.sock)
	if err := interrupted.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := interrupted.wait(t); code != 0 {
		t.Errorf("vdisk monitor after SIGINT: exit status %d, want 0\n%s", code, interrupted.stderr.String())
	}
	orphaned := startMonitor(t, bin, srv.sock)

	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := srv.wait(t); code != 0 {
		t.Fatalf("vdisk serve after SIGTERM: exit status %d, want 0\n%s", code, srv.stderr.String())
	}
	if code := orphaned.wait(t); code != 0 || !strings.Contains(orphaned.stderr.String(), "the server ended the stream") {
		t.Errorf("vdisk monitor when the server stopped: exit status %d, want 0 and a note\n%s", code, orphaned.stderr.String())
	}
	if !strings.Contains(srv.stderr.String(), "dismounting") {
		t.Errorf("vdisk serve did not say it dismounts:\n%s", srv.stderr.String())
	}
	if _, err := os.Lstat(srv.sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the control socket is still there after exit: %v", err)
	}

	// fsck.fat has no --offset: check a copy of the partition.
	parts := e2eSfdisk(t, img)
	p1 := filepath.Join(dir, "p1.img")
	if err := os.WriteFile(p1, e2eReadAt(t, img, parts[0].Start, parts[0].Size), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e2eRun(t, "", "fsck.fat", "-n", p1); r.code != 0 {
		t.Fatalf("fsck.fat -n on the partition written by vdisk serve: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := exec.LookPath("mcopy"); err == nil {
		for name, data := range files {
			out := filepath.Join(dir, "out.bin")
			os.Remove(out)
			if r := e2eRun(t, "", "mcopy", "-n", "-i", p1, "::/"+name, out); r.code != 0 {
				t.Fatalf("mcopy %s: exit %d\n%s", name, r.code, r.stderr)
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
	bin := e2eBuildCLI(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "sig.img")
	e2eMust(t, bin, "create", img, "--size", "16MiB", "--table", "none")
	e2eMust(t, bin, "format", img, "--fat", "16")
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
	deadline := time.Now().Add(e2eCmdTimeout)
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
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(srv.stderr.String(), "again to stop at once") {
		if time.Now().After(deadline) {
			t.Fatalf("vdisk serve did not start shutting down:\n%s", srv.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := srv.wait(t); code == 0 {
		t.Fatalf("vdisk serve after a second signal: exit status 0, want nonzero\n%s", srv.stderr.String())
	}
	if !strings.Contains(srv.stderr.String(), "second signal") {
		t.Errorf("vdisk serve did not say why it stopped:\n%s", srv.stderr.String())
	}
	if _, err := os.Lstat(srv.sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the control socket is still there after exit: %v", err)
	}
}
