package vdisk_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
)

// populate writes a tree with long, Unicode and mixed-case names, deep
// directories, an empty file and a larger file, and returns name → content.
func populate(t *testing.T, v *vdisk.Volume, bigBytes int) map[string][]byte {
	t.Helper()
	files := map[string][]byte{
		"README.TXT":                          []byte("plain 8.3 name\n"),
		"lower.txt":                           []byte("lower-case 8.3 name\n"),
		"Mixed Case Long Name.markdown":       []byte("# title\n"),
		"Ünïcödé ファイル.txt":                    []byte("unicode\n"),
		"empty.dat":                           nil,
		"a/b/c/d/e/deep file.bin":             bytes.Repeat([]byte{7}, 3000),
		"big/random.bin":                      testsupport.Random(bigBytes, 9, false),
		"EFI/BOOT/BOOTX64.EFI":                []byte("MZ not really an EFI binary"),
		"many/small_file_number_0001.dat":     []byte("1"),
		"many/small_file_number_0002.dat":     []byte("2"),
		"many/small_file_number_0003.dat":     []byte("3"),
		"many/small_file_number_0004.dat":     []byte("4"),
		"many/small_file_number_0005.dat":     []byte("5"),
		"many/small_file_number_0006.dat":     []byte("6"),
		"name with spaces and.dots.tar.gz":    []byte("x"),
		strings.Repeat("L", 200) + ".longext": []byte("long"),
	}
	for name, data := range files {
		if err := v.MkdirAll(filepathDir(name)); err != nil {
			t.Fatalf("mkdir for %s: %v", name, err)
		}
		if err := v.WriteFile(name, data); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
	}
	return files
}

func filepathDir(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return "."
}

// TestVolumePassesFSTestAndFsck populates a FAT16 and a FAT32 volume through
// the Volume facade, runs testing/fstest.TestFS on it, then checks the image
// with fsck.fat -n and mtools (every name and byte).
func TestVolumePassesFSTestAndFsck(t *testing.T) {
	for _, typ := range []string{"16", "32"} {
		t.Run("FAT"+typ, func(t *testing.T) {
			t.Parallel()
			testsupport.NeedTool(t, "fsck.fat")
			testsupport.NeedTool(t, "mcopy")
			dir := t.TempDir()
			// A 100 MiB file among the tree, as the oracle asks.
			size := int64(192 << 20)
			if typ == "32" {
				size = 300 << 20
			}
			path := testworld.FATImage(t, dir, typ, size)
			sys := vdisk.New(vdisk.Options{Requestor: "test"})
			if _, err := sys.AddImage(path, false); err != nil {
				t.Fatal(err)
			}
			v, err := testworld.VolumeNamed(sys, "fat"+typ+"@1", "test")
			if err != nil {
				t.Fatal(err)
			}
			files := populate(t, v, 3<<20+123)
			var names []string
			for n := range files {
				names = append(names, n)
			}
			sort.Strings(names)
			if err := fstest.TestFS(v, names...); err != nil {
				t.Fatal(err)
			}
			// Errors name the path and match io/fs sentinels.
			if _, err := v.Open("no/such/file"); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "no/such/file") {
				t.Fatalf("missing file: %v", err)
			}
			if err := v.Mkdir("README.TXT"); !errors.Is(err, fs.ErrExist) {
				t.Fatalf("mkdir over a file: %v", err)
			}
			if err := v.WriteFile("bad:name.txt", nil); err == nil {
				t.Fatal("a name FAT cannot hold was accepted")
			}
			// A 100 MiB file, added after fstest (which reads every file
			// many times in small pieces), still checked by fsck and mtools.
			files["big/hundred.bin"] = testsupport.Random(100<<20+123, 11, false)
			if err := v.WriteFile("big/hundred.bin", files["big/hundred.bin"]); err != nil {
				t.Fatal(err)
			}
			if err := sys.Close(); err != nil {
				t.Fatal(err)
			}
			tbl := testsupport.Sfdisk(t, path)
			off := tbl[0].Start
			testsupport.FsckPartition(t, path, off, tbl[0].Size)
			// mtools reads back every file byte for byte.
			cfgDir := t.TempDir()
			rc := filepath.Join(cfgDir, "mtoolsrc")
			os.WriteFile(rc, []byte("drive v: file=\""+path+"\" offset="+strconv.FormatInt(off, 10)+"\nmtools_skip_check=1\n"), 0o644)
			for name, want := range files {
				cmd := exec.Command("mtype", "v:/"+name)
				cmd.Env = append(os.Environ(), "MTOOLSRC="+rc, "LC_ALL=C.UTF-8")
				got, err := cmd.Output()
				if err != nil {
					t.Fatalf("mtype %s: %v", name, err)
				}
				if sha256.Sum256(got) != sha256.Sum256(want) {
					t.Fatalf("mtype %s: %d bytes differ from the %d written", name, len(got), len(want))
				}
			}
		})
	}
}

// TestVolumeRenameRemoveChtimes exercises the write methods and reads the
// results back through a fresh System.
func TestVolumeRenameRemoveChtimes(t *testing.T) {
	dir := t.TempDir()
	path := testworld.FATImage(t, dir, "16", 64<<20)
	sys := vdisk.New(vdisk.Options{})
	if _, err := sys.AddImage(path, false); err != nil {
		t.Fatal(err)
	}
	v, _ := testworld.VolumeNamed(sys, "fat16@1", "test")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(v.MkdirAll("docs/old"))
	must(v.WriteFile("docs/old/a.txt", []byte("A")))
	must(v.WriteFile("b.txt", []byte("B")))
	must(v.Rename("docs/old/a.txt", "docs/new name.txt", false))
	if err := v.Rename("b.txt", "docs/new name.txt", false); err == nil {
		t.Fatal("rename over an existing file without replace succeeded")
	}
	must(v.Rename("b.txt", "docs/new name.txt", true))
	must(v.Rename("docs/old", "moved", false))
	when := time.Date(2020, 2, 29, 12, 34, 56, 0, time.Local)
	must(v.Chtimes("docs/new name.txt", time.Time{}, when))
	if err := v.Remove("docs"); err == nil {
		t.Fatal("removing a non-empty directory succeeded")
	}
	must(v.Remove("moved"))
	must(v.SetLabel("NEWLABEL"))
	must(sys.Close())

	sys2 := vdisk.New(vdisk.Options{})
	defer sys2.Close()
	if _, err := sys2.AddImage(path, true); err != nil {
		t.Fatal(err)
	}
	v2, _ := testworld.VolumeNamed(sys2, "fat16@1", "test")
	data, err := v2.ReadFile("docs/new name.txt")
	if err != nil || string(data) != "B" {
		t.Fatalf("renamed file: %q %v", data, err)
	}
	fi, err := v2.Stat("docs/new name.txt")
	if err != nil || !fi.ModTime().Equal(when) {
		t.Fatalf("mtime %v, want %v (%v)", fi.ModTime(), when, err)
	}
	if _, err := v2.Stat("moved"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("removed directory: %v", err)
	}
	info, err := v2.Info()
	if err != nil || info.Label != "NEWLABEL" || info.FreeBytes <= 0 || info.TotalBytes < info.FreeBytes {
		t.Fatalf("volume info %+v %v", info, err)
	}
}
