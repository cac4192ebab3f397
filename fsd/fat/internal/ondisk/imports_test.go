package ondisk

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsOnlyTheStandardLibrary keeps the on-disk layer pure: it
// imports nothing of vdisk (no I/O stack, no status codes) and no other
// module, so the FSD, Format, a checker and the fuzzers can all use it as
// it is. (layers_test.go checks the layers between packages; this is the
// rule within fsd/fat.)
func TestImportsOnlyTheStandardLibrary(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not on PATH")
	}
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, imp := range strings.Fields(string(out)) {
		if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") {
			t.Errorf("ondisk imports %s: it may import only the standard library", imp)
		}
	}
}
