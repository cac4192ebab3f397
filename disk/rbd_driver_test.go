//go:build rbd

package disk_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/internal/testsupport/rbdtest"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// The RBD store beneath the disk driver: everything goes in as IRPs, and
// Ceph's own tools (rbd export, rbd diff) and QEMU's RBD driver (qemu-img
// compare) read the image back.

// rbdName is spec as the rbd command spells it.
func rbdName(spec disk.RBDSpec) string { return strings.TrimPrefix(spec.String(), disk.RBDPrefix) }

// rbdDisk adds a store as a disk of a new driver with workers. At the end
// the disk is detached and the driver unloaded, leaving the store open for
// its owner.
func rbdDisk(t testing.TB, st disk.Store, workers int) *iomgr.Device {
	t.Helper()
	m := iomgr.NewManager()
	drv := disk.NewDriver(m, disk.Options{Workers: workers})
	dev, err := drv.AddDisk(st, 512, false)
	if err != nil {
		drv.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		drv.DetachDisk(dev)
		drv.Close()
	})
	return dev
}

func dataSet(dev *iomgr.Device, req disk.DataSetRequest, out any) iomgr.Status {
	return control(dev, disk.IOCTLStorageManageDataSetAttributes, &req, out)
}

// driverDataExtents is the disk driver's allocation answer for the whole
// disk: its extents holding data.
func driverDataExtents(t *testing.T, dev *iomgr.Device, size int64) [][2]int64 {
	t.Helper()
	var ext []disk.Extent
	if s := dataSet(dev, disk.DataSetRequest{Action: disk.DataSetAllocation, Length: size}, &ext); s != iomgr.StatusSuccess {
		t.Fatalf("allocation query: %v", s)
	}
	return disk.DataExtents(ext)
}

// Writes (plain and write-through, which the driver follows with a flush),
// flushes, zeroing and trims sent to the disk driver land in the RBD image as Ceph's rbd export reads it; the
// allocation the driver reports is what rbd diff lists, and covers every
// written range; QEMU's own RBD driver reads the same bytes (qemu-img
// compare, which also sees a one-byte difference).
func TestRBDThroughDiskDriver(t *testing.T) {
	const size = 32 << 20 // eight 4 MiB objects
	st := disk.NewTestRBD(t, size)
	dev := rbdDisk(t, st, 4)
	model := make([]byte, size)
	r := rand.New(rand.NewPCG(31, 32))
	writes := []struct {
		off, n  int64
		through bool
	}{
		{0, 4096, false},
		{4<<20 - 512, 1024, true}, // across an object boundary, FUA
		{9 << 20, 3 << 20, false},
		{20<<20 + 512, 512, true},
		{size - 8192, 8192, false},
	}
	for _, w := range writes {
		p := make([]byte, w.n)
		for i := range p {
			p[i] = byte(r.Uint32()) | 1
		}
		var fl uint8
		if w.through {
			fl = iomgr.SLWriteThrough
		}
		if ios := transfer(dev, iomgr.MajorWrite, p, w.off, fl); ios.Status != iomgr.StatusSuccess {
			t.Fatalf("write %d+%d: %v", w.off, w.n, ios.Status)
		}
		copy(model[w.off:], p)
	}
	// Zero part of the big write and of the last one; zero with NO_HOLE a
	// range never written, which allocates it (RBD's thick provisioning);
	// trim the whole object under the big write.
	for _, z := range []struct {
		off, n int64
		flags  disk.ZeroFlags
	}{{9<<20 + 4096, 8192, 0}, {size - 4096, 512, 0}, {16 << 20, 4096, disk.ZeroNoHole}} {
		if s := dataSet(dev, disk.DataSetRequest{Action: disk.DataSetZero, Offset: z.off, Length: z.n, Flags: z.flags}, nil); s != iomgr.StatusSuccess {
			t.Fatalf("zero %d+%d: %v", z.off, z.n, s)
		}
		clear(model[z.off : z.off+z.n])
	}
	if s := dataSet(dev, disk.DataSetRequest{Action: disk.DataSetTrim, Offset: 8 << 20, Length: 4 << 20}, nil); s != iomgr.StatusSuccess {
		t.Fatalf("trim: %v", s)
	}
	// What a trim leaves is up to the store: read it back into the model,
	// checking it is old data or zeros.
	got := make([]byte, 4<<20)
	if ios := transfer(dev, iomgr.MajorRead, got, 8<<20, 0); ios.Status != iomgr.StatusSuccess {
		t.Fatal(ios.Status)
	}
	for i, b := range got {
		if b != 0 && b != model[8<<20+i] {
			t.Fatalf("trimmed byte %d is %#x, neither old %#x nor zero", 8<<20+i, b, model[8<<20+i])
		}
	}
	copy(model[8<<20:], got)
	if ios := transfer(dev, iomgr.MajorFlushBuffers, nil, 0, 0); ios.Status != iomgr.StatusSuccess {
		t.Fatalf("flush: %v", ios.Status)
	}

	if got := rbdtest.Tool(t, "rbd", "export", "--no-progress", rbdName(st.Spec()), "-"); !bytes.Equal(got, model) {
		t.Fatalf("rbd export differs from what was written through the driver")
	}

	// The image has fast-diff, so the driver answers per object, as
	// `rbd diff --whole-object` does: objects 0, 1, 5 and 7 were written,
	// object 4 zeroed with NO_HOLE, object 2 trimmed whole.
	drvExt := driverDataExtents(t, dev, size)
	if rbdExt := disk.RBDDiffData(t, st.Spec(), true); fmt.Sprint(drvExt) != fmt.Sprint(rbdExt) {
		t.Fatalf("driver's allocation %v, rbd diff --whole-object %v", drvExt, rbdExt)
	}
	if want := [][2]int64{{0, 8 << 20}, {16 << 20, 8 << 20}, {28 << 20, 4 << 20}}; fmt.Sprint(drvExt) != fmt.Sprint(want) {
		t.Fatalf("driver's allocation %v, want %v", drvExt, want)
	}
	// Within objects, rbd diff lists data from each object's start to the
	// end of what was written; all of it lies inside the driver's extents,
	// and every byte that is not zero lies inside rbd diff's.
	fine := disk.RBDDiffData(t, st.Spec(), false)
	t.Logf("rbd diff: %v", fine)
	inside := func(off int64, ext [][2]int64) bool {
		for _, e := range ext {
			if off >= e[0] && off < e[0]+e[1] {
				return true
			}
		}
		return false
	}
	for _, e := range fine {
		if !inside(e[0], drvExt) || !inside(e[0]+e[1]-1, drvExt) {
			t.Fatalf("rbd diff's extent %v is not inside the driver's allocation %v", e, drvExt)
		}
	}
	for i, b := range model {
		if b != 0 && !inside(int64(i), fine) {
			t.Fatalf("byte %d holds data but lies in no extent rbd diff lists", i)
		}
	}

	// QEMU's RBD driver, reading the image on its own.
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Fatal("qemu-img is not installed (apt-get install qemu-utils qemu-block-extra)")
	}
	ref := filepath.Join(t.TempDir(), "model.img")
	if err := os.WriteFile(ref, model, 0o644); err != nil {
		t.Fatal(err)
	}
	qemuRBD := "rbd:" + rbdName(st.Spec()) + ":conf=" + rbdtest.Conf(t)
	if out, err := exec.Command("qemu-img", "compare", "-f", "raw", "-F", "raw", ref, qemuRBD).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img compare: %v\n%s", err, out)
	}
	const flip = 20<<20 + 700 // inside the 512-byte write-through write
	model[flip] ^= 0x40
	if err := os.WriteFile(ref, model, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("qemu-img", "compare", "-f", "raw", "-F", "raw", ref, qemuRBD).CombinedOutput()
	m := regexp.MustCompile(`Content mismatch at offset ([0-9]+)!`).FindSubmatch(out)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || m == nil {
		t.Fatalf("qemu-img compare did not see a changed byte: %v\n%s", err, out)
	}
	// qemu-img names the start of the sector that differs.
	if at, _ := strconv.Atoi(string(m[1])); at != flip/512*512 {
		t.Fatalf("qemu-img compare found a mismatch at %d, the byte changed is %d", at, flip)
	}
}

// A snapshot through the driver is a read-only disk: writes and zeroing
// are refused as write-protected, and reads give the snapshot's bytes.
func TestRBDSnapshotDiskIsReadOnly(t *testing.T) {
	st := disk.NewTestRBD(t, 4<<20)
	want := pattern(1<<20, 3)
	if _, err := st.WriteAt(want, 0); err != nil {
		t.Fatal(err)
	}
	snap := st.Spec()
	snap.Snap = "ro"
	opts := disk.RBDOptions{ConfFile: rbdtest.Conf(t)}
	if err := disk.SnapshotRBD(snap, false, opts); err != nil {
		t.Fatal(err)
	}
	ro, err := disk.OpenRBD(snap, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	dev := rbdDisk(t, ro, 0)
	if s := control(dev, disk.IOCTLDiskIsWritable, nil, nil); s != iomgr.StatusMediaWriteProtected {
		t.Fatalf("IS_WRITABLE on a snapshot: %v", s)
	}
	if ios := transfer(dev, iomgr.MajorWrite, make([]byte, 512), 0, 0); ios.Status != iomgr.StatusMediaWriteProtected {
		t.Fatalf("write to a snapshot: %v", ios.Status)
	}
	if s := dataSet(dev, disk.DataSetRequest{Action: disk.DataSetZero, Length: 512}, nil); s != iomgr.StatusMediaWriteProtected {
		t.Fatalf("zeroing a snapshot: %v", s)
	}
	got := make([]byte, len(want))
	if ios := transfer(dev, iomgr.MajorRead, got, 0, 0); ios.Status != iomgr.StatusSuccess || !bytes.Equal(got, want) {
		t.Fatalf("read of the snapshot: %v", ios.Status)
	}
	if ios := transfer(dev, iomgr.MajorFlushBuffers, nil, 0, 0); ios.Status != iomgr.StatusSuccess {
		t.Fatalf("flush of a read-only disk: %v", ios.Status)
	}
}

// rbdBenchImage is a filled image for the read benchmarks, so reads reach
// the OSD rather than librbd's answer for unwritten objects.
func rbdBenchImage(b *testing.B, size int64) *disk.RBDStore {
	b.Helper()
	st := disk.NewTestRBD(b, size)
	buf := pattern(4<<20, 1)
	for off := int64(0); off < size; off += int64(len(buf)) {
		if _, err := st.WriteAt(buf, off); err != nil {
			b.Fatal(err)
		}
	}
	if err := st.Sync(); err != nil {
		b.Fatal(err)
	}
	return st
}

// rbdBenchPeer runs the driver benchmark between two runs of Ceph's own
// `rbd bench` (librbd with no vdisk in between) doing the same reads, and
// reports both rates and their ratio: the peer's rate is the mean of its
// runs, so a machine that slows or speeds up meanwhile skews the ratio
// less.
func rbdBenchPeer(b *testing.B, spec disk.RBDSpec, ioSize string, threads int, pattern, total string, run func(b *testing.B)) {
	before := rbdBenchOps(b, spec, ioSize, threads, pattern, total)
	b.ResetTimer()
	run(b)
	b.StopTimer()
	ops := float64(b.N) / b.Elapsed().Seconds()
	peer := (before + rbdBenchOps(b, spec, ioSize, threads, pattern, total)) / 2
	b.ReportMetric(ops, "ops/s")
	b.ReportMetric(peer, "rbd-bench-ops/s")
	b.ReportMetric(ops/peer, "x-rbd-bench")
}

// rbdBenchOps runs Ceph's own `rbd bench` read benchmark on the image and
// returns its operations per second.
func rbdBenchOps(b *testing.B, spec disk.RBDSpec, ioSize string, threads int, pattern string, total string) float64 {
	b.Helper()
	out := rbdtest.Tool(b, "rbd", "bench", "--io-type", "read", "--io-size", ioSize, "--io-threads", strconv.Itoa(threads),
		"--io-pattern", pattern, "--io-total", total, rbdName(spec))
	m := regexp.MustCompile(`elapsed:\s*[0-9.]+\s+ops:\s*[0-9]+\s+ops/sec:\s*([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		b.Fatalf("rbd bench printed no summary:\n%s", out)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// BenchmarkRBDDriver reads an RBD image through the disk driver: 1 MiB
// sequential reads one at a time, and 4 KiB random reads 16 at a time, each
// beside `rbd bench` doing the same through librbd alone (ratio > 1: vdisk's
// driver is faster than Ceph's own tool).
//
//	go test -tags pacific,rbd -run '^$' -bench RBDDriver ./disk/
func BenchmarkRBDDriver(b *testing.B) {
	const size = 256 << 20
	st := rbdBenchImage(b, size)
	b.Run("SeqRead1M", func(b *testing.B) {
		dev := rbdDisk(b, st, 1)
		buf := make([]byte, 1<<20)
		b.SetBytes(int64(len(buf)))
		rbdBenchPeer(b, st.Spec(), "1M", 1, "seq", "256M", func(b *testing.B) {
			var off int64
			for range b.N {
				if ios := transfer(dev, iomgr.MajorRead, buf, off, 0); ios.Status != iomgr.StatusSuccess {
					b.Fatal(ios.Status)
				}
				off = (off + int64(len(buf))) % size
			}
		})
	})
	b.Run("RandRead4KQD16", func(b *testing.B) {
		const qd = 16
		dev := rbdDisk(b, st, qd)
		b.SetBytes(4096)
		var seed atomic.Uint64
		b.SetParallelism((qd + 1) / 2) // GOMAXPROCS is 2 in CI: 16 readers
		rbdBenchPeer(b, st.Spec(), "4K", qd, "rand", "64M", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				r := rand.New(rand.NewPCG(seed.Add(1), 7))
				buf := make([]byte, 4096)
				for pb.Next() {
					off := r.Int64N(size/4096) * 4096
					if ios := transfer(dev, iomgr.MajorRead, buf, off, 0); ios.Status != iomgr.StatusSuccess {
						b.Error(ios.Status)
						return
					}
				}
			})
		})
	})
}
