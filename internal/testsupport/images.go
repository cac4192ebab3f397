package testsupport

// Disk image files as outside tools see them: the partitions sfdisk and
// fdisk find, bytes written and read behind vdisk's back, hashes, a
// partition copied out for fsck.fat.

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// MiB is a mebibyte, the unit of the fixture images' sizes.
const MiB = 1 << 20

// Part is a partition as an outside tool sees it, in bytes.
type Part struct{ Start, Size int64 }

// End is the offset just past the partition.
func (p Part) End() int64 { return p.Start + p.Size }

// Sfdisk returns the partitions of an image as `sfdisk -J` lists them,
// leaving out MBR extended containers (which are not volumes).
func Sfdisk(t testing.TB, path string) []Part {
	t.Helper()
	out := Must(t, "sfdisk", "-J", path)
	var j struct {
		Table struct {
			SectorSize int64 `json:"sectorsize"`
			Partitions []struct {
				Start int64  `json:"start"`
				Size  int64  `json:"size"`
				Type  string `json:"type"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("sfdisk -J %s: %v\n%s", path, err, out)
	}
	ss := j.Table.SectorSize
	if ss == 0 {
		ss = 512
	}
	var parts []Part
	for _, p := range j.Table.Partitions {
		switch strings.ToLower(p.Type) {
		case "5", "f", "85":
			continue
		}
		parts = append(parts, Part{p.Start * ss, p.Size * ss})
	}
	return parts
}

// Fdisk4096 returns the partitions of an image read with 4096-byte
// sectors by fdisk (sfdisk 2.38 cannot override an image's sector size).
func Fdisk4096(t testing.TB, path string) []Part {
	t.Helper()
	out := Must(t, "fdisk", "-b", "4096", "-l", "-o", "Device,Start,Sectors", path)
	var parts []Part
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || !strings.HasPrefix(f[0], path) {
			continue
		}
		start, err1 := strconv.ParseInt(f[1], 10, 64)
		n, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("fdisk line %q", line)
		}
		parts = append(parts, Part{start * 4096, n * 4096})
	}
	if len(parts) == 0 {
		t.Fatalf("fdisk -b 4096 -l %s lists no partitions:\n%s", path, out)
	}
	return parts
}

// Random returns n deterministic random bytes; with holes, every third
// 64 KiB block is zero (so copies exercise zeroing too).
func Random(n int, seed byte, holes bool) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	if holes {
		for off := 0; off < n; off += 3 * 64 << 10 {
			clear(b[off:min(n, off+64<<10)])
		}
	}
	return b
}

// WriteAt writes p into the file at path at off, behind any System's back.
func WriteAt(t testing.TB, path string, p []byte, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(p, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// ReadAt reads n bytes of the file at path at off.
func ReadAt(t testing.TB, path string, off int64, n int64) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

// HashOutside hashes an image file except [p.Start, p.End()).
func HashOutside(t testing.TB, path string, p Part) [2][32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return [2][32]byte{sha256.Sum256(b[:p.Start]), sha256.Sum256(b[p.End():])}
}

// HashFile is the SHA-256 of the file at path.
func HashFile(t testing.TB, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// Blocks is stat(2)'s st_blocks (512-byte units), what `stat -c %b` prints.
func Blocks(t testing.TB, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks
}

// ExtractPartition copies a partition out of an image into a sparse file of
// its own (fsck.fat has no offset option) and returns its path. What lies
// past the end of the file reads as zeros: an image need not be as long as
// its disk (genimage ends one that is not filled at its last data).
func ExtractPartition(t testing.TB, path string, off, size int64) string {
	t.Helper()
	src, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out := filepath.Join(t.TempDir(), "part.img")
	dst, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if err := dst.Truncate(size); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	zero := make([]byte, len(buf))
	for pos := int64(0); pos < size; pos += int64(len(buf)) {
		n := min(int64(len(buf)), size-pos)
		got, err := src.ReadAt(buf[:n], off+pos)
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		clear(buf[got:n])
		if !bytes.Equal(buf[:n], zero[:n]) {
			if _, err := dst.WriteAt(buf[:n], pos); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// FsckPartition runs fsck.fat -n on one partition of an image.
func FsckPartition(t testing.TB, path string, off, size int64) {
	t.Helper()
	part := ExtractPartition(t, path, off, size)
	if out, err := exec.Command("fsck.fat", "-n", part).CombinedOutput(); err != nil {
		t.Fatalf("fsck.fat -n: %v\n%s", err, out)
	}
}
