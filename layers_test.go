package vdisk_test

import (
	"os/exec"
	"strings"
	"testing"
)

// layer ranks follow DESIGN.md's table, bottom first. vpb is a leaf that
// imports nothing of vdisk, so the kernel (iomgr) can use it; internal
// holds test support that imports nothing of vdisk either.
var layers = []string{"internal", "vpb", "iomgr", "disk", "partition", "volume", "mount", "fsd", "filter", "nbd", "", "build", "cmd", "vmtest"}

func rank(t *testing.T, pkg string) int {
	const mod = "github.com/vdisk-dev/vdisk"
	rel := strings.TrimPrefix(strings.TrimPrefix(pkg, mod), "/")
	top := strings.SplitN(rel, "/", 2)[0]
	for i, l := range layers {
		if l == top {
			return i
		}
	}
	t.Fatalf("package %s is in no layer of DESIGN.md: add it to the table in layers_test.go", pkg)
	return -1
}

// TestImportsPointDownward checks the layering rule of DESIGN.md: no package
// imports one above it (packages within one layer, such as filter and its
// sub-packages, may import each other).
func TestImportsPointDownward(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not on PATH")
	}
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "github.com/vdisk-dev/vdisk/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg, r := f[0], rank(t, f[0])
		for _, imp := range f[1:] {
			if !strings.HasPrefix(imp, "github.com/vdisk-dev/vdisk") {
				continue
			}
			// Packages of one layer (filter, filter/fltmgr, filter/monitor)
			// may use each other; Go itself forbids cycles.
			if rank(t, imp) > r {
				t.Errorf("%s imports %s, which is not below it", pkg, imp)
			}
		}
	}
}
