package fattest

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
)

// Need skips a test when an outside oracle is not installed
// (testsupport.NeedTool).
func Need(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		testsupport.NeedTool(t, tool)
	}
}

// oracle runs the oracles as they need to run: mtools without its checks
// of the image's geometry, in UTF-8, times in UTC; bounded in time, for
// images of a gigabyte too.
var oracle = testsupport.Cmd{Env: []string{"MTOOLS_SKIP_CHECK=1", "LC_ALL=C.UTF-8", "TZ=UTC"}, Timeout: 5 * time.Minute}

// Run runs a tool and returns its output (standard output, then standard
// error) and exit code; it fails the test only if the tool cannot be
// started or does not finish.
func Run(t testing.TB, name string, args ...string) (string, int) {
	t.Helper()
	r := oracle.Run(t, name, args...)
	return r.Output(), r.Code
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
