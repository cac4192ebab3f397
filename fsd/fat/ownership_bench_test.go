package fat

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk/fsd/fat/internal/ondisk"
)

// owBenchVolume writes a sparse FAT32 image of size bytes holding dirs
// directories of files files each, every file with a chain of 1 to 8
// clusters, and marks it dirty (FAT[1]), so that mounting it writable runs
// the ownership pass. Only metadata is written (the FAT, directories, boot
// sectors and FSInfo): file data stays sparse, as neither the pass nor
// fsck.fat reads it. It returns how many clusters the chains hold.
func owBenchVolume(tb testing.TB, path string, size int64, clusterSize, dirs, files int) uint64 {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		tb.Fatal(err)
	}
	res, err := Format(f, size, FormatOptions{FATType: 32, ClusterSize: clusterSize, VolumeID: 0x1234ABCD, HasVolumeID: true, Time: fmInvariantTime})
	if err != nil {
		tb.Fatal(err)
	}
	g := res.Geometry
	fat := make([]byte, g.FATBytes())
	if _, err := f.ReadAt(fat, g.FATOffset(0)); err != nil {
		tb.Fatal(err)
	}
	tab, err := ondisk.NewTable(&g, fat)
	if err != nil {
		tb.Fatal(err)
	}
	cs := int(g.ClusterSize)
	alloc := func(n uint32, prev uint32) []ondisk.Extent {
		exts, err := tab.Allocate(n, 0, prev)
		if err != nil {
			tb.Fatal(err)
		}
		return exts
	}
	// writeDir lays a directory's bytes over its chain (starting at
	// first), growing the chain as they need.
	writeDir := func(first uint32, data []byte) {
		need := uint32((len(data) + cs - 1) / cs)
		exts, _ := tab.Chain(first)
		if have := uint32(ondisk.ExtentClusters(exts)); need > have {
			alloc(need-have, exts[len(exts)-1].Start+exts[len(exts)-1].Len-1)
			exts, _ = tab.Chain(first)
		}
		padded := make([]byte, int(need)*cs)
		copy(padded, data)
		off := 0
		for _, e := range exts {
			n := int(e.Len) * cs
			if _, err := f.WriteAt(padded[off:off+n], g.ClusterOffset(e.Start)); err != nil {
				tb.Fatal(err)
			}
			off += n
		}
	}
	entry := func(dst []byte, long, short string, attr ondisk.Attr, start, size uint32) []byte {
		sn, _, ok := ondisk.ParseShortName(short)
		if !ok {
			tb.Fatalf("short name %q", short)
		}
		se := ondisk.ShortEntry{Name: sn, Attr: attr, FirstCluster: start, Size: size}
		se.SetModified(fmInvariantTime, time.UTC)
		out, err := ondisk.AppendEntries(dst, long, &se)
		if err != nil {
			tb.Fatal(err)
		}
		return out
	}
	var used uint64
	var root []byte
	for d := 0; d < dirs; d++ {
		first := alloc(1, 0)[0].Start
		dot, dotdot := ondisk.DotEntries(first, 0, nil)
		data := make([]byte, 2*ondisk.DirEntrySize)
		dot.Encode(data)
		dotdot.Encode(data[ondisk.DirEntrySize:])
		for i := 0; i < files; i++ {
			k := uint32(1 + (d*files+i)%8)
			start := alloc(k, 0)[0].Start
			used += uint64(k)
			data = entry(data, fmt.Sprintf("file %06d of directory %03d.bin", i, d), fmt.Sprintf("F%06d.BIN", i),
				ondisk.AttrArchive, start, k*uint32(cs)-100)
		}
		writeDir(first, data)
		root = entry(root, fmt.Sprintf("directory %03d", d), fmt.Sprintf("D%06d", d), ondisk.AttrDirectory, first, 0)
	}
	writeDir(g.RootCluster, root)
	tab.SetVolumeClean(false)
	for i := uint32(0); i < g.NumFATs; i++ {
		if _, err := f.WriteAt(tab.Bytes(), g.FATOffset(i)); err != nil {
			tb.Fatal(err)
		}
	}
	fsi := make([]byte, g.BytesPerSector)
	off := int64(g.FSInfoSector) * int64(g.BytesPerSector)
	if _, err := f.ReadAt(fsi, off); err != nil {
		tb.Fatal(err)
	}
	if err := (ondisk.FSInfo{FreeCount: tab.FreeCount(), NextFree: tab.NextFree()}).Encode(fsi); err != nil {
		tb.Fatal(err)
	}
	if _, err := f.WriteAt(fsi, off); err != nil {
		tb.Fatal(err)
	}
	return used
}

// BenchmarkOwnershipPass32GiB measures the check a dirty volume gets when
// it is mounted writable, on a sparse 32 GiB FAT32 volume holding 100,000
// files (100 directories of 1,000, chains of 1 to 8 clusters). ns/op is a
// whole mount of the dirty volume through the FSD (the FAT read, its link
// check and the ownership pass, every directory read as IRPs down the
// stack) and its dismount. The metrics: the same for the volume marked
// clean (no pass: mount-clean-ns/op), the pass alone over the image file
// (pass-ns/op), fsck.fat -n on the same image (fsck.fat-ns/op), and the
// ratios mount/fsck.fat and pass/fsck.fat. The page cache is warm for all.
// With the cluster size mkfs.fat would choose (16 KiB: 2 Mi clusters) and
// with 4 KiB clusters (8 Mi clusters, a 32 MiB FAT).
func BenchmarkOwnershipPass32GiB(b *testing.B) {
	for _, cs := range []int{0, 4096} {
		name := "default-clusters"
		if cs != 0 {
			name = fmt.Sprintf("%dKiB-clusters", cs>>10)
		}
		b.Run(name, func(b *testing.B) { owBenchPass(b, cs) })
	}
}

func owBenchPass(b *testing.B, clusterSize int) {
	dir := b.TempDir()
	dirty := filepath.Join(dir, "dirty.img")
	start := time.Now()
	used := owBenchVolume(b, dirty, 32<<30, clusterSize, 100, 1000)
	b.Logf("built the volume: %d clusters in chains, in %v", used, time.Since(start).Round(time.Millisecond))
	clean := filepath.Join(dir, "clean.img")
	if out, err := exec.Command("cp", "--sparse=always", dirty, clean).CombinedOutput(); err != nil {
		b.Fatalf("cp: %v %s", err, out)
	}
	im, err := os.OpenFile(clean, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	boot := make([]byte, 512)
	im.ReadAt(boot, 0)
	bs, _ := ondisk.ParseBootSector(boot)
	g, _ := bs.Geometry()
	fat1 := make([]byte, 4)
	for i := uint32(0); i < g.NumFATs; i++ {
		im.ReadAt(fat1, g.FATOffset(i)+4)
		fat1[3] |= 0x08 // FAT[1] clean
		im.WriteAt(fat1, g.FATOffset(i)+4)
	}
	im.Close()
	b.Logf("%d clusters of %d bytes, a FAT of %d bytes", g.MaxCluster-1, g.ClusterSize, g.FATBytes())

	mount := func(img string) {
		x := fxOpen(b, img, 512, fxOpt{})
		v := x.volume()
		if err := v.needsCheck(); err != nil {
			b.Fatalf("the volume is sound, the FSD says %v", err)
		}
		x.close()
		if img == dirty {
			x.mu.Lock()
			ran := strings.Contains(strings.Join(x.logs, "\n"), "ownership check of 100000 files")
			x.mu.Unlock()
			if !ran {
				b.Fatalf("no ownership pass at the mount of the dirty volume: %q", x.logs)
			}
		}
	}
	var cleanMount, pass, fsck time.Duration
	_, err = exec.LookPath("fsck.fat")
	withFsck := err == nil
	f, err := os.Open(dirty)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	mount(dirty) // warm the page cache for everyone
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		mount(dirty)
		b.StopTimer()
		t0 := time.Now()
		mount(clean)
		cleanMount += time.Since(t0)
		t0 = time.Now()
		fat := make([]byte, g.FATBytes())
		if _, err := f.ReadAt(fat, g.FATOffset(0)); err != nil {
			b.Fatal(err)
		}
		tab, err := ondisk.NewTable(&g, fat)
		if err != nil {
			b.Fatal(err)
		}
		rep, err := (&ondisk.OwnershipCheck{Geometry: &g, FAT: tab,
			ReadAt: func(p []byte, off int64) error { _, err := f.ReadAt(p, off); return err }}).Run()
		if err != nil || len(rep.Problems) != 0 || rep.Files != 100_000 || uint64(rep.Owned) < used {
			b.Fatalf("pass: %v %+v", err, rep)
		}
		pass += time.Since(t0)
		if withFsck {
			t0 = time.Now()
			out, _ := exec.Command("fsck.fat", "-n", dirty).CombinedOutput()
			fsck += time.Since(t0)
			if !strings.Contains(string(out), "100100 files") {
				b.Fatalf("fsck.fat -n:\n%s", out)
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	n := float64(b.N)
	mountNs := float64(b.Elapsed().Nanoseconds()) / n
	b.ReportMetric(float64(cleanMount.Nanoseconds())/n, "mount-clean-ns/op")
	b.ReportMetric(float64(pass.Nanoseconds())/n, "pass-ns/op")
	if withFsck {
		fs := float64(fsck.Nanoseconds()) / n
		b.ReportMetric(fs, "fsck.fat-ns/op")
		b.ReportMetric(mountNs/fs, "mount/fsck.fat")
		b.ReportMetric(float64(pass.Nanoseconds())/n/fs, "pass/fsck.fat")
	}
}
