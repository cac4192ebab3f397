package testsupport

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Seed corpora of fuzz targets whose argument is one []byte (disk images),
// in the file format of Go's fuzzing, written by a package's seed test and
// read back by the tests that damage them.

// seedHeader starts a corpus file of one []byte.
const seedHeader = "go test fuzz v1\n[]byte("

// WriteSeeds writes images as seed corpus files in dir (a fuzz target's
// testdata/fuzz/FuzzXxx), one per name, trailing zeros left out past the
// first 512 bytes (the targets pad).
func WriteSeeds(t testing.TB, dir string, seeds map[string][]byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seeds {
		n := len(b)
		for n > 512 && b[n-1] == 0 {
			n--
		}
		data := seedHeader + strconv.Quote(string(b[:n])) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// ReadSeed reads the image of a seed WriteSeeds wrote in dir.
func ReadSeed(t testing.TB, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(strings.TrimPrefix(string(b), seedHeader), ")\n")
	img, err := strconv.Unquote(s)
	if err != nil {
		t.Fatalf("seed %s/%s: %v", dir, name, err)
	}
	return []byte(img)
}
