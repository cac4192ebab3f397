package fat

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkFormatFAT32_4GiB formats a sparse 4 GiB image file as FAT32 with
// Format (open, format, fsync, close: fsync because mkfs.fat does it) and, in
// the same iterations, times mkfs.fat -F 32 on the same fresh sparse file.
// ns/op is vdisk's time; the extra metrics are mkfs.fat's time per format
// and the ratio vdisk/mkfs.fat (the goal is at most 1.5). Without mkfs.fat
// only vdisk is measured.
func BenchmarkFormatFAT32_4GiB(b *testing.B) {
	const size = 4 << 30
	path := filepath.Join(b.TempDir(), "bench.img")
	_, err := exec.LookPath("mkfs.fat")
	withMkfs := err == nil
	// fresh makes path a new, empty sparse file of size bytes.
	fresh := func() {
		os.Remove(path)
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := f.Truncate(size); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	o := FormatOptions{FATType: 32, Label: "BENCH", VolumeID: 0x1234ABCD, HasVolumeID: true, Time: fmInvariantTime}
	var mkfs time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		fresh()
		b.StartTimer()
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Format(f, size, o); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		b.StopTimer()
		if withMkfs {
			fresh()
			start := time.Now()
			if out, err := exec.Command("mkfs.fat", "--invariant", "-F", "32", "-n", "BENCH", "-i", "1234ABCD", path).CombinedOutput(); err != nil {
				b.Fatalf("mkfs.fat: %v\n%s", err, out)
			}
			mkfs += time.Since(start)
		}
		b.StartTimer()
	}
	b.StopTimer()
	if withMkfs && b.N > 0 {
		vd := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		mk := float64(mkfs.Nanoseconds()) / float64(b.N)
		b.ReportMetric(mk, "mkfs.fat-ns/op")
		b.ReportMetric(vd/mk, "vdisk/mkfs.fat")
	}
}
