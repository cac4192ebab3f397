package build

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vdisk-dev/vdisk/disk"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
)

// buildConfig builds the configuration text with inputs from in into a
// new output directory, which it returns.
func buildConfig(t *testing.T, text, in string, opts *Options) (string, error) {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "genimage.cfg")
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "images")
	if opts == nil {
		opts = &Options{}
	}
	if opts.Flags == nil {
		opts.Flags = map[string]string{}
	}
	for k, v := range map[string]string{"inputpath": in, "outputpath": out, "rootpath": filepath.Join(in, "root"),
		"tmppath": filepath.Join(dir, "tmp"), "loglevel": "0"} {
		if _, ok := opts.Flags[k]; !ok {
			opts.Flags[k] = v
		}
	}
	conf, err := Load(cfg, LoadOptions{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		return out, err
	}
	p, err := NewPlan(conf, opts)
	if err != nil {
		return out, err
	}
	return out, p.Build()
}

// dataRanges is where a file holds data, as the kernel's SEEK_DATA and
// SEEK_HOLE report it, within [off, off+n).
func dataRanges(t *testing.T, path string, off, n int64) [][2]int64 {
	t.Helper()
	s, err := disk.OpenFile(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n = min(n, s.Size()-off)
	ext, err := disk.MapAllocation(s, off, n)
	if err != nil {
		t.Fatal(err)
	}
	var r [][2]int64
	for _, e := range ext {
		if !e.Hole {
			r = append(r, [2]int64{e.Offset - off, e.End() - off})
		}
	}
	return r
}

// TestPartitionFillSparseOffset covers the partition options genimage 16
// lacks (so TestMatchesGenimage16 cannot): sparse, fill and imageoffset.
func TestPartitionFillSparseOffset(t *testing.T) {
	in := t.TempDir()
	compareInputs(t, in) // sparse.img: 1 MiB, data at 0, 256 KiB and 1 MiB - 4 KiB
	out, err := buildConfig(t, `image d.img {
	hdimage { align = 4M partition-table-type = gpt }
	partition keep { image = "sparse.img" }
	partition dense { image = "sparse.img" sparse = false }
	partition filled { image = "part1.img" fill = true sparse = false size = 1M }
	partition holey { image = "part1.img" fill = true size = 1M }
	partition offset { image = "sparse.img" imageoffset = 256K }
}
`, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(out, "d.img")
	data, _ := os.ReadFile(img)
	sparse, _ := os.ReadFile(filepath.Join(in, "sparse.img"))
	part1, _ := os.ReadFile(filepath.Join(in, "part1.img"))
	const M = 1 << 20
	check := func(what string, off int64, want []byte) {
		t.Helper()
		if got := data[off : off+int64(len(want))]; !bytes.Equal(got, want) {
			t.Errorf("%s: bytes differ", what)
		}
	}
	check("keep", 4*M, sparse)
	check("dense", 8*M, sparse)
	check("filled", 12*M, append(append([]byte{}, part1...), make([]byte, M-len(part1))...))
	check("offset", 20*M, sparse[256<<10:])
	for _, c := range []struct {
		what string
		off  int64
		want [][2]int64
	}{
		{"keep (the input's holes kept)", 4 * M, [][2]int64{{0, 4096}, {256 << 10, 260 << 10}, {M - 4096, M}}},
		{"dense (sparse = false: holes written)", 8 * M, [][2]int64{{0, M}}},
		{"filled (fill, sparse = false: zeros written)", 12 * M, [][2]int64{{0, M}}},
		{"holey (fill, sparse: the rest a hole)", 16 * M, [][2]int64{{0, 4096}}},
	} {
		if got := dataRanges(t, img, c.off, M); !equalRanges(got, c.want) {
			t.Errorf("%s: data at %v, want %v", c.what, got, c.want)
		}
	}
}

func equalRanges(a, b [][2]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSparseExt4Partition is genimage's "hdimage sparse" case with the ext4
// image built beforehand by mke2fs, as vdisk asks: the partition must hold
// the file system byte for byte, e2fsck must find it clean there, and its
// holes must stay holes.
func TestSparseExt4Partition(t *testing.T) {
	for _, tool := range []string{"mke2fs", "e2fsck", "sfdisk"} {
		testsupport.NeedTool(t, tool)
	}
	in := t.TempDir()
	compareInputs(t, in)
	root := filepath.Join(in, "tree")
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "hostname"), []byte("board\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ext4 := filepath.Join(in, "test.ext4")
	cmd := exec.Command("mke2fs", "-q", "-t", "ext4", "-L", "mke2fs", "-U", "12345678-1234-1234-1234-1234567890ab",
		"-E", "root_owner=0:0", "-d", root, ext4, "32M")
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME=946684800")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	out, err := buildConfig(t, `image test.hdimage {
	hdimage { align = 1M fill = true disk-signature = 0x12345678 }
	partition part1 { image = "part1.img" size = 1M partition-type = 0x83 }
	partition part2 { image = "test.ext4" partition-type = 0x83 }
	partition part3 { image = "part1.img" size = 1M partition-type = 0x83 }
}
`, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(out, "test.hdimage")
	data, _ := os.ReadFile(img)
	fsys, _ := os.ReadFile(ext4)
	const off = 2 << 20
	if !bytes.Equal(data[off:off+len(fsys)], fsys) {
		t.Fatalf("partition 2 does not hold the ext4 image")
	}
	part := filepath.Join(t.TempDir(), "part2.ext4")
	if err := os.WriteFile(part, data[off:off+len(fsys)], 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("e2fsck", "-fn", part).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn on partition 2: %v\n%s", err, out)
	}
	// Where the image holds data, the input does: its holes stay holes.
	// (Not the reverse: mke2fs preallocates the journal, and such an
	// unwritten extent reads as data or as a hole depending on the page
	// cache; either way it reads as zeros.)
	got, in4 := dataRanges(t, img, off, int64(len(fsys))), dataRanges(t, ext4, 0, int64(len(fsys)))
	var allocated int64
	for _, r := range got {
		allocated += r[1] - r[0]
		inside := false
		for _, w := range in4 {
			inside = inside || w[0] <= r[0] && r[1] <= w[1]
		}
		if !inside {
			t.Errorf("partition 2 holds data at %v, where the ext4 image (data at %v) has a hole", r, in4)
		}
	}
	if allocated == 0 || allocated > 8<<20 {
		t.Errorf("partition 2 holds %d bytes of data, for a 32 MiB ext4 image with a few files", allocated)
	}
	if dump, err := exec.Command("sfdisk", "-d", img).Output(); err != nil || !bytes.Contains(dump, []byte("start=        4096, size=       65536, type=83")) {
		t.Errorf("sfdisk -d: %v\n%s", err, dump)
	}
}
