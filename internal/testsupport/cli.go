package testsupport

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// OneLine checks that stderr is what the CLI contract asks of a failing
// vdisk command: exactly one line, starting "vdisk: ", mentioning every
// word (what failed and why).
func OneLine(t testing.TB, what, stderr string, words ...string) {
	t.Helper()
	s := strings.TrimSuffix(stderr, "\n")
	if s == "" || strings.Contains(s, "\n") || !strings.HasPrefix(s, "vdisk: ") {
		t.Errorf("%s: stderr is not one line starting with \"vdisk: \":\n%s", what, stderr)
	}
	for _, w := range words {
		if !strings.Contains(s, w) {
			t.Errorf("%s: stderr %q does not name %q", what, s, w)
		}
	}
}

// SocketPath returns a path for a unix socket in a new directory that is
// removed when the test ends: short enough for sun_path, which the test's
// own temporary directory may not be.
func SocketPath(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "vdctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "ctl.sock")
}
