package fat

// Nothing lost, no surprises: a volume that is only read is not written to;
// a volume found corrupt refuses writes rather than make things worse; a
// volume already dirty keeps its boot sector and backup in step; full
// directories say so; an entry without a name gets one. The oracles are
// fsck.fat, mtools, dosfstools' own corrupt images and the image's bytes.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/vdisk-dev/vdisk/fsd/fat/internal/fattest"
	"github.com/vdisk-dev/vdisk/fsd/fat/internal/ondisk"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// TestReadingWritesNothing: mounting, listing and reading every file of a
// volume mtools filled, and dismounting, leaves the image byte for byte as
// it was: nothing marks it dirty and clean again, nothing rewrites FSInfo.
func TestReadingWritesNothing(t *testing.T) {
	fattest.Need(t, "mcopy", "fsck.fat")
	for _, l := range fxLayouts[:3] {
		t.Run(l.name, func(t *testing.T) {
			img := fattest.Mkfs(t, l.kib, l.mkfs...)
			src := t.TempDir()
			if err := os.WriteFile(src+"/A long file name.txt", fxContent("a", 5000), 0o644); err != nil {
				t.Fatal(err)
			}
			fattest.Must(t, "mmd", "-i", img, "::/sub")
			fattest.Must(t, "mcopy", "-i", img, src+"/A long file name.txt", "::/sub/")
			fattest.Must(t, "mcopy", "-i", img, src+"/A long file name.txt", "::/")
			if l.typ == ondisk.FAT32 {
				// A stale FSInfo free count, as Windows and Linux leave
				// it: still not rewritten by a session that only reads.
				b, _ := os.ReadFile(img)
				bs, _ := ondisk.ParseBootSector(b)
				g, _ := bs.Geometry()
				off := int64(g.FSInfoSector)*int64(g.BytesPerSector) + 488
				copy(b[off:], []byte{0xFF, 0xFF, 0xFF, 0xFF})
				if err := os.WriteFile(img, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			before := fxSum(t, img)
			x := fxOpen(t, img, l.sectorSize, fxOpt{})
			tree := x.walk(`\`)
			if len(tree) != 3 {
				t.Fatalf("tree %v", tree)
			}
			x.volumeLabel()
			x.close()
			if fxSum(t, img) != before {
				t.Fatal("a session that only read changed the image")
			}
		})
	}
}

// TestDirtyFAT32KeepsBootSectorAndBackupInStep: on dosfstools'
// check-fat32_dos_cln_shut (FAT[1] says "not cleanly unmounted", the boot
// sector and its backup agree), changes leave the two boot sectors equal
// (fsck.fat compares them byte for byte) and the volume dirty as found; on
// a clean volume the flag is set in the boot sector alone while it is in
// use (as FastFAT does; fsck.fat clears it there alone) and cleared at
// dismount.
func TestDirtyFAT32KeepsBootSectorAndBackupInStep(t *testing.T) {
	fattest.Need(t, "fsck.fat")
	bootAndBackup := fxBootSectors
	t.Run("found dirty", func(t *testing.T) {
		img := testsupport.DosfstoolsImage(t, "check-fat32_dos_cln_shut.fsck")
		x := fxOpen(t, img, 512, fxOpt{})
		if st := x.volume().needsCheck(); st != nil {
			t.Fatalf("a dirty volume with sound chains is taken as corrupt: %v", st)
		}
		x.mkdir(`\made by vdisk`)
		x.create(`\made by vdisk\file.txt`, fxContent("f", 3000))
		x.close()
		boot, backup := bootAndBackup(t, img)
		if !bytes.Equal(boot, backup) {
			t.Fatalf("boot sector and backup differ after writing to a dirty volume (offset 0x41: %#x / %#x)", boot[0x41], backup[0x41])
		}
		out, _ := fattest.Run(t, "fsck.fat", "-n", img)
		if strings.Contains(out, "differences between boot sector and its backup") {
			t.Fatalf("fsck.fat -n:\n%s", out)
		}
		if !strings.Contains(out, "Dirty bit is set") {
			t.Fatalf("the volume is no longer dirty, though nothing checked it:\n%s", out)
		}
		fxOnlyDirtyBit(t, img)
		// fsck.fat -a clears the dirty state; the two sectors stay equal.
		fattest.Run(t, "fsck.fat", "-a", img)
		fxFsck(t, img)
		if boot, backup := bootAndBackup(t, img); !bytes.Equal(boot, backup) {
			t.Fatal("boot sector and backup differ after fsck.fat -a")
		}
	})
	t.Run("clean", func(t *testing.T) {
		x := fxNew(t, fxLayouts[2])
		x.create(`\f.txt`, []byte("x"))
		boot, backup := bootAndBackup(t, x.img)
		if !ondisk.BootSectorDirty(boot) || ondisk.BootSectorDirty(backup) {
			t.Fatalf("in use: boot sector dirty %v, backup dirty %v; want the boot sector alone", ondisk.BootSectorDirty(boot), ondisk.BootSectorDirty(backup))
		}
		x.close()
		if boot, backup := bootAndBackup(t, x.img); !bytes.Equal(boot, backup) {
			t.Fatal("boot sector and backup differ after a clean dismount")
		}
		fxFsck(t, x.img)
	})
}

// fxBootSectors returns the first 512 bytes of an image's boot sector and
// of its backup (nil when it has none): what fsck.fat compares. Only those
// are read (dosfstools' images are up to 1 GB).
func fxBootSectors(t *testing.T, img string) (boot, backup []byte) {
	t.Helper()
	f, g := fxOpenImage(t, img)
	defer f.Close()
	boot = make([]byte, 512)
	if _, err := f.ReadAt(boot, 0); err != nil {
		t.Fatal(err)
	}
	if s := g.BackupBootSector; s != 0 {
		backup = make([]byte, 512)
		if _, err := f.ReadAt(backup, int64(s)*int64(g.BytesPerSector)); err != nil {
			t.Fatal(err)
		}
	}
	return boot, backup
}

// fxOpenImage opens an image file for reading and writing, with its
// geometry.
func fxOpenImage(t *testing.T, img string) (*os.File, *ondisk.Geometry) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4096)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	bs, err := ondisk.ParseBootSector(b)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := bs.Geometry()
	return f, &g
}

// fxOnlyDirtyBit fails the test if fsck.fat -n finds anything on img but
// the dirty state.
func fxOnlyDirtyBit(t *testing.T, img string) {
	t.Helper()
	out, _ := fattest.Run(t, "fsck.fat", "-n", img)
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		switch {
		case strings.HasPrefix(l, "fsck.fat "), strings.HasPrefix(l, "Dirty bit is set"),
			strings.Contains(l, "Automatically removing dirty bit"), l == "", strings.HasPrefix(l, "Leaving filesystem"),
			strings.HasPrefix(l, img+":"):
		default:
			t.Errorf("fsck.fat -n finds more than the dirty state: %q\n%s", l, out)
		}
	}
}

// fxTryWrites attempts every kind of write on a volume with the existing
// file path and returns the status of each.
func (x *fxVol) tryWrites(path string) map[string]error {
	x.t.Helper()
	open := func(p string, access iomgr.AccessMask, disp iomgr.CreateDisposition, opts iomgr.CreateOptions) error {
		fo, _, err := x.open(p, access, disp, opts)
		if err == nil {
			fxClose(fo)
		}
		return err
	}
	res := map[string]error{
		"create":    open(`\new file.txt`, fxRW, iomgr.FileCreate, iomgr.FileNonDirectoryFile),
		"mkdir":     open(`\new dir`, iomgr.FileListDirectory, iomgr.FileCreate, iomgr.FileDirectoryFile),
		"write":     open(path, fxRW, iomgr.FileOpen, 0),
		"overwrite": open(path, iomgr.GenericRead, iomgr.FileOverwrite, 0),
		"delete":    open(path, iomgr.Delete, iomgr.FileOpen, iomgr.FileDeleteOnClose),
		"label":     x.setVolumeLabel("NEW").Err(),
	}
	// A handle opened for reading cannot set information either.
	if fo, _, err := x.open(path, iomgr.GenericRead|iomgr.FileWriteAttributes, iomgr.FileOpen, 0); err != nil {
		res["open for attributes"] = err
	} else {
		res["set size"] = fxSetEOF(fo, 0).Err()
		res["rename"] = fxRename(fo, `\renamed.txt`, false).Err()
		fxClose(fo)
	}
	return res
}

// TestWritesRefusedOnCorruptVolumes: dosfstools' images whose chains are
// damaged (one runs into a free cluster; two files share clusters, and a
// file shares the FAT32 root's; a chain loops) refuse every write with
// STATUS_VOLUME_DIRTY, marked dirty or not, and are left byte for byte as
// they were (fsck.fat finds what it found before), while their files stay
// readable. Before, a new file took the free cluster the damaged chain
// reaches, and deleting a cross-linked file freed clusters its partner
// still used.
func TestWritesRefusedOnCorruptVolumes(t *testing.T) {
	fattest.Need(t, "fsck.fat", "mcopy")
	cases := []struct {
		image, file string // a file that exists on it
		damaged     bool   // file's own chain is damaged: it does not open
		readable    string // a file that reads back whole
	}{
		{"check-chain_to_free_cluster.fsck", `\TEST.TXT`, true, ""},
		{"check-chain_to_other_file.fsck", `\TEST2.TXT`, false, `\TEST1.TXT`},
		{"check-circular_chain.fsck", `\TEST4CLS.TXT`, true, ""},
	}
	for _, c := range cases {
		for _, dirty := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/dirty=%v", c.image, dirty), func(t *testing.T) {
				img := testsupport.DosfstoolsImage(t, c.image)
				if dirty {
					fxMarkDirty(t, img)
				}
				fsckBefore, _ := fattest.Run(t, "fsck.fat", "-n", img)
				before := fxSum(t, img)
				x := fxOpen(t, img, 512, fxOpt{})
				if err := x.volume().needsCheck(); !errors.Is(err, ondisk.ErrCorrupt) {
					t.Fatalf("needsCheck after mount: %v", err)
				}
				t.Logf("found: %v", x.volume().needsCheck())
				for op, err := range x.tryWrites(c.file) {
					if c.damaged && errors.Is(err, iomgr.StatusFileCorruptError) {
						continue // the damaged file itself does not open
					}
					if !errors.Is(err, iomgr.StatusVolumeDirty) {
						t.Errorf("%s on a corrupt volume: %v, want STATUS_VOLUME_DIRTY", op, err)
					}
				}
				// Reads go on.
				if len(x.listDir(`\`)) == 0 {
					t.Error("the root lists nothing")
				}
				if c.readable != "" {
					want := fxMtoolsTree(t, img)[c.readable]
					if got := x.readFile(c.readable); !bytes.Equal(got, want) {
						t.Errorf("%s reads %d bytes, mtools %d", c.readable, len(got), len(want))
					}
				}
				x.close()
				if fxSum(t, img) != before {
					t.Error("the image changed")
				}
				if after, _ := fattest.Run(t, "fsck.fat", "-n", img); after != fsckBefore {
					t.Errorf("fsck.fat -n before:\n%s\nafter:\n%s", fsckBefore, after)
				}
			})
		}
	}
}

// fxMarkDirty clears FAT[1]'s clean bit (FAT16 bit 15, FAT32 bit 27) in
// every FAT copy, as a volume left mounted by Linux or Windows has it.
func fxMarkDirty(t *testing.T, img string) {
	t.Helper()
	f, g := fxOpenImage(t, img)
	defer f.Close()
	off, bit := int64(3), byte(0x80)
	if g.Type == ondisk.FAT32 {
		off, bit = 7, 0x08
	}
	for i := uint32(0); i < g.NumFATs; i++ {
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, g.FATOffset(i)+off); err != nil {
			t.Fatal(err)
		}
		b[0] &^= bit
		if _, err := f.WriteAt(b, g.FATOffset(i)+off); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCrossLinkFoundByTheOwnershipPass: a file in a subdirectory whose
// chain starts inside another file's chain shows neither in the FAT's
// links nor in the root directory. On a dirty volume the ownership pass at
// mount finds it and writes are refused at once; on a clean one, as soon
// as the subdirectory is read. A dirty volume whose chains are sound takes
// writes, and stays dirty.
func TestCrossLinkFoundByTheOwnershipPass(t *testing.T) {
	fattest.Need(t, "fsck.fat")
	base := func(t *testing.T) string {
		img := fattest.Mkfs(t, 16384, "-F", "16", "-s", "2")
		x := fxOpen(t, img, 512, fxOpt{})
		x.create(`\a.bin`, fxContent("a", 5000))
		x.mkdir(`\sub`)
		x.create(`\sub\in.txt`, fxContent("in", 1500))
		x.close()
		return img
	}
	crossLink := func(t *testing.T, img string) {
		im := fxLoadImage(t, img)
		_, a := im.find(0, "a.bin")
		_, sub := im.find(0, "sub")
		off, in := im.find(sub.StartCluster(ondisk.FAT16), "in.txt")
		// in.txt's two clusters become a.bin's last two.
		old := in.StartCluster(ondisk.FAT16)
		im.setFAT(old, 0)
		im.setFAT(old+1, 0)
		in.FirstCluster = a.StartCluster(ondisk.FAT16) + 3
		in.Encode(im.b[off:])
		im.save(img)
	}
	t.Run("dirty", func(t *testing.T) {
		img := base(t)
		crossLink(t, img)
		fxMarkDirty(t, img)
		out, _ := fattest.Run(t, "fsck.fat", "-n", img)
		if !strings.Contains(out, "share clusters") {
			t.Fatalf("the patch did not cross-link the files; fsck.fat -n:\n%s", out)
		}
		before := fxSum(t, img)
		x := fxOpen(t, img, 512, fxOpt{})
		err := x.volume().needsCheck()
		var p *ondisk.OwnershipProblem
		if !errors.As(err, &p) || p.Kind != ondisk.ProblemCrossLink || p.Path != `\sub\in.txt` {
			t.Fatalf("needsCheck after mount: %v", err)
		}
		for op, err := range x.tryWrites(`\a.bin`) {
			if !errors.Is(err, iomgr.StatusVolumeDirty) {
				t.Errorf("%s: %v, want STATUS_VOLUME_DIRTY", op, err)
			}
		}
		if got := x.readFile(`\a.bin`); !bytes.Equal(got, fxContent("a", 5000)) {
			t.Error("a.bin no longer reads back")
		}
		x.close()
		if fxSum(t, img) != before {
			t.Error("the image changed")
		}
	})
	t.Run("clean", func(t *testing.T) {
		img := base(t)
		crossLink(t, img)
		x := fxOpen(t, img, 512, fxOpt{})
		if err := x.volume().needsCheck(); err != nil {
			t.Fatalf("found at mount without reading \\sub: %v", err)
		}
		x.listDir(`\sub`)
		if err := x.volume().needsCheck(); !errors.Is(err, ondisk.ErrCorrupt) || !strings.Contains(err.Error(), `\sub\in.txt`) {
			t.Fatalf("needsCheck after reading \\sub: %v", err)
		}
		if _, _, err := x.open(`\a.bin`, iomgr.Delete, iomgr.FileOpen, iomgr.FileDeleteOnClose); !errors.Is(err, iomgr.StatusVolumeDirty) {
			t.Fatalf("delete a.bin: %v", err)
		}
		x.close()
	})
	t.Run("dirty and sound", func(t *testing.T) {
		img := base(t)
		fxMarkDirty(t, img)
		x := fxOpen(t, img, 512, fxOpt{})
		if err := x.volume().needsCheck(); err != nil {
			t.Fatalf("a sound dirty volume taken as corrupt: %v", err)
		}
		x.create(`\b.bin`, fxContent("b", 7000))
		x.close()
		fxOnlyDirtyBit(t, img)
	})
}

// TestOwnershipPassAgainstFsck runs the ownership pass to the end on every
// corrupt image of dosfstools' suite and compares the kinds of chain
// problem it reports with what fsck.fat -n reports.
func TestOwnershipPassAgainstFsck(t *testing.T) {
	fattest.Need(t, "fsck.fat")
	phrases := []struct {
		fsck string
		kind ondisk.OwnershipProblemKind
	}{
		{"Contains a free cluster", ondisk.ProblemLinkFree},
		{"share clusters", ondisk.ProblemCrossLink},
		{"Circular cluster chain", ondisk.ProblemCycle},
		{"cluster chain length is >", ondisk.ProblemChainTooLong},
	}
	for _, name := range testsupport.DosfstoolsCases(t, "check-*.fsck") {
		if name == "check-huge.fsck" {
			// dosfstools expects fsck.fat itself to fail on it (XFAIL):
			// its 80 GiB volume's clusters lie past the 100 MB image.
			continue
		}
		t.Run(name, func(t *testing.T) {
			img := testsupport.DosfstoolsImage(t, name)
			out, _ := fattest.Run(t, "fsck.fat", "-n", img)
			want := map[ondisk.OwnershipProblemKind]bool{}
			for _, p := range phrases {
				if strings.Contains(out, p.fsck) {
					want[p.kind] = true
				}
			}
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			b := make([]byte, 4096)
			if _, err := f.ReadAt(b, 0); err != nil {
				t.Fatal(err)
			}
			bs, err := ondisk.ParseBootSector(b)
			if err != nil {
				t.Fatal(err)
			}
			g, _ := bs.Geometry()
			fat := make([]byte, g.FATBytes())
			if _, err := f.ReadAt(fat, g.FATOffset(g.ActiveFAT)); err != nil {
				t.Fatal(err)
			}
			tab, err := ondisk.NewTable(&g, fat)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := (&ondisk.OwnershipCheck{Geometry: &g, FAT: tab, ResolveOwners: true,
				ReadAt: func(p []byte, off int64) error { _, err := f.ReadAt(p, off); return err }}).Run()
			if err != nil {
				t.Fatal(err)
			}
			got := map[ondisk.OwnershipProblemKind]bool{}
			for _, p := range rep.Problems {
				got[p.Kind] = true
				t.Logf("%v", p)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("kinds %v, fsck.fat's %v; fsck.fat -n:\n%s", got, want, out)
			}
			if !rep.Complete {
				t.Error("the pass stopped early")
			}
			// The FAT's links alone tell a link into a free cluster and a
			// join of two chains.
			if err := tab.CheckLinks(); (err != nil) != (want[ondisk.ProblemLinkFree] || want[ondisk.ProblemCycle] || want[ondisk.ProblemCrossLink]) {
				t.Errorf("CheckLinks: %v", err)
			}
		})
	}
}

// TestFullDirectoriesSayWhatIsFull: a directory at the 65,536-entry limit
// gives STATUS_CANNOT_MAKE, as FastFAT does, not STATUS_DISK_FULL (the
// volume has room); TestFixedRootDirectoryFull does the FAT12/16 root.
func TestFullDirectoriesSayWhatIsFull(t *testing.T) {
	fattest.Need(t, "mdir")
	// FAT16 with 32 KiB clusters: a 2 MiB directory is 64 clusters. The
	// directory is filled on the image directly: 65,534 creates through
	// the FSD would take most of a minute under the race detector.
	img := fattest.Mkfs(t, 200<<10, "-F", "16", "-s", "64")
	x := fxOpen(t, img, 512, fxOpt{})
	x.mkdir(`\big`)
	x.close()
	im := fxLoadImage(t, img)
	_, big := im.find(0, "big")
	first := big.StartCluster(ondisk.FAT16)
	per := int(im.g.ClusterSize) / ondisk.DirEntrySize
	if _, err := im.fat.Allocate(ondisk.MaxDirEntries/uint32(per)-1, first+1, first); err != nil {
		t.Fatal(err)
	}
	exts, err := im.fat.Chain(first)
	if err != nil {
		t.Fatal(err)
	}
	// 65,534 slots after "." and "..": entries with long names of 12
	// slots each (fsck.fat compares every pair of names in a directory:
	// 65,534 short names would cost it most of a minute), then short
	// names to fill the rest.
	dir := make([]byte, 2*ondisk.DirEntrySize, ondisk.MaxDirEntries*ondisk.DirEntrySize)
	for n := 0; len(dir) < cap(dir); n++ {
		sn, _, ok := ondisk.ParseShortName(fmt.Sprintf("F%06d", n))
		if !ok {
			t.Fatal("short name")
		}
		se := ondisk.ShortEntry{Name: sn, Attr: ondisk.AttrArchive}
		long := ""
		if cap(dir)-len(dir) >= 13*ondisk.DirEntrySize {
			long = fmt.Sprintf("file %06d with a long name %s", n, strings.Repeat("x", 120))
		}
		if dir, err = ondisk.AppendEntries(dir, long, &se); err != nil {
			t.Fatal(err)
		}
	}
	slot := 0
	for _, e := range exts {
		for c := e.Start; c < e.Start+e.Len; c++ {
			off := im.g.ClusterOffset(c)
			for i := 0; i < per; i, slot = i+1, slot+1 {
				if slot >= 2 { // "." and ".." stay
					copy(im.b[off+int64(i)*ondisk.DirEntrySize:], dir[slot*ondisk.DirEntrySize:][:ondisk.DirEntrySize])
				}
			}
		}
	}
	im.save(img)
	fxFsck(t, img)

	x = fxOpen(t, img, 512, fxOpt{})
	if _, _, err := x.open(`\big\one more.txt`, fxRW, iomgr.FileCreate, 0); !errors.Is(err, iomgr.StatusCannotMake) {
		t.Fatalf("a file in a full directory: %v, want STATUS_CANNOT_MAKE", err)
	}
	if _, _, err := x.open(`\big\one more`, iomgr.FileListDirectory, iomgr.FileCreate, iomgr.FileDirectoryFile); !errors.Is(err, iomgr.StatusCannotMake) {
		t.Fatalf("a directory in a full directory: %v, want STATUS_CANNOT_MAKE", err)
	}
	// The volume still takes files elsewhere.
	x.create(`\elsewhere.txt`, []byte("room"))
	x.close()
	fxFsck(t, img)
	y := fxOpen(t, img, 512, fxOpt{})
	n := len(y.listDir(`\big`))
	y.close()
	out := fattest.Must(t, "mdir", "-i", img, "-b", "::/big")
	if got := strings.Count(out, "\n"); got != n || n < 5000 {
		t.Fatalf("mdir lists %d entries in \\big, the FSD %d", got, n)
	}
}

// TestBlankShortName: dosfstools' check-bad_names holds an entry whose 8.3
// name is all spaces. It is listed under BlankName (not as "", which reads
// as the directory's own path), can be opened and read by that name, and
// the listing has as many entries as mdir's.
func TestBlankShortName(t *testing.T) {
	fattest.Need(t, "mdir")
	img := testsupport.DosfstoolsImage(t, "check-bad_names.fsck")
	x := fxOpen(t, img, 512, fxOpt{})
	es := x.listDir(`\`)
	blank := ""
	seen := map[string]bool{}
	for _, e := range es {
		if e.FileName == "" {
			t.Fatal("an entry is listed without a name")
		}
		if seen[e.FileName] {
			t.Fatalf("two entries named %q", e.FileName)
		}
		seen[e.FileName] = true
		if strings.HasPrefix(e.FileName, "(blank name, slot ") {
			blank = e.FileName
		}
	}
	if blank == "" {
		t.Fatalf("no entry goes by a blank name: %v", seen)
	}
	if got := x.readFile(`\` + blank); len(got) != 0 {
		t.Fatalf("%s reads %d bytes", blank, len(got))
	}
	out := fattest.Must(t, "mdir", "-i", img, "::/")
	files := -1
	for _, l := range strings.Split(out, "\n") {
		// mdir's summary: "        4 files                   0 bytes".
		if f := strings.Fields(l); len(f) >= 2 && f[1] == "files" {
			fmt.Sscan(f[0], &files)
		}
	}
	if len(es) != files {
		t.Fatalf("%d entries, mdir counts %d:\n%s", len(es), files, out)
	}
	x.close()
}
