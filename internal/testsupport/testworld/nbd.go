package testworld

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
)

// NbdshPrelude is prepended to every nbdsh snippet: tryop calls an
// operation and returns "ok" or the name of the errno the server sent.
const NbdshPrelude = `
import errno, json, sys
import nbd
def tryop(f, *a):
    try:
        f(*a)
        return "ok"
    except nbd.Error as ex:
        n = ex.errno
        return errno.errorcode.get(n, str(n)) if isinstance(n, int) else str(n)
`

// Nbdsh runs a Python snippet in nbdsh connected to uri (the handle is
// h); the snippet prints one JSON object, which is returned.
func Nbdsh(t testing.TB, py, uri, script string) map[string]any {
	t.Helper()
	r := testsupport.Run(t, py, "-m", "nbd", "-u", uri, "-c", NbdshPrelude+script)
	if r.Code != 0 {
		t.Fatalf("nbdsh on %s: exit status %d\n%s%s", uri, r.Code, r.Stdout, r.Stderr)
	}
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(r.Stdout))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("nbdsh on %s: %v\n%s%s", uri, err, r.Stdout, r.Stderr)
	}
	return m
}

// Expect compares nbdsh results with what is wanted.
func Expect(t testing.TB, what string, got map[string]any, want map[string]any) {
	t.Helper()
	for k, w := range want {
		if fmt.Sprint(got[k]) != fmt.Sprint(w) {
			t.Errorf("%s: %s = %v, want %v (all results: %v)", what, k, got[k], w, got)
		}
	}
}

// Export is an export as `nbdinfo --json` describes it.
type Export struct {
	Name         string `json:"export-name"`
	ReadOnly     bool   `json:"is_read_only"`
	CanCache     bool   `json:"can_cache"`
	CanFlush     bool   `json:"can_flush"`
	CanFUA       bool   `json:"can_fua"`
	CanMultiConn bool   `json:"can_multi_conn"`
	CanTrim      bool   `json:"can_trim"`
	CanZero      bool   `json:"can_zero"`
	MinBlock     uint32 `json:"block_size_minimum"`
	Size         int64  `json:"export-size"`
}

// Nbdinfo runs `nbdinfo --json --no-content ARGS...` and returns the exports it
// lists.
func Nbdinfo(t testing.TB, args ...string) []Export {
	t.Helper()
	out := testsupport.Must(t, "nbdinfo", append([]string{"--json", "--no-content"}, args...)...)
	var j struct {
		Exports []Export `json:"exports"`
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("nbdinfo %q: %v\n%s", args, err, out)
	}
	return j.Exports
}

// Extent is one run of a map; Type is nbdinfo's: 0 data, 3 hole+zero.
type Extent struct {
	Offset, Length int64
	Type           int
}

// merge joins adjacent extents of one type.
func merge(in []Extent) []Extent {
	var out []Extent
	for _, e := range in {
		if n := len(out); n > 0 && out[n-1].Type == e.Type && out[n-1].Offset+out[n-1].Length == e.Offset {
			out[n-1].Length += e.Length
			continue
		}
		out = append(out, e)
	}
	return out
}

// NbdinfoMap is `nbdinfo --map --json` of an export (base:allocation).
func NbdinfoMap(t testing.TB, uri string) []Extent {
	t.Helper()
	out := testsupport.Must(t, "nbdinfo", "--map", "--json", uri)
	var raw []struct {
		Offset int64 `json:"offset"`
		Length int64 `json:"length"`
		Type   int   `json:"type"`
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("nbdinfo --map %s: %v\n%s", uri, err, out)
	}
	var ext []Extent
	for _, r := range raw {
		ext = append(ext, Extent{r.Offset, r.Length, r.Type})
	}
	return merge(ext)
}

// QemuMap is `qemu-img map` of a raw file (SEEK_DATA/SEEK_HOLE as qemu
// sees them), in nbdinfo's terms.
func QemuMap(t testing.TB, path string) []Extent {
	t.Helper()
	out := testsupport.Must(t, "qemu-img", "map", "--output=json", "-f", "raw", path)
	var raw []struct {
		Start  int64 `json:"start"`
		Length int64 `json:"length"`
		Data   bool  `json:"data"`
		Zero   bool  `json:"zero"`
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("qemu-img map %s: %v\n%s", path, err, out)
	}
	var ext []Extent
	for _, r := range raw {
		typ := 0
		if !r.Data {
			typ |= 1
		}
		if r.Zero {
			typ |= 2
		}
		ext = append(ext, Extent{r.Start, r.Length, typ})
	}
	return merge(ext)
}

// TypeAt returns the map type covering [off, off+n), or -1 when the range
// spans extents of different types.
func TypeAt(m []Extent, off, n int64) int {
	for _, e := range m {
		if off >= e.Offset && off+n <= e.Offset+e.Length {
			return e.Type
		}
	}
	return -1
}

// FioJob is one job of fio's JSON output.
type FioJob struct {
	Name     string `json:"jobname"`
	Error    int    `json:"error"`
	TotalErr *int   `json:"total_err"`
	Read     struct {
		Bytes int64 `json:"io_bytes"`
	} `json:"read"`
	Write struct {
		Bytes int64 `json:"io_bytes"`
	} `json:"write"`
}

// Fio runs fio and returns its exit status and the jobs of its JSON
// output file (fio's nbd engine prints a line of its own on stdout).
func Fio(t testing.TB, args ...string) (int, []FioJob, string) {
	t.Helper()
	// fio runs in a directory of its own: it may leave files there (verify state).
	dir := t.TempDir()
	out := filepath.Join(dir, "fio.json")
	r := testsupport.Cmd{Dir: dir}.Run(t, "fio", append(args, "--output-format=json", "--output="+out)...)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("fio wrote no output (exit status %d): %v\n%s%s", r.Code, err, r.Stdout, r.Stderr)
	}
	var j struct {
		Jobs []FioJob `json:"jobs"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatalf("fio output: %v\n%s", err, b)
	}
	return r.Code, j.Jobs, r.Stdout + r.Stderr
}
