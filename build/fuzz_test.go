package build

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/vdisk-dev/vdisk/build/confuse"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
)

// FuzzPlan feeds arbitrary configurations through the whole front end but
// the writing: parse, check against genimage's schema, resolve settings,
// size and lay out every image (with inputs from the test's input files).
// Seeds: testdata/fuzz/FuzzPlan, genimage's test configurations and
// testdata/compare. No input may panic or hang; every refusal must be a
// syntax or configuration error naming a file and line.
func FuzzPlan(f *testing.F) {
	seeds := testsupport.GenimageConfigs()
	compare, _ := filepath.Glob("testdata/compare/*.cfg")
	for _, path := range append(seeds, compare...) {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	in := f.TempDir()
	compareInputs(f, in)
	root := filepath.Join(in, "root", "boot")
	if err := os.MkdirAll(root, 0o755); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "zImage"), make([]byte, 5000), 0o644); err != nil {
		f.Fatal(err)
	}
	noEnv := func(string) (string, bool) { return "", false }
	f.Fuzz(func(t *testing.T, data []byte) {
		nodes, err := confuse.Parse("fuzz.cfg", data, confuse.Options{LookupEnv: noEnv,
			ReadFile: func(string) ([]byte, error) { return nil, os.ErrNotExist }})
		if err != nil {
			return // FuzzParse checks the parser's errors
		}
		conf, err := FromNodes("fuzz.cfg", nodes)
		if err == nil {
			_, err = NewPlan(conf, &Options{LookupEnv: noEnv, Flags: map[string]string{"inputpath": in,
				"outputpath": filepath.Join(in, "out"), "rootpath": filepath.Join(in, "root"), "tmppath": filepath.Join(in, "tmp")}})
		}
		if err == nil {
			return
		}
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Fatalf("refused without a *ConfigError: %v", err)
		}
		if ce.Pos.File == "" || ce.Pos.Line < 1 {
			t.Fatalf("error %q names no file and line", err)
		}
	})
}
