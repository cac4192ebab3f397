package testsupport

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// GenimageDir is genimage's own test suite (its test/ folder) in the shared
// material; the test is skipped when it is absent.
func GenimageDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(SharedDir(t), "genimage-test")
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Skipf("genimage's test suite not found: %s is not a directory", dir)
	}
	return dir
}

// GenimageConfigs lists the configuration files of genimage's test suite
// (every *.config, in every folder), sorted; none when the suite is absent,
// so that a fuzzer seeded from them still runs on its own seeds.
func GenimageConfigs() []string {
	dir, err := LookupShared()
	if err != nil {
		return nil
	}
	var paths []string
	_ = filepath.WalkDir(filepath.Join(dir, "genimage-test"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(path) == ".config" {
			paths = append(paths, path)
		}
		return nil
	})
	sort.Strings(paths)
	return paths
}
