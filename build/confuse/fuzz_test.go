package confuse

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
)

// FuzzParse feeds arbitrary bytes to Parse. Seeds: testdata/fuzz/FuzzParse
// and every configuration of genimage's test suite. No input may panic or
// hang; an error must be an *Error naming the file and a line of it; what
// parses must format to something that parses to the same tree.
func FuzzParse(f *testing.F) {
	for _, path := range testsupport.GenimageConfigs() {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("image a.img {\n\thdimage {}\n\tpartition p { image = \"${X:-x}\" }\n}\ninclude(\"inc\")\n"))
	vars := env(map[string]string{"X": "1M", "Y": "a \"quoted\" ${X}"})
	f.Fuzz(func(t *testing.T, data []byte) {
		// Included files: "inc" is small, any other name is the input itself.
		read := func(name string) ([]byte, error) {
			if name == "inc" {
				return []byte("inc_option = 1\n"), nil
			}
			if name == "missing" {
				return nil, os.ErrNotExist
			}
			return data, nil
		}
		opts := Options{LookupEnv: vars, ReadFile: read}
		nodes, err := Parse("fuzz.cfg", data, opts)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if pe.Pos.File == "" || pe.Pos.Line < 1 {
				t.Fatalf("error %q names no file and line", err)
			}
			if pe.Pos.File == "fuzz.cfg" && pe.Pos.Line > 1+bytes.Count(data, []byte("\n")) {
				t.Fatalf("error %q names line %d of a %d-line input", err, pe.Pos.Line, 1+bytes.Count(data, []byte("\n")))
			}
			return
		}
		out := Format(nodes)
		again, err := Parse("formatted.cfg", out, opts)
		if err != nil {
			t.Fatalf("Format wrote what Parse refuses: %v\n%s", err, out)
		}
		if out2 := Format(again); !bytes.Equal(out, out2) {
			t.Fatalf("Format does not read back:\n%s\nthen\n%s", out, out2)
		}
	})
}
