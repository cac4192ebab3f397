package fattest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// Need skips a test when an outside oracle is not installed.
func Need(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: the oracle tests need dosfstools and mtools (apt-get install dosfstools mtools)", tool)
		}
	}
}

// Run runs a tool and returns its output and exit code; it fails the test
// only if the tool cannot be started.
func Run(t testing.TB, name string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "LC_ALL=C.UTF-8", "TZ=UTC")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	}
	t.Fatalf("%s %q: %v", name, args, err)
	return "", -1
}

// Must runs a tool that must succeed.
func Must(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, code := Run(t, name, args...)
	if code != 0 {
		t.Fatalf("%s %q exited %d:\n%s", name, args, code, out)
	}
	return out
}

// Mkfs makes an image with mkfs.fat --invariant in a temporary directory:
// size in KiB, extra options. It skips the test when mkfs.fat is missing.
func Mkfs(t testing.TB, kib int, opts ...string) string {
	t.Helper()
	Need(t, "mkfs.fat")
	p := filepath.Join(t.TempDir(), "vol.img")
	args := append([]string{"-C", "--invariant"}, opts...)
	args = append(args, p, strconv.Itoa(kib))
	Must(t, "mkfs.fat", args...)
	return p
}
