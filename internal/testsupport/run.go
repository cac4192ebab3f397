package testsupport

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// DefaultTimeout bounds every command Run starts, unless Cmd says otherwise.
const DefaultTimeout = 60 * time.Second

// Cmd says how to run a command: its directory, standard input, extra
// environment and time limit. The zero Cmd runs in the test's directory
// with no input, the test's environment and DefaultTimeout.
type Cmd struct {
	Dir     string
	Stdin   string
	Env     []string // added to the test's environment
	Timeout time.Duration
}

// Result is what a command did.
type Result struct {
	Stdout, Stderr string
	Code           int // the exit status
}

// Output is the command's standard output and error, for messages.
func (r Result) Output() string { return r.Stdout + r.Stderr }

// Run runs name with args and returns its output and exit status, whatever
// the status. The test fails if the command cannot be started or does not
// finish within the time limit (it is then killed).
func (c Cmd) Run(t testing.TB, name string, args ...string) Result {
	t.Helper()
	timeout := c.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = c.Dir
	if len(c.Env) > 0 {
		cmd.Env = append(os.Environ(), c.Env...)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if c.Stdin != "" {
		cmd.Stdin = strings.NewReader(c.Stdin)
	}
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %q: no answer within %v\n%s%s", name, args, timeout, out.String(), errb.String())
	}
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%s %q: %v", name, args, err)
		}
		r.Code = ee.ExitCode()
	}
	return r
}

// Must runs a command that must succeed and returns its standard output;
// the test fails, with the command's output, if it exits non-zero.
func (c Cmd) Must(t testing.TB, name string, args ...string) string {
	t.Helper()
	r := c.Run(t, name, args...)
	if r.Code != 0 {
		t.Fatalf("%s %q: exit status %d\n%s", filepath.Base(name), args, r.Code, r.Output())
	}
	return r.Stdout
}

// Run is Cmd{}.Run: name with args, in the test's directory, bounded.
func Run(t testing.TB, name string, args ...string) Result {
	t.Helper()
	return Cmd{}.Run(t, name, args...)
}

// Must is Cmd{}.Must: a command that must succeed; its standard output.
func Must(t testing.TB, name string, args ...string) string {
	t.Helper()
	return Cmd{}.Must(t, name, args...)
}

// BuildCLI builds cmd/vdisk into a temporary directory of the test and
// returns the binary's path; env is added to go build's environment
// (CGO_ENABLED=0 for a static binary).
func BuildCLI(t testing.TB, env ...string) string {
	t.Helper()
	goTool := NeedTool(t, "go")
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "vdisk")
	Cmd{Dir: root, Env: env, Timeout: 5 * time.Minute}.Must(t, goTool, "build", "-o", bin, "./cmd/vdisk")
	return bin
}
