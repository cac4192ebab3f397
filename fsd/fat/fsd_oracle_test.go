package fat

// Outside oracles of the FSD: what it writes passes fsck.fat -n and reads
// back identically with mtools; what mtools writes reads back identically
// through the FSD.

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/vdisk-dev/vdisk/fsd/fat/internal/fattest"
	"github.com/vdisk-dev/vdisk/fsd/fat/internal/ondisk"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// fxTreeSpec builds a tree through the FSD: long, Unicode, mixed-case
// names, a deep path, empty files, a multi-megabyte file (smaller on the
// floppy), then renames, deletes, truncates and a label. It returns the
// expected tree.
func fxTreeSpec(t *testing.T, x *fxVol, big int) map[string][]byte {
	t.Helper()
	want := map[string][]byte{}
	mkdir := func(p string) { x.mkdir(p); want[p+`\`] = nil }
	put := func(p string, n int) {
		b := fxContent(p, n)
		x.create(p, b)
		want[p] = b
	}
	mkdir(`\Docs`)
	mkdir(`\Docs\Ünïcode Dïrectory`)
	mkdir(`\lower`)
	mkdir(`\UPPER`)
	put(`\README`, 0)
	put(`\readme.txt`+"x", 10) // `\readme.txtx`
	put(`\MiXeD CaSe.TxT`, 1234)
	put(`\lower\abc.txt`, 3000)
	put(`\UPPER\ABC.TXT`, 3001)
	put(`\Docs\A long file name with spaces and several.dots.in.it.text`, 5000)
	put(`\Docs\Ünïcode Dïrectory\日本語のファイル名.txt`, 777)
	put(`\Docs\Ünïcode Dïrectory\emoji 😀 name.bin`, 65)
	put(`\Docs\Ünïcode Dïrectory\empty`, 0)
	put(`\Docs\`+strings.Repeat("n", 255), 1)
	deep := ``
	for i := 0; i < 12; i++ {
		deep += `\level` + string(rune('a'+i)) + ` directory`
		mkdir(deep)
	}
	put(deep+`\deep file.dat`, 4097)
	put(`\big.bin`, big)
	// Names that need ~N tails.
	for i := 0; i < 7; i++ {
		put(`\Docs\Same Prefix Long Name `+string(rune('0'+i))+`.txt`, i*100)
	}
	// Renames: in place (case only, and a new name), across directories,
	// a directory with its contents, replacing.
	ren := func(from, to string, replace bool) {
		t.Helper()
		fo := x.mustOpen(from, iomgr.Delete|iomgr.GenericRead, iomgr.FileOpen, 0)
		defer fxClose(fo)
		if st := fxRename(fo, to, replace); st != iomgr.StatusSuccess {
			t.Fatalf("rename %s → %s: %v", from, to, st)
		}
		for p, b := range want {
			if p == from || p == from+`\` || strings.HasPrefix(p, from+`\`) {
				delete(want, p)
				want[to+strings.TrimPrefix(p, from)] = b
			}
		}
	}
	ren(`\MiXeD CaSe.TxT`, `\mixed case.txt`, false)
	ren(`\lower\abc.txt`, `\Docs\moved abc.txt`, false)
	ren(`\UPPER`, `\Docs\Ünïcode Dïrectory\Upper Moved`, false)
	put(`\victim.txt`, 99)
	delete(want, `\victim.txt`)
	ren(`\readme.txtx`, `\victim.txt`, true)
	// Deletes: a file, an empty directory, a file then its directory.
	del := func(p string, dir bool) {
		t.Helper()
		opts := iomgr.FileNonDirectoryFile
		if dir {
			opts = iomgr.FileDirectoryFile
		}
		fo := x.mustOpen(p, iomgr.Delete, iomgr.FileOpen, opts)
		if st := fxDelete(fo); st != iomgr.StatusSuccess {
			t.Fatalf("delete %s: %v", p, st)
		}
		fxClose(fo)
		delete(want, p)
		delete(want, p+`\`)
	}
	del(`\Docs\Same Prefix Long Name 3.txt`, false)
	del(`\lower`, true)
	// Truncates: shorter, longer (zero-filled), to zero.
	trunc := func(p string, n int) {
		t.Helper()
		fo := x.mustOpen(p, fxRW, iomgr.FileOpen, 0)
		defer fxClose(fo)
		if st := fxSetEOF(fo, int64(n)); st != iomgr.StatusSuccess {
			t.Fatalf("truncate %s: %v", p, st)
		}
		b := want[p]
		if n <= len(b) {
			want[p] = b[:n]
		} else {
			want[p] = append(b, make([]byte, n-len(b))...)
		}
	}
	trunc(`\big.bin`, big/2+1)
	trunc(`\Docs\Same Prefix Long Name 1.txt`, 10000)
	trunc(`\Docs\Same Prefix Long Name 2.txt`, 0)
	// The label.
	root := x.mustOpen(``, iomgr.GenericRead, iomgr.FileOpen, 0)
	st := fxCall(root, iomgr.MajorSetVolumeInformation, 0, func(sl *iomgr.StackLocation, irp *iomgr.IRP) {
		sl.Parameters.SetVolume.Class = iomgr.FileFsLabelInformationClass
		irp.SystemBuffer = &iomgr.FileFsLabelInformation{VolumeLabel: "Vdisk Lbl"}
	}).Status
	fxClose(root)
	if st != iomgr.StatusSuccess {
		t.Fatalf("set label: %v", st)
	}
	return want
}

func TestOracleFSDWritesTree(t *testing.T) {
	fattest.Need(t, "fsck.fat", "mcopy", "mdir", "mlabel")
	for _, l := range fxLayouts {
		t.Run(l.name, func(t *testing.T) {
			x := fxNew(t, l)
			big := 3 << 20
			if l.typ == ondisk.FAT12 {
				big = 600 << 10
			}
			want := fxTreeSpec(t, x, big)
			// The FSD itself reads the tree back before and after a remount.
			fxCompareTrees(t, "vdisk", x.walk(`\`), want)
			free := x.volume().freeClusters()
			x.close()
			fxFsck(t, x.img)
			// mtools 4.0 shows a character outside the BMP (a surrogate
			// pair in the long name) as "__".
			mwant := map[string][]byte{}
			for p, b := range want {
				mwant[strings.ReplaceAll(p, "😀", "__")] = b
			}
			fxCompareTrees(t, "mtools", fxMtoolsTree(t, x.img), mwant)
			if out := fattest.Must(t, "mlabel", "-i", x.img, "-s", "::"); !strings.Contains(out, "Volume label is Vdisk Lbl") {
				t.Fatalf("mlabel: %q", out)
			}
			// mdir lists the long names exactly.
			var names []string
			for p := range mwant {
				names = append(names, "::"+strings.ReplaceAll(p, `\`, "/"))
			}
			sort.Strings(names)
			out := fattest.Must(t, "mdir", "-i", x.img, "-/", "-b", "-a", "::")
			got := strings.Fields(strings.ReplaceAll(out, " ", "\x00"))
			for i := range got {
				got[i] = strings.ReplaceAll(got[i], "\x00", " ")
			}
			sort.Strings(got)
			if strings.Join(got, "\n") != strings.Join(names, "\n") {
				t.Errorf("mdir -b:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(names, "\n"))
			}
			// Mounted again: same tree, same free count, same label.
			y := fxOpen(t, x.img, l.sectorSize, fxOpt{})
			fxCompareTrees(t, "vdisk after remount", y.walk(`\`), want)
			if f := y.volume().freeClusters(); f != free {
				t.Errorf("free clusters %d after remount, %d before", f, free)
			}
			if lbl := y.vol.VPB().Label(); lbl != "Vdisk Lbl" { // case kept, as fatlabel keeps it
				t.Errorf("label %q after remount", lbl)
			}
			// Clearing the label removes the root entry and resets the BPB.
			root := y.mustOpen(``, iomgr.GenericRead, iomgr.FileOpen, 0)
			if st := fxCall(root, iomgr.MajorSetVolumeInformation, 0, func(sl *iomgr.StackLocation, irp *iomgr.IRP) {
				sl.Parameters.SetVolume.Class = iomgr.FileFsLabelInformationClass
				irp.SystemBuffer = &iomgr.FileFsLabelInformation{}
			}).Status; st != iomgr.StatusSuccess {
				t.Fatalf("clear the label: %v", st)
			}
			fxClose(root)
			y.close()
			fxFsck(t, x.img)
			if out := fattest.Must(t, "mlabel", "-i", x.img, "-s", "::"); !strings.Contains(out, "no label") {
				t.Fatalf("mlabel after clearing: %q", out)
			}
		})
	}
}

func TestOracleFSDReadsMtoolsTree(t *testing.T) {
	fattest.Need(t, "mcopy")
	for _, l := range fxLayouts {
		t.Run(l.name, func(t *testing.T) {
			img := fattest.Mkfs(t, l.kib, l.mkfs...)
			src := t.TempDir()
			want := map[string][]byte{}
			big := 2<<20 + 123
			if l.typ == ondisk.FAT12 {
				big = 500<<10 + 7
			}
			files := map[string]int{
				"README":                             0,
				"MiXed.Txt":                          17,
				"lower.txt":                          512,
				"A long name with spaces.text":       4096,
				"Sub/Deep/Ünïcode Náme.txt":          5,
				"Sub/Deep/日本語.txt":                   1000,
				"Sub/Deep/Deeper/Deepest/final file": 33333,
				"Sub/big.bin":                        big,
			}
			for i := 0; i < 40; i++ {
				files[fmt.Sprintf("Many/Same Prefix Long Name %02d.dat", i)] = i * 37
			}
			for p, n := range files {
				b := fxContent(p, n)
				fp := filepath.Join(src, filepath.FromSlash(p))
				if err := os.MkdirAll(filepath.Dir(fp), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(fp, b, 0o644); err != nil {
					t.Fatal(err)
				}
				want[`\`+strings.ReplaceAll(p, "/", `\`)] = b
				for d := filepath.Dir(p); d != "."; d = filepath.Dir(d) {
					want[`\`+strings.ReplaceAll(d, "/", `\`)+`\`] = nil
				}
			}
			entries, _ := os.ReadDir(src)
			args := []string{"-s", "-i", img}
			for _, e := range entries {
				args = append(args, filepath.Join(src, e.Name()))
			}
			fattest.Must(t, "mcopy", append(args, "::/")...)
			x := fxOpen(t, img, l.sectorSize, fxOpt{readOnly: true})
			fxCompareTrees(t, "vdisk", x.walk(`\`), want)
			x.close()
			if l.name == "fat32" {
				// mkfs.fat always puts the FAT32 root in cluster 2; a root
				// elsewhere (a cluster past mcopy's files) reads the same.
				fattest.MoveRoot(t, img, 70000)
				y := fxOpen(t, img, l.sectorSize, fxOpt{readOnly: true})
				if rc := y.volume().geometry().RootCluster; rc != 70000 {
					t.Fatalf("root cluster %d after the move", rc)
				}
				fxCompareTrees(t, "vdisk, root in cluster 70000", y.walk(`\`), want)
				y.close()
			}
		})
	}
}

// A short name whose first byte is 0xE5 (Õ in code page 850, as mtools
// writes it) is stored as 0x05: it must read as a live entry, be found by
// its long name, and be renamed and deleted correctly.
func TestKanjiEscapeShortName(t *testing.T) {
	fattest.Need(t, "mcopy", "fsck.fat")
	img := fattest.Mkfs(t, 16384, "-F", "16")
	src := t.TempDir()
	for _, n := range []string{"Õdd one.txt", "Õx.txt", "Õgone.txt"} {
		if err := os.WriteFile(filepath.Join(src, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
		fattest.Must(t, "mcopy", "-i", img, filepath.Join(src, n), "::/")
	}
	im := fxLoadImage(t, img)
	if off, _ := im.find(0, "Õx.txt"); im.b[off] != 0x05 {
		t.Skipf("mtools stored %#x, not the 0x05 escape", im.b[off])
	}
	x := fxOpen(t, img, 512, fxOpt{})
	if got := x.readFile(`\õX.TXT`); string(got) != "Õx.txt" {
		t.Fatalf("%q", got)
	}
	fo := x.mustOpen(`\Õdd one.txt`, iomgr.Delete, iomgr.FileOpen, 0)
	if st := fxRename(fo, `\renamed.txt`, false); st != iomgr.StatusSuccess {
		t.Fatal(st)
	}
	fxClose(fo)
	fo = x.mustOpen(`\Õgone.txt`, iomgr.Delete, iomgr.FileOpen, 0)
	fxDelete(fo)
	fxClose(fo)
	x.close()
	fxFsck(t, img)
	fxCompareTrees(t, "mtools", fxMtoolsTree(t, img), map[string][]byte{
		`\renamed.txt`: []byte("Õdd one.txt"), `\Õx.txt`: []byte("Õx.txt")})
}
