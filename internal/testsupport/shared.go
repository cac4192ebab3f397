package testsupport

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
)

// SharedEnv names the environment variable that overrides where the shared
// test material is (by default the directory "shared" beside the checkout).
const SharedEnv = "VDISK_SHARED"

// SharedDir returns the directory of outside test material shared by the
// project's checkouts: $VDISK_SHARED, else "shared" next to the module
// root (the directory holding go.mod). The test is skipped, with a message
// naming the directory it looked for, when it is absent; CI has it next to
// the checkout. The material is read-only: copy what a test changes.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir, err := LookupShared()
	if err != nil {
		t.Skipf("shared test material: %v", err)
	}
	return dir
}

// LookupShared is SharedDir for callers that go on without the material
// (a fuzzer that adds seeds from it when it is there): the directory, or
// an error saying where it was looked for.
func LookupShared() (string, error) {
	dir := os.Getenv(SharedEnv)
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(filepath.Dir(root), "shared")
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%s is not a directory (CI has it next to the checkout; set %s to use another place)", dir, SharedEnv)
	}
	return dir, nil
}

// moduleRoot is the nearest directory at or above the working directory
// (a test's package directory) that holds go.mod.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod at or above %s", wd)
		}
	}
}

// DosfstoolsDir is dosfstools' own test suite in the shared material.
func DosfstoolsDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(SharedDir(t), "dosfstools-tests")
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Skipf("dosfstools' test suite not found: %s is not a directory", dir)
	}
	return dir
}

// DosfstoolsCases lists the names (without directory) of the files in
// dosfstools' test suite that match pattern (filepath.Match syntax, such
// as "label-*.xxd"), sorted. It fails the test if none match: a pattern
// that finds nothing would let a table test pass without testing.
func DosfstoolsCases(t testing.TB, pattern string) []string {
	t.Helper()
	dir := DosfstoolsDir(t)
	paths, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no %s in %s", pattern, dir)
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = filepath.Base(p)
	}
	sort.Strings(names)
	return names
}

// DosfstoolsImage turns one of dosfstools' hex dumps (a check-*.fsck,
// check-*.xxd or label-*.xxd file) into an image file in a new temporary
// directory with xxd -r, as dosfstools' own test harness does, and returns
// its path. The test is skipped when xxd is not installed.
func DosfstoolsImage(t testing.TB, name string) string {
	t.Helper()
	src := filepath.Join(DosfstoolsDir(t), name)
	if _, err := os.Stat(src); err != nil {
		t.Fatalf("dosfstools test image: %v", err)
	}
	xxd, err := exec.LookPath("xxd")
	if err != nil {
		t.Skip("xxd not installed: dosfstools' test images are hex dumps (apt-get install xxd)")
	}
	img := filepath.Join(t.TempDir(), name+".img")
	if out, err := exec.Command(xxd, "-r", src, img).CombinedOutput(); err != nil {
		t.Fatalf("xxd -r %s: %v\n%s", name, err, out)
	}
	return img
}
