package disk

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func tempFileStore(t *testing.T, size int64) *FileStore {
	t.Helper()
	s, err := CreateFile(filepath.Join(t.TempDir(), "disk.img"), size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestFileStore(t *testing.T) {
	runStoreSuite(t, func(t *testing.T, size int64) Store { return tempFileStore(t, size) })
}

// TestFileStoreFallbacks runs the suite as if the file system could neither
// punch, zero ranges, preallocate nor seek to data, as on file systems
// older or simpler than ext4.
func TestFileStoreFallbacks(t *testing.T) {
	runStoreSuite(t, func(t *testing.T, size int64) Store {
		s := tempFileStore(t, size)
		disableSparse(s)
		return s
	})

	s := tempFileStore(t, 1<<20)
	disableSparse(s)
	fill := bytes.Repeat([]byte{7}, 1<<20)
	if _, err := s.WriteAt(fill, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteZeroes(100, 1000, ZeroFast); !errors.Is(err, ErrSlowZero) {
		t.Fatalf("WriteZeroes(ZeroFast) without fallocate = %v, want ErrSlowZero", err)
	}
	if err := s.Trim(0, 1<<20); err != nil {
		t.Fatalf("Trim without punching = %v, want a successful no-op", err)
	}
	got := make([]byte, 1<<20)
	if _, err := s.ReadAt(got, 0); err != nil || !bytes.Equal(got, fill) {
		t.Fatalf("refused zeroing or no-op trim changed data (err %v)", err)
	}
	if err := s.WriteZeroes(100, 1000, ZeroNoHole); err != nil {
		t.Fatal(err)
	}
	clear(fill[100:1100])
	if _, err := s.ReadAt(got, 0); err != nil || !bytes.Equal(got, fill) {
		t.Fatalf("zeroing by writing went wrong (err %v)", err)
	}
	ext, err := s.Allocation(0, 1<<20)
	if err != nil || !equalExtents(ext, []Extent{{Offset: 0, Length: 1 << 20}}) {
		t.Fatalf("Allocation without SEEK_DATA = %v, %v; want all data", ext, err)
	}
}

func disableSparse(s *FileStore) {
	s.noPunch.Store(true)
	s.noZeroRange.Store(true)
	s.noPrealloc.Store(true)
	s.noSeekData.Store(true)
}

func TestFileStoreOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "img")
	if err := os.WriteFile(path, bytes.Repeat([]byte("ab"), 2500), 0o666); err != nil {
		t.Fatal(err)
	}
	s, err := OpenFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	if s.Size() != 5000 || s.ReadOnly() || s.Name() != path {
		t.Fatalf("Size, ReadOnly, Name = %d, %v, %q", s.Size(), s.ReadOnly(), s.Name())
	}
	s.Close()

	if _, err := OpenFile(filepath.Join(dir, "missing"), true); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenFile(missing) = %v, want fs.ErrNotExist", err)
	}
	if _, err := OpenFile(dir, true); err == nil {
		t.Errorf("OpenFile(directory) succeeded")
	}
	if _, err := CreateFile(filepath.Join(dir, "neg"), -1); err == nil {
		t.Errorf("CreateFile with negative size succeeded")
	}
	// CreateFile replaces an existing file, like os.Create.
	c, err := CreateFile(path, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	head := make([]byte, 2)
	if _, err := c.ReadAt(head, 0); err != nil || !bytes.Equal(head, []byte{0, 0}) {
		t.Fatalf("CreateFile over an old image kept its data: %q, %v", head, err)
	}
}

func TestFileStoreReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ro.img")
	orig := bytes.Repeat([]byte{0xC3}, 3*4096)
	if err := os.WriteFile(path, orig, 0o444); err != nil {
		t.Fatal(err)
	}
	s, err := OpenFile(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.ReadOnly() {
		t.Fatal("ReadOnly() = false")
	}
	if n, err := s.WriteAt([]byte{1}, 5); n != 0 || !errors.Is(err, ErrReadOnly) {
		t.Errorf("WriteAt = %d, %v; want ErrReadOnly", n, err)
	}
	if err := s.Trim(0, 4096); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Trim = %v; want ErrReadOnly", err)
	}
	for _, f := range []ZeroFlags{0, ZeroNoHole, ZeroFast} {
		if err := s.WriteZeroes(0, 4096, f); !errors.Is(err, ErrReadOnly) {
			t.Errorf("WriteZeroes(flags %d) = %v; want ErrReadOnly", f, err)
		}
	}
	// Reading, mapping and syncing still work.
	got := make([]byte, 10)
	if _, err := s.ReadAt(got, 4090); err != nil || !bytes.Equal(got, orig[:10]) {
		t.Errorf("ReadAt = %q, %v", got, err)
	}
	if _, err := s.Allocation(0, s.Size()); err != nil {
		t.Errorf("Allocation: %v", err)
	}
	if err := s.Sync(); err != nil {
		t.Errorf("Sync: %v", err)
	}
	if now, err := os.ReadFile(path); err != nil || !bytes.Equal(now, orig) {
		t.Fatalf("read-only store changed the file (err %v)", err)
	}
}

// TestFileStoreNeverGrows checks with the OS that a refused write past the
// end leaves the file's size alone.
func TestFileStoreNeverGrows(t *testing.T) {
	s := tempFileStore(t, 10000)
	if _, err := s.WriteAt(make([]byte, 2), 9999); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("WriteAt across the end = %v", err)
	}
	for _, f := range []ZeroFlags{0, ZeroNoHole} {
		if err := s.WriteZeroes(9000, 2000, f); !errors.Is(err, ErrOutOfRange) {
			t.Fatalf("WriteZeroes across the end = %v", err)
		}
	}
	fi, err := os.Stat(s.Name())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 10000 {
		t.Fatalf("file grew to %d bytes", fi.Size())
	}
}

// fsInfo is what the sparse tests need to know about the file and its file
// system, asked of stat(1) rather than of the code under test.
type fsInfo struct {
	blocks    int64 // allocated, in units of unit
	unit      int64 // %B: bytes per %b block
	blockSize int64 // the file system's block size
}

func statFile(t *testing.T, path string) fsInfo {
	t.Helper()
	if _, err := exec.LookPath("stat"); err != nil {
		t.Skip("stat(1) not found; it is the oracle for allocated blocks")
	}
	out, err := exec.Command("stat", "-c", "%b %B", path).Output()
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	fsOut, err := exec.Command("stat", "-f", "-c", "%S", path).Output()
	if err != nil {
		t.Fatalf("stat -f %s: %v", path, err)
	}
	f := strings.Fields(string(out) + " " + string(fsOut))
	var n [3]int64
	for i := range n {
		if n[i], err = strconv.ParseInt(f[i], 10, 64); err != nil {
			t.Fatalf("stat output %q: %v", f, err)
		}
	}
	return fsInfo{blocks: n[0], unit: n[1], blockSize: n[2]}
}

func (fi fsInfo) bytes() int64 { return fi.blocks * fi.unit }

// requirePunch skips unless the file system under the store punches holes.
func requirePunch(t *testing.T, s *FileStore) {
	t.Helper()
	if err := s.punch(0, 1); err != nil || s.noPunch.Load() {
		t.Skipf("the file system holding %s cannot punch holes (%v); set TMPDIR to ext4, XFS, btrfs or tmpfs", s.Name(), err)
	}
}

func TestFileStoreCreateIsSparse(t *testing.T) {
	s := tempFileStore(t, 1<<30)
	if got := statFile(t, s.Name()).bytes(); got > 64<<10 {
		t.Fatalf("a new 1 GiB image takes %d bytes; want it sparse", got)
	}
}

// TestFileStorePunchHole checks with stat(1) that Trim and WriteZeroes free
// exactly the file-system blocks wholly inside their range, and that the
// partial blocks at the edges are zeroed, not freed, with their other bytes
// kept.
func TestFileStorePunchHole(t *testing.T) {
	const size = 1 << 20
	for _, op := range []struct {
		name string
		do   func(s *FileStore, off, n int64) error
	}{
		{"Trim", func(s *FileStore, off, n int64) error { return s.Trim(off, n) }},
		{"WriteZeroes", func(s *FileStore, off, n int64) error { return s.WriteZeroes(off, n, ZeroFast) }},
	} {
		t.Run(op.name, func(t *testing.T) {
			s := tempFileStore(t, size)
			requirePunch(t, s)
			data := randBytes(rand.New(rand.NewPCG(8, 9)), size)
			if _, err := s.WriteAt(data, 0); err != nil {
				t.Fatal(err)
			}
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
			before := statFile(t, s.Name())
			bs := before.blockSize
			if before.bytes() < size {
				t.Fatalf("written image takes only %d bytes", before.bytes())
			}
			// From inside block 10 to inside block 200: blocks 11..199 go.
			off, n := 10*bs+100, 190*bs+77
			if err := op.do(s, off, n); err != nil {
				t.Fatal(err)
			}
			after := statFile(t, s.Name())
			if freed := before.bytes() - after.bytes(); freed != 189*bs {
				t.Errorf("freed %d bytes, want %d (189 whole blocks of %d)", freed, 189*bs, bs)
			}
			clear(data[off : off+n])
			got := make([]byte, size)
			if _, err := s.ReadAt(got, 0); err != nil {
				t.Fatal(err)
			}
			if i := firstDiff(got, data); i >= 0 {
				t.Fatalf("after punching [%d,%d) byte %d = %#x, want %#x", off, off+n, i, got[i], data[i])
			}
		})
	}
}

// TestFileStoreZeroNoHole checks with stat(1) that ZeroNoHole zeroes
// without freeing space.
func TestFileStoreZeroNoHole(t *testing.T) {
	testZeroNoHole(t, t.TempDir(), nil)
}

func testZeroNoHole(t *testing.T, dir string, prepare func(*FileStore)) *FileStore {
	const size = 1 << 20
	s, err := CreateFile(filepath.Join(dir, "nohole.img"), size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	requirePunch(t, s)
	if prepare != nil {
		prepare(s)
	}
	data := randBytes(rand.New(rand.NewPCG(10, 11)), size)
	if _, err := s.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	s.Sync()
	before := statFile(t, s.Name())
	if err := s.WriteZeroes(4096, 512<<10, ZeroNoHole|ZeroFast); err != nil {
		t.Fatalf("WriteZeroes(ZeroNoHole|ZeroFast): %v", err)
	}
	if after := statFile(t, s.Name()); after.bytes() != before.bytes() {
		t.Errorf("ZeroNoHole changed allocation from %d to %d bytes", before.bytes(), after.bytes())
	}
	clear(data[4096 : 4096+512<<10])
	got := make([]byte, size)
	if _, err := s.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if i := firstDiff(got, data); i >= 0 {
		t.Fatalf("byte %d = %#x after ZeroNoHole, want %#x", i, got[i], data[i])
	}
	// And without ZeroNoHole the same range is freed.
	if err := s.WriteZeroes(4096, 512<<10, 0); err != nil {
		t.Fatal(err)
	}
	if after := statFile(t, s.Name()); before.bytes()-after.bytes() != 512<<10 {
		t.Errorf("zeroing without ZeroNoHole freed %d bytes, want %d", before.bytes()-after.bytes(), 512<<10)
	}
	return s
}

// qemuExtent is one entry of `qemu-img map --output=json`.
type qemuExtent struct {
	Start  int64 `json:"start"`
	Length int64 `json:"length"`
	Zero   bool  `json:"zero"`
	Data   bool  `json:"data"`
}

func qemuMap(t *testing.T, path string) []Extent {
	t.Helper()
	qemu, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Skip("qemu-img not found (Debian package qemu-utils); it is the oracle for allocation maps")
	}
	// -U (force-share): the store under test holds the image, locked for
	// writing as qemu would lock it, and qemu-img only reads.
	out, err := exec.Command(qemu, "map", "-U", "--output=json", "-f", "raw", path).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("qemu-img map: %v: %s", err, ee.Stderr)
		}
		t.Fatalf("qemu-img map: %v", err)
	}
	var q []qemuExtent
	if err := json.Unmarshal(out, &q); err != nil {
		t.Fatalf("qemu-img map output %q: %v", out, err)
	}
	var ext []Extent
	for _, e := range q {
		ext = appendExtent(ext, Extent{Offset: e.Start, Length: e.Length, Hole: !e.Data, Zero: e.Zero})
	}
	return ext
}

// TestFileStoreAllocationMatchesQemu builds a pattern of data, holes,
// punched holes and preallocated zeros and compares Allocation with what
// qemu-img map reports for the same file.
func TestFileStoreAllocationMatchesQemu(t *testing.T) {
	const K, M = 1 << 10, 1 << 20
	s := tempFileStore(t, 8*M+12*K)
	requirePunch(t, s)
	r := rand.New(rand.NewPCG(12, 13))
	for _, w := range []struct{ off, n int64 }{
		{0, 64 * K},
		{1 * M, 256 * K},
		{3*M + 4*K, 8 * K},
		{5 * M, M},
		{8 * M, 12 * K}, // up to the end
	} {
		if _, err := s.WriteAt(randBytes(r, int(w.n)), w.off); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Trim(M+64*K, 64*K); err != nil { // a hole inside data
		t.Fatal(err)
	}
	if err := s.WriteZeroes(5*M+128*K, 128*K, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteZeroes(5*M+512*K, 128*K, ZeroNoHole); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	want := qemuMap(t, s.Name())
	t.Logf("qemu-img map: %v", want)
	got := checkExtents(t, s, 0, s.Size())
	if !equalExtents(got, want) {
		t.Fatalf("Allocation disagrees with qemu-img map:\n got %v\nwant %v", got, want)
	}
	if len(got) < 8 {
		t.Fatalf("suspiciously few extents %v: the pattern has more", got)
	}
	// A window that starts and ends inside extents is clipped, not rounded.
	lo, hi := int64(M+100), int64(5*M+200*K+3)
	var clipped []Extent
	for _, e := range want {
		a, b := max(e.Offset, lo), min(e.End(), hi)
		if a < b {
			clipped = append(clipped, Extent{Offset: a, Length: b - a, Hole: e.Hole, Zero: e.Zero})
		}
	}
	if sub := checkExtents(t, s, lo, hi-lo); !equalExtents(sub, clipped) {
		t.Fatalf("Allocation(%d, %d) = %v, want %v", lo, hi-lo, sub, clipped)
	}
}

func BenchmarkFileStoreReadAt4K(b *testing.B) {
	const size = 16 << 20
	s, err := CreateFile(filepath.Join(b.TempDir(), "bench.img"), size)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	fill := bytes.Repeat([]byte{0x5A}, 1<<20)
	for off := int64(0); off < size; off += int64(len(fill)) {
		s.WriteAt(fill, off)
	}
	b.SetBytes(4096)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 4096)
		off := int64(0)
		for pb.Next() {
			if _, err := s.ReadAt(buf, off); err != nil {
				b.Fatal(err)
			}
			off = (off + 7*4096) % size
		}
	})
}
