package vdisk_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/vdisk-dev/vdisk"

// layer is one row of the layer table in docs/DESIGN.md.
type layer struct {
	rank     int
	patterns []string // module-relative: "iomgr", "fsd/...", "." for the root
	used     bool
}

// readLayers parses the layer table of docs/DESIGN.md, the one description
// of the layering: rows `| N | `pkg`, `pkg/...` | role |`, bottom first.
func readLayers(t *testing.T) []*layer {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("docs", "DESIGN.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| (\\d+) \\| ((?:`[^`]+`(?:, )?)+) \\|")
	pkg := regexp.MustCompile("`([^`]+)`")
	var layers []*layer
	for _, line := range strings.Split(string(b), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		l := &layer{rank: len(layers)}
		if m[1] != strconv.Itoa(len(layers)) {
			t.Fatalf("docs/DESIGN.md: layer row %q is numbered %s, want %d (rows go bottom first)", line, m[1], len(layers))
		}
		for _, p := range pkg.FindAllStringSubmatch(m[2], -1) {
			l.patterns = append(l.patterns, p[1])
		}
		layers = append(layers, l)
	}
	if len(layers) < 5 {
		t.Fatalf("docs/DESIGN.md: found %d layer rows; the table is missing or malformed", len(layers))
	}
	return layers
}

// layerOf returns the layer of a package (import path), by the most
// specific pattern that matches it, or nil.
func layerOf(layers []*layer, pkg string) *layer {
	rel := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
	if rel == "" {
		rel = "."
	}
	var best *layer
	bestLen := -1
	for _, l := range layers {
		for _, p := range l.patterns {
			n := -1
			if base, ok := strings.CutSuffix(p, "/..."); ok {
				if rel == base || strings.HasPrefix(rel, base+"/") {
					n = len(base)
				}
			} else if rel == p {
				n = len(p) + 1 // an exact name beats a directory of the same length
			}
			if n > bestLen {
				best, bestLen = l, n
			}
		}
	}
	return best
}

// TestImportsPointDownward checks the layering that docs/DESIGN.md
// describes against `go list -deps`: every package of the module is in a
// layer, every layer names a package, and no package imports one of a
// later layer (packages of one layer, such as filter and its
// sub-packages, may import each other; Go itself forbids cycles).
func TestImportsPointDownward(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not on PATH")
	}
	layers := readLayers(t)
	out, err := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if f[0] != module && !strings.HasPrefix(f[0], module+"/") {
			continue // the standard library and other modules
		}
		seen++
		l := layerOf(layers, f[0])
		if l == nil {
			t.Errorf("package %s is in no layer of docs/DESIGN.md: add it to the table", f[0])
			continue
		}
		l.used = true
		for _, imp := range f[1:] {
			if imp != module && !strings.HasPrefix(imp, module+"/") {
				continue
			}
			if il := layerOf(layers, imp); il != nil && il.rank > l.rank {
				t.Errorf("%s (layer %d) imports %s (layer %d), which is not below it", f[0], l.rank, imp, il.rank)
			}
		}
	}
	if seen < 10 {
		t.Fatalf("go list found %d packages of the module", seen)
	}
	for _, l := range layers {
		if !l.used {
			t.Errorf("docs/DESIGN.md: layer %d (%s) names no package of the module", l.rank, strings.Join(l.patterns, ", "))
		}
	}
}

// TestDesignNamesRealTests checks that every test and benchmark
// docs/DESIGN.md cites as holding a rule exists, so the document cannot
// point at a test that was renamed or removed.
func TestDesignNamesRealTests(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("docs", "DESIGN.md"))
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	decl := regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Fuzz)\w+)\(`)
	err = filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		for _, m := range decl.FindAllSubmatch(b, -1) {
			defined[string(m[1])] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	cited := regexp.MustCompile("`((?:Test|Benchmark|Fuzz)[A-Z]\\w*)`").FindAllSubmatch(doc, -1)
	if len(cited) < 20 {
		t.Fatalf("docs/DESIGN.md cites %d tests; the rule table is missing", len(cited))
	}
	for _, m := range cited {
		if !defined[string(m[1])] {
			t.Errorf("docs/DESIGN.md cites %s, which no _test.go file defines", m[1])
		}
	}
}
