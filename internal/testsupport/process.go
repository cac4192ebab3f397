package testsupport

import (
	"bytes"
	"errors"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Process is a command a test started and stops by its pid: its output is
// collected, and it is killed when the test ends if it still runs.
type Process struct {
	Cmd *exec.Cmd
	// Addr is the address a `vdisk serve` listens on (StartServe).
	Addr string

	stdout, stderr lockedBuffer
	done           chan struct{} // closed when the process has exited
	err            error         // cmd.Wait's result, once done
}

// Start starts cmd with its standard output and error collected.
func Start(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{Cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.stdout, &p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// Stdout is what the process wrote to its standard output so far.
func (p *Process) Stdout() string { return p.stdout.String() }

// Stderr is what the process wrote to its standard error so far.
func (p *Process) Stderr() string { return p.stderr.String() }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the process's exit (exec.Cmd.Wait's error), once Done.
func (p *Process) Err() error { return p.err }

// Wait waits, for at most timeout, until the process exits, and returns
// its exit status; the test fails if it does not exit in time.
func (p *Process) Wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %v\n%s", p.name(), timeout, p.Stderr())
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("%s: %v", p.name(), p.err)
	return -1
}

// Stop sends SIGTERM and waits, for at most timeout, for the process to
// exit; it is killed if it does not. It returns the exit (nil for status
// 0) or an error saying it had to be killed.
func (p *Process) Stop(timeout time.Duration) error {
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.Cmd.Process.Kill()
		<-p.done
		return errors.New(p.name() + " did not stop within " + timeout.String() + " of SIGTERM")
	}
}

// WaitFor polls, for at most timeout, until ready reports true; the test
// fails, naming what, if the process exits first or time runs out.
func (p *Process) WaitFor(t testing.TB, what string, timeout time.Duration, ready func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ready() {
		select {
		case <-p.done:
			if ready() {
				return
			}
			t.Fatalf("%s exited before %s: %v\n%s", p.name(), what, p.err, p.Stderr())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %s within %v\n%s", p.name(), what, timeout, p.Stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *Process) name() string {
	return strings.Join(append([]string{p.Cmd.Path}, p.Cmd.Args[1:]...), " ")
}

// servingOn is the line with which `vdisk serve` says where it listens.
var servingOn = regexp.MustCompile(`serving on (127\.0\.0\.1:\d+)`)

// StartServe starts `bin serve --listen 127.0.0.1:0 ARGS...` and waits
// (bounded) until it says where it listens, which sets Addr.
func StartServe(t testing.TB, bin string, args ...string) *Process {
	t.Helper()
	p := Start(t, exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...))
	p.WaitFor(t, "listening address", DefaultTimeout, func() bool {
		m := servingOn.FindStringSubmatch(p.Stderr())
		if m != nil {
			p.Addr = m[1]
		}
		return m != nil
	})
	return p
}

// Serve runs an in-process server on a new loopback TCP listener and
// returns its address and a function that stops it: stop is called, serve
// must return, and unless closed is nil its error must match closed
// (errors.Is) — the server's "closed as asked" sentinel. The returned
// function does that once; it also runs when the test ends.
func Serve(t testing.TB, serve func(net.Listener) error, stop func() error, closed error) (string, func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serve(l) }()
	shutdown := sync.OnceFunc(func() {
		if err := stop(); err != nil {
			t.Errorf("stopping the server on %s: %v", l.Addr(), err)
		}
		if err := <-done; closed != nil && !errors.Is(err, closed) {
			t.Errorf("Serve returned %v, want %v", err, closed)
		}
	})
	t.Cleanup(shutdown)
	return l.Addr().String(), shutdown
}

// WaitNBD waits (bounded) until nbdinfo can open uri, which p serves; the
// test fails if p exits first.
func WaitNBD(t testing.TB, p *Process, uri string) {
	t.Helper()
	NeedTool(t, "nbdinfo")
	p.WaitFor(t, uri+" answering nbdinfo", 20*time.Second, func() bool {
		return exec.Command("nbdinfo", "--size", uri).Run() == nil
	})
}
