package confuse

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

// TestParse checks the syntax through Format: each input must give the
// tree that Format prints as want.
func TestParse(t *testing.T) {
	vars := env(map[string]string{"SET": "1K", "EMPTY": "", "SPACE": "a b"})
	cases := []struct{ name, in, want string }{
		{"option", `size = 4095K`, "size = 4095K\n"},
		{"quoted name and value", `"size" = "4 M"`, "size = \"4 M\"\n"},
		{"untitled section", "hdimage {\n}", "hdimage {\n}\n"},
		{"titled section", `image "sd card.img" { size = 1M }`, "image \"sd card.img\" {\n\tsize = 1M\n}\n"},
		{"nested", "image a { partition b { offset = 1s } hdimage {} }", "image a {\n\tpartition b {\n\t\toffset = 1s\n\t}\n\thdimage {\n\t}\n}\n"},
		{"list", `files = { "a", b , 'c' }`, "files = {a, b, c}\n"},
		{"empty list", `files = {}`, "files = {}\n"},
		{"trailing comma", `files = { a, }`, "files = {a}\n"},
		{"append", `files += x`, "files += x\n"},
		{"comments", "# one\n// two\n/* three\n four */ a = b # end\nc = d // end\n", "a = b\nc = d\n"},
		{"slashes in a word", `mountpoint = /boot/efi//x`, "mountpoint = /boot/efi//x\n"},
		{"escapes", `a = "q\"b\\s\$t\tn\nx\x41\101\e"`, "a = \"q\\\"b\\\\s\\$t\\x09n\\x0axAA\\x1b\"\n"},
		{"unknown escape keeps the char", `a = "\q\x"`, "a = qx\n"},
		{"line continuation", "a = \"one\\\ntwo\"", "a = onetwo\n"},
		{"newline kept", "a = \"one\ntwo\"", "a = \"one\\x0atwo\"\n"},
		{"single quotes", `a = 'x\'y\\z\q${SET}'`, "a = \"x'y\\\\z\\\\q\\${SET}\"\n"},
		{"env bare", `a = ${SET}`, "a = 1K\n"},
		{"env default unused", `a = ${SET:-2K}`, "a = 1K\n"},
		{"env default used", `a = ${UNSET:-2K}`, "a = 2K\n"},
		{"env set empty beats default", `a = ${EMPTY:-2K}`, "a = \"\"\n"},
		{"env unset is empty", `a = ${UNSET}`, "a = \"\"\n"},
		{"env in quotes", `a = "x${SET}y${UNSET}z${UNSET:-d}"`, "a = x1Kyzd\n"},
		{"env value not re-read", `a = ${SPACE}`, "a = \"a b\"\n"},
		{"dollar without brace", `a = "$x" b = c$`, "a = \"\\$x\"\nb = \"c\\$\"\n"},
		{"crlf", "a = b\r\nc = d\r\n", "a = b\nc = d\n"},
		{"include", `include("inc.cfg")`, "include(inc.cfg)\n"},
	}
	files := map[string][]byte{"inc.cfg": []byte("x = y\n")}
	read := func(name string) ([]byte, error) {
		if b, ok := files[name]; ok {
			return b, nil
		}
		return nil, os.ErrNotExist
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nodes, err := Parse("test.cfg", []byte(c.in), Options{LookupEnv: vars, ReadFile: read})
			if err != nil {
				t.Fatalf("Parse(%q): %v", c.in, err)
			}
			if got := string(Format(nodes)); got != c.want {
				t.Errorf("Parse(%q) formats as\n%s\nwant\n%s", c.in, got, c.want)
			}
			// What Format writes reads back as the same tree.
			again, err := Parse("again.cfg", Format(nodes), Options{LookupEnv: env(nil), ReadFile: read})
			if err != nil {
				t.Fatalf("Parse(Format(...)): %v", err)
			}
			if got := string(Format(again)); got != c.want {
				t.Errorf("Format does not read back: %q then %q", c.want, got)
			}
		})
	}
}

func TestParsePositions(t *testing.T) {
	in := "image a {\n\n  size = \"x\ny\"\n  partition p {\n    image = /*\n*/ z\n  }\n}\n"
	nodes, err := Parse("p.cfg", []byte(in), Options{LookupEnv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	img := nodes[0]
	size, part := img.Body[0], img.Body[1]
	check := func(what string, got Pos, line int) {
		t.Helper()
		if got != (Pos{File: "p.cfg", Line: line}) {
			t.Errorf("%s at %v, want p.cfg:%d", what, got, line)
		}
	}
	check("image", img.Pos, 1)
	check("size", size.Pos, 3)
	check("size's value", size.Values[0].Pos, 3)
	check("partition", part.Pos, 5)
	check("partition's image value", part.Body[0].Values[0].Pos, 7)
}

// TestParseErrors checks that bad input is an error naming the file and
// the line, and saying what is wrong.
func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, in string
		line     int
		want     string
	}{
		{"unclosed section", "image a {\n size = 1\n", 3, "'}' is missing"},
		{"stray brace", "a = b\n}\n", 2, "closes no section"},
		{"missing value", "a =\n", 2, "has no value"},
		{"missing equal", "a b c\n", 1, "want '{' after the title"},
		{"name then brace close", "image { a }", 1, "followed by '}'"},
		{"list not closed", "a = { x y }", 1, "want ',' or '}'"},
		{"unterminated string", "a = \"x\n\n", 1, "never closed"},
		{"unterminated single", "\na = 'x", 2, "never closed"},
		{"unterminated comment", "a = b\n/* x\n", 2, "never closed"},
		{"star", "a = *", 1, "unexpected '*'"},
		{"plus", "a = b + c", 1, "unexpected '+'"},
		{"dollar mid-word", "a = x${Y}", 1, "in the middle of the unquoted word"},
		{"bad octal", `a = "\400"`, 1, "more than 0377"},
		{"bad escape", `a = "\18"`, 1, "bad escape sequence"},
		{"long octal", `a = "\1234"`, 1, "bad escape sequence"},
		{"unknown function", "foo(x)", 1, "unknown function foo()"},
		{"include arguments", "include(a, b)", 1, "takes one file name"},
		{"include missing", "\ninclude(\"missing.cfg\")", 2, "include(\"missing.cfg\")"},
		{"NUL", "a = b\n\x00", 2, "NUL byte"},
		{"value is a brace", "a = }", 1, "has no value"},
		{"option as title", "a = b = c", 1, "want an option or section name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("bad.cfg", []byte(c.in), Options{LookupEnv: env(nil), ReadFile: func(string) ([]byte, error) { return nil, os.ErrNotExist }})
			var pe *Error
			if !errors.As(err, &pe) || !errors.Is(err, ErrSyntax) {
				t.Fatalf("Parse(%q) = %v, want an *Error wrapping ErrSyntax", c.in, err)
			}
			if pe.Pos.File != "bad.cfg" || pe.Pos.Line != c.line || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Parse(%q) = %q, want bad.cfg:%d: ...%s...", c.in, err, c.line, c.want)
			}
			if !strings.HasPrefix(err.Error(), "bad.cfg:") {
				t.Errorf("error %q does not start with the file name", err)
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	deep := strings.Repeat("a {", MaxNesting+2) + strings.Repeat("}", MaxNesting+2)
	if _, err := Parse("deep.cfg", []byte(deep), Options{LookupEnv: env(nil)}); err == nil || !strings.Contains(err.Error(), "nested more than") {
		t.Errorf("deep nesting: %v", err)
	}
	// A file that includes itself stops at the include depth.
	self := []byte("x = 1\ninclude(\"self.cfg\")\n")
	read := func(string) ([]byte, error) { return self, nil }
	_, err := Parse("self.cfg", self, Options{LookupEnv: env(nil), ReadFile: read})
	if err == nil || !strings.Contains(err.Error(), "includes nested more than 10 deep") {
		t.Errorf("self include: %v", err)
	}
	// A file that includes another many times stops at the size limit.
	wide := []byte(strings.Repeat("include(\"leaf.cfg\")\n", 200))
	leaf := []byte(strings.Repeat("#", 100000))
	_, err = Parse("w.cfg", wide, Options{LookupEnv: env(nil), ReadFile: func(string) ([]byte, error) { return leaf, nil }})
	if err == nil || !strings.Contains(err.Error(), "exceed") {
		t.Errorf("include bomb: %v", err)
	}
}

// TestIncludeSearch checks where include() looks: the search path in
// order, or the name as it is without one; errors inside an included file
// name that file.
func TestIncludeSearch(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"aaa", "bbb"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, d, "inc.cfg"), []byte("x = "+d+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.cfg"), []byte("\n\nx = }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := []byte(`include("inc.cfg")`)
	for _, c := range []struct {
		path []string
		want string
	}{
		{[]string{filepath.Join(dir, "aaa")}, "aaa"},
		{[]string{filepath.Join(dir, "bbb"), filepath.Join(dir, "aaa")}, "bbb"},
		{[]string{filepath.Join(dir, "none"), filepath.Join(dir, "aaa")}, "aaa"},
	} {
		nodes, err := Parse("top.cfg", src, Options{IncludePath: c.path})
		if err != nil {
			t.Fatalf("search %v: %v", c.path, err)
		}
		inc := nodes[0]
		if inc.Kind != Include || inc.Body[0].Values[0].Text != c.want || inc.Body[0].Pos.File != filepath.Join(dir, c.want, "inc.cfg") {
			t.Errorf("search %v: got %s from %s", c.path, Format(inc.Body), inc.Body[0].Pos.File)
		}
	}
	_, err := Parse("top.cfg", src, Options{IncludePath: []string{filepath.Join(dir, "none")}})
	if err == nil || !strings.Contains(err.Error(), "not found in") {
		t.Errorf("not in search path: %v", err)
	}
	_, err = Parse("top.cfg", []byte(`include("`+filepath.Join(dir, "bad.cfg")+`")`), Options{})
	if err == nil || !strings.HasPrefix(err.Error(), filepath.Join(dir, "bad.cfg")+":3: ") {
		t.Errorf("error in an included file: %v", err)
	}
}
