package fat

// Format against its oracles: mkfs.fat's choices and images, fsck.fat and
// mtools. Helpers start with "fm" (format) so they do not collide with the
// FSD's or the on-disk layer's test helpers.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk/fsd/fat/internal/fattest"
	"github.com/vdisk-dev/vdisk/fsd/fat/internal/ondisk"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
)

var fmSweep = flag.Bool("fat.format-sweep", false, "compare Format's choices with mkfs.fat on a dense sweep of sizes (1 MiB to 64 GiB, about 2700 mkfs.fat runs)")

const (
	fmKiB = int64(1) << 10
	fmMiB = int64(1) << 20
	fmGiB = int64(1) << 30
)

// fmInvariantTime is the time mkfs.fat --invariant stamps the label entry
// with (2015-03-14 09:26:53, whatever the time zone).
var fmInvariantTime = time.Date(2015, 3, 14, 9, 26, 53, 0, time.UTC)

// fmMkfs runs mkfs.fat on a new sparse file of size bytes and returns its
// path, mkfs.fat's output (warnings) and whether it succeeded. It reports
// problems as an error rather than failing the test, so it can run in
// helper goroutines.
func fmMkfs(dir string, size int64, args ...string) (path, out string, ok bool, err error) {
	f, err := os.CreateTemp(dir, "mkfs-*.img")
	if err != nil {
		return "", "", false, err
	}
	path = f.Name()
	err = f.Truncate(size)
	f.Close()
	if err != nil {
		return path, "", false, err
	}
	cmd := exec.Command("mkfs.fat", append(append([]string{"--invariant"}, args...), path)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "TZ=UTC")
	b, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return path, string(b), false, nil
	}
	return path, string(b), err == nil, err
}

// fmReadBoot parses an image's boot sector.
func fmReadBoot(path string) (*ondisk.BootSector, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, 512)
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, err
	}
	return ondisk.ParseBootSector(b)
}

// fmFormatFile formats a new sparse file of size bytes with Format.
func fmFormatFile(t testing.TB, dir string, size int64, o FormatOptions) (string, *FormatResult, error) {
	t.Helper()
	f, err := os.CreateTemp(dir, "vdisk-*.img")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	res, err := Format(f, size, o)
	return f.Name(), res, err
}

// fmArgs are the mkfs.fat options equivalent to o.
func fmArgs(o FormatOptions) []string {
	var a []string
	if o.FATType != 0 {
		a = append(a, "-F", strconv.Itoa(o.FATType))
	}
	if o.SectorSize != 0 {
		a = append(a, "-S", strconv.Itoa(o.SectorSize))
	}
	if o.ClusterSize != 0 {
		ss := max(o.SectorSize, 512)
		a = append(a, "-s", strconv.Itoa(o.ClusterSize/ss))
	}
	if o.NumFATs != 0 {
		a = append(a, "-f", strconv.Itoa(o.NumFATs))
	}
	if o.ReservedSectors != 0 {
		a = append(a, "-R", strconv.Itoa(o.ReservedSectors))
	}
	if o.RootEntries != 0 {
		a = append(a, "-r", strconv.Itoa(o.RootEntries))
	}
	if o.Media != 0 {
		a = append(a, "-M", fmt.Sprintf("%#x", o.Media))
	}
	if o.HiddenSectors != 0 {
		a = append(a, "-h", strconv.FormatUint(uint64(o.HiddenSectors), 10))
	}
	if o.BackupBootSector > 0 {
		a = append(a, "-b", strconv.Itoa(o.BackupBootSector))
	}
	if o.HasVolumeID {
		a = append(a, "-i", fmt.Sprintf("%08x", o.VolumeID))
	}
	if o.Label != "" {
		a = append(a, "-n", o.Label)
	}
	return a
}

// fmSameChoice is the comparison of the layout fields the options decide.
func fmSameChoice(mine, theirs *ondisk.BootSector) []string {
	var diffs []string
	cmp := func(name string, a, b any) {
		if a != b {
			diffs = append(diffs, fmt.Sprintf("%s: vdisk %v, mkfs.fat %v", name, a, b))
		}
	}
	cmp("bytes/sector", mine.BytesPerSector, theirs.BytesPerSector)
	cmp("sectors/cluster", mine.SectorsPerCluster, theirs.SectorsPerCluster)
	cmp("reserved", mine.ReservedSectors, theirs.ReservedSectors)
	cmp("FATs", mine.NumFATs, theirs.NumFATs)
	// Documented difference: vdisk rounds the root directory up to whole
	// sectors where mkfs.fat keeps an odd -r count (same sectors either way).
	if per := theirs.BytesPerSector / ondisk.DirEntrySize; theirs.RootEntries%per != 0 {
		cmp("root entries (rounded to sectors)", mine.RootEntries, (theirs.RootEntries+per-1)/per*per)
	} else {
		cmp("root entries", mine.RootEntries, theirs.RootEntries)
	}
	cmp("total16", mine.TotalSectors16, theirs.TotalSectors16)
	cmp("total32", mine.TotalSectors32, theirs.TotalSectors32)
	cmp("media", mine.Media, theirs.Media)
	cmp("FAT size16", mine.FATSize16, theirs.FATSize16)
	cmp("FAT size32", mine.FATSize32, theirs.FATSize32)
	cmp("sectors/track", mine.SectorsPerTrack, theirs.SectorsPerTrack)
	cmp("heads", mine.NumHeads, theirs.NumHeads)
	cmp("hidden", mine.HiddenSectors, theirs.HiddenSectors)
	cmp("ext flags", mine.ExtFlags, theirs.ExtFlags)
	cmp("root cluster", mine.RootCluster, theirs.RootCluster)
	cmp("FSInfo sector", mine.FSInfoSector, theirs.FSInfoSector)
	cmp("backup boot", mine.BackupBootSector, theirs.BackupBootSector)
	cmp("drive", mine.DriveNumber, theirs.DriveNumber)
	cmp("boot signature", mine.BootSignature, theirs.BootSignature)
	cmp("type string", string(mine.FSTypeLabel[:]), string(theirs.FSTypeLabel[:]))
	return diffs
}

// fmVerdict compares fmtPlan's answer for (size, o) with mkfs.fat's; it
// returns "" when they agree (or differ only as documented on Format).
func fmVerdict(dir string, size int64, o FormatOptions) string {
	p, perr := fmtPlan(size, o)
	path, out, ok, err := fmMkfs(dir, size, fmArgs(o)...)
	defer os.Remove(path)
	if err != nil {
		return fmt.Sprintf("running mkfs.fat: %v", err)
	}
	theirs, err := fmReadBoot(path)
	if ok && err != nil {
		return fmt.Sprintf("reading mkfs.fat's boot sector: %v", err)
	}
	switch {
	case !ok && perr == nil:
		return fmt.Sprintf("mkfs.fat refuses (%s), vdisk formats %v with %d-byte clusters",
			strings.TrimSpace(fmLastLine(out)), p.g.Type, p.g.ClusterSize)
	case !ok:
		if !errors.Is(perr, ErrVolumeTooSmall) && !errors.Is(perr, ErrVolumeTooLarge) {
			return fmt.Sprintf("mkfs.fat refuses, vdisk fails with a non-size error: %v", perr)
		}
		return ""
	}
	tg, _ := theirs.Geometry()
	// Documented differences: FAT32 below 65525 clusters (mkfs.fat warns,
	// vdisk refuses) and clusters above 64 KiB (mkfs.fat with large
	// sectors).
	if theirs.IsFAT32Layout() && tg.ClusterCount < ondisk.MinClustersFAT32 {
		if !strings.Contains(out, "WARNING") {
			return "mkfs.fat made FAT32 with too few clusters without a warning"
		}
		if !errors.Is(perr, ErrVolumeTooSmall) {
			return fmt.Sprintf("mkfs.fat warns about a %d-cluster FAT32, vdisk does not refuse: %v", tg.ClusterCount, perr)
		}
		return ""
	}
	if tg.ClusterSize > fmtMaxClusterSize {
		switch {
		case tg.Type != ondisk.FAT32 && !errors.Is(perr, ErrVolumeTooLarge):
			return fmt.Sprintf("mkfs.fat uses %d-byte clusters; vdisk should refuse, got %v", tg.ClusterSize, perr)
		case tg.Type == ondisk.FAT32 && (perr != nil || p.g.ClusterSize != fmtMaxClusterSize || p.g.Type != ondisk.FAT32):
			return fmt.Sprintf("mkfs.fat uses %d-byte clusters; vdisk should use 64 KiB ones, got %v", tg.ClusterSize, perr)
		}
		return ""
	}
	if perr != nil {
		return fmt.Sprintf("mkfs.fat makes %v, %d-byte clusters, %d clusters; vdisk refuses: %v", tg.Type, tg.ClusterSize, tg.ClusterCount, perr)
	}
	if d := fmSameChoice(&p.bs, theirs); len(d) > 0 {
		return fmt.Sprintf("%v %d clusters vs mkfs.fat %v %d clusters: %s", p.g.Type, p.g.ClusterCount, tg.Type, tg.ClusterCount, strings.Join(d, "; "))
	}
	return ""
}

func fmLastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// fmSizes are the sizes of the choice comparison: the edges where mkfs.fat's
// choices change (found by bisecting its behaviour), their neighbours, and
// a geometric walk from 1 MiB to 64 GiB.
func fmSizes(dense bool) []int64 {
	set := map[int64]bool{}
	edges := []int64{
		// geometry table edges (sectors)
		4096, 32768, 65536, 262144, 524288, 1032192, 2064384, 4128768, 8257536,
		// alignment (more than 8192 sectors), FAT12→FAT16 with 2 KiB clusters
		8192, 8193, 8223, 8224, 16384, 16399, 16400, 16415, 16416,
		// FAT16 cluster doubling, FAT32 minimum, FAT32 cluster table
		262647, 262648, 66580, 66581, 66591, 66592, 532480, 532481,
		16777216, 16777217, 33554432, 33554433, 67108864, 67108865,
		// automatic FAT32 from 512 MiB
		1048575, 1048576,
	}
	for _, e := range edges {
		for _, d := range []int64{-1, 0, 1} {
			set[(e+d)*512] = true
		}
	}
	step := 1.25
	if dense {
		step = 1.02
		for m := int64(1); m <= 64; m++ {
			set[m*fmMiB] = true
		}
	}
	for s := float64(fmMiB); s <= float64(64*fmGiB); s *= step {
		set[int64(s)/512*512] = true
	}
	for e := 20; e <= 36; e++ {
		set[int64(1)<<e] = true
	}
	var out []int64
	for s := range set {
		if s >= fmMiB && s <= 64*fmGiB {
			out = append(out, s)
		}
	}
	return out
}

// TestFormatChoicesMatchMkfs compares the FAT type, cluster size, FAT size,
// reserved sectors, root entries, total sectors, geometry and media that
// Format chooses with mkfs.fat's for sizes from 1 MiB to 64 GiB, for
// automatic, FAT12, FAT16 and FAT32 requests. Differences allowed (see
// Format): mkfs.fat's FAT32 volumes with fewer than 65525 clusters, which
// vdisk refuses.
func TestFormatChoicesMatchMkfs(t *testing.T) {
	fattest.Need(t, "mkfs.fat")
	if testing.Short() {
		t.Skip("runs mkfs.fat hundreds of times")
	}
	sizes := fmSizes(*fmSweep)
	dir := t.TempDir()
	type job struct {
		size int64
		o    FormatOptions
	}
	var jobs []job
	for _, typ := range []int{0, 12, 16, 32} {
		for _, s := range sizes {
			jobs = append(jobs, job{s, FormatOptions{FATType: typ}})
		}
	}
	// A sample with other options: sector sizes, explicit clusters, FATs,
	// reserved sectors, root entries.
	for _, s := range []int64{fmMiB, 4 * fmMiB, 16 * fmMiB, 100 * fmMiB, 300 * fmMiB, fmGiB, 5 * fmGiB, 64 * fmGiB} {
		for _, o := range []FormatOptions{
			{SectorSize: 4096}, {SectorSize: 4096, FATType: 12}, {SectorSize: 4096, FATType: 16}, {SectorSize: 4096, FATType: 32},
			{SectorSize: 1024}, {SectorSize: 2048, FATType: 16},
			{ClusterSize: 512}, {ClusterSize: 2048}, {ClusterSize: 16384}, {ClusterSize: 65536},
			{FATType: 32, ClusterSize: 512}, {FATType: 32, ClusterSize: 65536}, {FATType: 12, ClusterSize: 4096},
			{NumFATs: 1}, {FATType: 32, NumFATs: 1},
			{ReservedSectors: 5}, {FATType: 32, ReservedSectors: 3}, {FATType: 32, ReservedSectors: 40, ClusterSize: 8192},
			{RootEntries: 16}, {RootEntries: 100}, {RootEntries: 1000},
			{Media: 0xF0}, {HiddenSectors: 2048}, {FATType: 32, BackupBootSector: 2},
		} {
			jobs = append(jobs, job{s, o})
		}
	}
	// Large sectors on large volumes, where mkfs.fat's clusters exceed 64 KiB.
	for _, s := range []int64{100 * fmGiB, 200 * fmGiB, 1 << 40, 5 << 40} {
		for _, typ := range []int{0, 16, 32} {
			jobs = append(jobs, job{s, FormatOptions{FATType: typ, SectorSize: 4096}})
		}
	}
	for _, kib := range []int64{360, 720, 1200, 1440, 2880, 64, 100, 500, 1000} {
		for _, typ := range []int{0, 12, 16, 32} {
			jobs = append(jobs, job{kib * fmKiB, FormatOptions{FATType: typ}})
			jobs = append(jobs, job{kib * fmKiB, FormatOptions{FATType: typ, SectorSize: 4096}})
		}
	}
	var mu sync.Mutex
	var bad []string
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if v := fmVerdict(dir, j.size, j.o); v != "" {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("%s (%d bytes) %q: %s", fmtSize(j.size), j.size, fmArgs(j.o), v))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, b := range bad {
		t.Error(b)
	}
	t.Logf("%d requests compared with mkfs.fat, %d differ", len(jobs), len(bad))
}

// fmDiffers lists the byte ranges where vdisk's image may differ from
// mkfs.fat's given the same options, volume ID, label and time, and why:
//   - bytes 3-10 of the boot sector and its FAT32 backup: the OEM name
//     ("MSWIN4.1", the specification's recommendation; mkfs.fat writes
//     "mkfs.fat");
//   - the boot code, from the jump target to byte 509: each writes its own
//     "not a bootable disk" program and message;
//   - FAT[2] of a FAT32 volume (the root directory's cluster): both mark it
//     end of chain, vdisk with 0x0FFFFFFF as Windows and Linux do, mkfs.fat
//     with 0x0FFFFFF8.
//
// Everything else in the metadata area must be identical: every BPB and
// extended BPB field (sector and cluster size, reserved sectors, FAT count
// and size, root entries, total sectors, media, geometry, hidden sectors,
// root cluster, FSInfo and backup sectors, drive number, volume ID, label,
// type string), the FSInfo sectors (free count, next free), all FAT copies,
// the root directory with its label entry, and the zeros in between.
type fmRange struct {
	from, to int64
	why      string
}

func fmDiffers(g *ondisk.Geometry) []fmRange {
	code := int64(0x3E)
	if g.Type == ondisk.FAT32 {
		code = 0x5A
	}
	var r []fmRange
	for _, s := range []uint32{0, g.BackupBootSector} {
		if s == 0 && len(r) > 0 {
			continue
		}
		base := int64(s) * int64(g.BytesPerSector)
		r = append(r, fmRange{base + 3, base + 11, "OEM name"}, fmRange{base + code, base + 510, "boot code"})
	}
	if g.Type == ondisk.FAT32 {
		for i := range g.NumFATs {
			r = append(r, fmRange{g.FATOffset(i) + 8, g.FATOffset(i) + 12, "FAT[2] end-of-chain value"})
		}
	}
	return r
}

// TestFormatImageMatchesMkfs formats the same volumes with Format and with
// mkfs.fat (same options, volume ID and label; mkfs.fat's --invariant time)
// and compares the whole metadata area byte by byte, except the ranges
// fmDiffers lists.
func TestFormatImageMatchesMkfs(t *testing.T) {
	fattest.Need(t, "mkfs.fat")
	cases := []struct {
		size int64
		o    FormatOptions
	}{
		{1440 * fmKiB, FormatOptions{Label: "FLOPPY"}},
		{720 * fmKiB, FormatOptions{}},
		{2880 * fmKiB, FormatOptions{Label: "ED"}},
		{4 * fmMiB, FormatOptions{Label: "small one"}},
		{8 * fmMiB, FormatOptions{FATType: 16, ClusterSize: 1024, Label: "F16"}},
		{64 * fmMiB, FormatOptions{Label: "SIXTY4"}},
		{64 * fmMiB, FormatOptions{NumFATs: 1, RootEntries: 100}},
		{200 * fmMiB, FormatOptions{ReservedSectors: 7, HiddenSectors: 2048}},
		{300 * fmMiB, FormatOptions{FATType: 32, Label: "THIRTY2"}},
		{300 * fmMiB, FormatOptions{FATType: 32, ReservedSectors: 5}},
		{300 * fmMiB, FormatOptions{FATType: 32, BackupBootSector: 2, NumFATs: 1}},
		{1 * fmGiB, FormatOptions{Label: "GIG"}},
		{1 * fmGiB, FormatOptions{SectorSize: 4096, FATType: 32, Label: "BIGSECTORS"}},
		{512 * fmMiB, FormatOptions{SectorSize: 4096, FATType: 16}},
		{64 * fmMiB, FormatOptions{SectorSize: 2048, Label: "TWOK"}},
		{9 * fmGiB, FormatOptions{Media: 0xF0}},
		{20 * fmGiB, FormatOptions{Label: "TWENTY"}},
		{64 * fmGiB, FormatOptions{Label: "SIXTYFOUR"}},
	}
	for _, c := range cases {
		o := fmFixed(c.o)
		t.Run(fmt.Sprintf("%s%q", fmtSize(c.size), fmArgs(c.o)), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			mine, res, err := fmFormatFile(t, dir, c.size, o)
			if err != nil {
				t.Fatal(err)
			}
			theirs, out, ok, err := fmMkfs(dir, c.size, fmArgs(o)...)
			if err != nil || !ok {
				t.Fatalf("mkfs.fat: %v\n%s", err, out)
			}
			fmCompareMetadata(t, mine, theirs, res)
		})
	}
}

// fmCompareMetadata compares two formatted images' metadata areas (up to
// the data area, on FAT32 up to the end of the root directory's cluster)
// byte by byte, except the ranges fmDiffers lists.
func fmCompareMetadata(t *testing.T, mine, theirs string, res *FormatResult) {
	t.Helper()
	g := res.Geometry
	end := g.DataOffset()
	if g.Type == ondisk.FAT32 {
		end = g.ClusterOffset(g.RootCluster) + int64(g.ClusterSize)
	}
	a, b := testsupport.ReadAt(t, mine, 0, end), testsupport.ReadAt(t, theirs, 0, end)
	ranges := fmDiffers(&g)
	if g.Type == ondisk.FAT32 {
		for i := range g.NumFATs {
			off := g.FATOffset(i) + 8
			va, vb := binary.LittleEndian.Uint32(a[off:]), binary.LittleEndian.Uint32(b[off:])
			if va&0x0FFFFFFF < 0x0FFFFFF8 || vb&0x0FFFFFFF < 0x0FFFFFF8 {
				t.Errorf("FAT %d: root cluster entry vdisk %#x, mkfs.fat %#x; both must be end of chain", i, va, vb)
			}
		}
	}
	for _, r := range ranges {
		clear(a[r.from:r.to])
		clear(b[r.from:r.to])
	}
	if i := fmFirstDiff(a, b); i >= 0 {
		t.Errorf("images differ first at byte %d (sector %d, %s): vdisk % x, mkfs.fat % x",
			i, i/int64(g.BytesPerSector), fmWhere(&g, i), a[i:min(i+16, end)], b[i:min(i+16, end)])
	}
}

func fmFirstDiff(a, b []byte) int64 {
	for i := range a {
		if a[i] != b[i] {
			return int64(i)
		}
	}
	return -1
}

// fmWhere names the metadata structure at a byte offset.
func fmWhere(g *ondisk.Geometry, off int64) string {
	switch {
	case off < int64(g.BytesPerSector):
		return "boot sector"
	case off < g.FATOffset(0):
		return "reserved area"
	case off < g.FATOffset(g.NumFATs):
		return fmt.Sprintf("FAT %d", (off-g.FATOffset(0))/g.FATBytes())
	case off < g.DataOffset():
		return "root directory"
	}
	return "root cluster"
}

// fmCheckFsck runs fsck.fat -n -v on an image: it must exit 0, find the
// planned layout, and count used clusters as expected.
func fmCheckFsck(t *testing.T, img string, res *FormatResult, used int64) {
	t.Helper()
	out, code := fattest.Run(t, "fsck.fat", "-n", "-v", img)
	if code != 0 {
		t.Fatalf("fsck.fat -n exited %d:\n%s", code, out)
	}
	f := fattest.FsckFields(t, out)
	g := res.Geometry
	want := map[string]int64{
		"bps": int64(g.BytesPerSector), "cluster": int64(g.ClusterSize), "reserved": int64(g.ReservedSectors),
		"nfats": int64(g.NumFATs), "bits": int64(g.Type), "fatbytes": g.FATBytes(), "dataoff": g.DataOffset(),
		"clusters": int64(g.ClusterCount), "total": int64(g.TotalSectors), "totalclus2": int64(g.ClusterCount),
		"usedclus": used, "media": int64(res.BootSector.Media),
	}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("fsck.fat reports %s = %d, want %d\n%s", k, f[k], v, out)
		}
	}
	for _, bad := range []string{"Dirty", "differ", "Free cluster summary", "Wrong", "Reclaim", "Fix"} {
		if strings.Contains(out, bad) {
			t.Errorf("fsck.fat output mentions %q:\n%s", bad, out)
		}
	}
}

// TestFormatFsck formats every kind of layout Format produces and runs
// fsck.fat -n on each: FAT12 floppies, FAT12/16/32 with 512-, 1024-, 2048-
// and 4096-byte sectors, 1 to 4 FATs, odd reserved and root sizes, and every
// cluster size from 512 bytes to 64 KiB that is valid for the size.
func TestFormatFsck(t *testing.T) {
	fattest.Need(t, "fsck.fat")
	type base struct {
		size int64
		o    FormatOptions
	}
	var cases []base
	for _, f := range fmtFloppies {
		cases = append(cases, base{f.kib * fmKiB, FormatOptions{}})
	}
	sweep := []base{
		{1440 * fmKiB, FormatOptions{FATType: 12}},
		{16 * fmMiB, FormatOptions{FATType: 12}},
		{64 * fmMiB, FormatOptions{FATType: 16}},
		{300 * fmMiB, FormatOptions{FATType: 16, NumFATs: 1}},
		{1 * fmGiB, FormatOptions{FATType: 16}},
		{1 * fmGiB, FormatOptions{FATType: 32}},
		{300 * fmMiB, FormatOptions{FATType: 32, NumFATs: 1}},
		{512 * fmMiB, FormatOptions{FATType: 16, SectorSize: 4096}},
		{4 * fmGiB, FormatOptions{FATType: 32, SectorSize: 4096}},
		{256 * fmMiB, FormatOptions{FATType: 16, SectorSize: 1024}},
		{2 * fmGiB, FormatOptions{FATType: 32, SectorSize: 2048}},
	}
	for _, s := range sweep {
		valid := 0
		for cs := 512; cs <= 64<<10; cs *= 2 {
			o := s.o
			o.ClusterSize = cs
			if _, err := fmtPlan(s.size, o); err != nil {
				if !errors.Is(err, ErrVolumeTooSmall) && !errors.Is(err, ErrVolumeTooLarge) && !errors.Is(err, ErrFormatOption) {
					t.Fatal(err)
				}
				continue
			}
			valid++
			cases = append(cases, base{s.size, o})
		}
		if valid < 2 {
			t.Errorf("%s %+v: only %d valid cluster sizes", fmtSize(s.size), s.o, valid)
		}
	}
	cases = append(cases,
		base{4 * fmMiB, FormatOptions{NumFATs: 1, RootEntries: 100, ReservedSectors: 3}},
		base{64 * fmMiB, FormatOptions{RootEntries: 1000, ReservedSectors: 9, Label: "odd"}},
		base{1 * fmGiB, FormatOptions{FATType: 32, ReservedSectors: 2}},
		base{1 * fmGiB, FormatOptions{FATType: 32, ReservedSectors: 3}},
		base{1 * fmGiB, FormatOptions{FATType: 32, BackupBootSector: 31, Label: "BACKUP31"}},
		base{1 * fmGiB, FormatOptions{FATType: 32, ReservedSectors: 6}},
		base{1 * fmGiB, FormatOptions{FATType: 32, ReservedSectors: 7}},
		base{1 * fmGiB, FormatOptions{Media: 0xF0, HiddenSectors: 63, SectorsPerTrack: 17, Heads: 4}},
		base{20 * fmGiB, FormatOptions{Label: "TWENTY"}},
		base{64 * fmGiB, FormatOptions{}},
		base{200 * fmGiB, FormatOptions{SectorSize: 4096}},
		base{100*fmMiB + 12345, FormatOptions{}}, // not a whole number of sectors or tracks
	)
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s%q", fmtSize(c.size), fmArgs(c.o)), func(t *testing.T) {
			t.Parallel()
			img, res, err := fmFormatFile(t, t.TempDir(), c.size, fmFixed(c.o))
			if err != nil {
				t.Fatal(err)
			}
			used := int64(0)
			if res.Geometry.Type == ondisk.FAT32 {
				used = 1
			}
			fmCheckFsck(t, img, res, used)
		})
	}
	t.Logf("%d layouts checked", len(cases))
}

var (
	reMinfoSerial  = regexp.MustCompile(`serial number: ([0-9A-F]{8})`)
	reMinfoLabel   = regexp.MustCompile(`disk label="(.{11})"`)
	reMinfoCluster = regexp.MustCompile(`cluster size: (\d+) sectors`)
	reMinfoSector  = regexp.MustCompile(`sector size: (\d+) bytes`)
	reMdirLabel    = regexp.MustCompile(`Volume in drive : (?:is (.*)|has no label)`)
	reMdirSerial   = regexp.MustCompile(`Volume Serial Number is ([0-9A-F]{4})-([0-9A-F]{4})`)
	reMdirFree     = regexp.MustCompile(`([\d ]+) bytes free`)
)

// fmMdirFree is the free space mdir reports.
func fmMdirFree(t *testing.T, out string) int64 {
	t.Helper()
	m := reMdirFree.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no free space in mdir output:\n%s", out)
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(m[1], " ", ""), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFormatMtools reads formatted volumes with mtools: minfo shows the
// label, serial number, sector and cluster size Format wrote; mdir shows the
// label, serial and exactly the free space Format computed; mcopy writes a
// file, mtype reads it back, mdir's free space drops by its clusters and
// fsck.fat stays clean.
func TestFormatMtools(t *testing.T) {
	fattest.Need(t, "minfo", "mdir", "mcopy", "mtype", "fsck.fat")
	cases := []struct {
		size int64
		o    FormatOptions
	}{
		{1440 * fmKiB, FormatOptions{Label: "FLOPPY"}},
		{4 * fmMiB, FormatOptions{Label: "Tiny"}},
		{64 * fmMiB, FormatOptions{Label: "SIXTEEN"}},
		{64 * fmMiB, FormatOptions{}},
		{300 * fmMiB, FormatOptions{FATType: 32, Label: "F32SMALL"}},
		{1 * fmGiB, FormatOptions{Label: "BIG"}},
		{1 * fmGiB, FormatOptions{FATType: 32, SectorSize: 4096, Label: "FOURK"}},
		{9 * fmGiB, FormatOptions{Label: "NINE"}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s%q", fmtSize(c.size), fmArgs(c.o)), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			o := c.o
			o.VolumeID, o.HasVolumeID = 0xC0FFEE42, true
			img, res, err := fmFormatFile(t, dir, c.size, o)
			if err != nil {
				t.Fatal(err)
			}
			g := res.Geometry
			info := fattest.Must(t, "minfo", "-i", img, "::")
			check := func(re *regexp.Regexp, out, want string) {
				t.Helper()
				if m := re.FindStringSubmatch(out); m == nil || m[1] != want {
					t.Errorf("%v: got %q, want %q in\n%s", re, m, want, out)
				}
			}
			check(reMinfoSerial, info, "C0FFEE42")
			check(reMinfoCluster, info, strconv.Itoa(int(g.SectorsPerCluster)))
			check(reMinfoSector, info, strconv.Itoa(int(g.BytesPerSector)))
			check(reMinfoLabel, info, string(res.BootSector.VolumeLabel[:]))

			dirOut := fattest.Must(t, "mdir", "-i", img, "::")
			if m := reMdirLabel.FindStringSubmatch(dirOut); m == nil || strings.TrimRight(m[1], " ") != res.Label {
				t.Errorf("mdir label %q, want %q:\n%s", m, res.Label, dirOut)
			}
			if m := reMdirSerial.FindStringSubmatch(dirOut); m == nil || m[1]+m[2] != "C0FFEE42" {
				t.Errorf("mdir serial %q:\n%s", m, dirOut)
			}
			if free := fmMdirFree(t, dirOut); free != res.FreeBytes() {
				t.Errorf("mdir: %d bytes free, Format says %d", free, res.FreeBytes())
			}

			data := bytes.Repeat([]byte("vdisk format oracle\n"), 5000) // 100000 bytes
			src := filepath.Join(dir, "hello.txt")
			if err := os.WriteFile(src, data, 0o644); err != nil {
				t.Fatal(err)
			}
			fattest.Must(t, "mcopy", "-i", img, src, "::/HELLO.TXT")
			if got := fattest.Must(t, "mtype", "-i", img, "::/HELLO.TXT"); got != string(data) {
				t.Errorf("mtype gives %d bytes, want %d", len(got), len(data))
			}
			clusters := (int64(len(data)) + int64(g.ClusterSize) - 1) / int64(g.ClusterSize)
			if free := fmMdirFree(t, fattest.Must(t, "mdir", "-i", img, "::")); free != res.FreeBytes()-clusters*int64(g.ClusterSize) {
				t.Errorf("after mcopy: %d bytes free, want %d", free, res.FreeBytes()-clusters*int64(g.ClusterSize))
			}
			used := clusters
			if g.Type == ondisk.FAT32 {
				used++
			}
			fmCheckFsck(t, img, res, used)
		})
	}
}
