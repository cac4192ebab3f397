package export_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vdisk-dev/vdisk/create"
	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
	"github.com/vdisk-dev/vdisk/partition"
)

// End-to-end: GPT images with 4096-byte sectors, written by vdisk and by
// fdisk, are served with a 4096-byte minimum block.

// TestE2E4KSectorGPT: GPT images with 4096-byte sectors, one written by
// vdisk.CreateImage and one by fdisk -b 4096, are detected by AddImage (a
// 4096-byte-sector disk, partitions where fdisk says), and their exports
// advertise a 4096-byte minimum block.
func TestE2E4KSectorGPT(t *testing.T) {
	t.Parallel()
	testsupport.NeedTool(t, "fdisk")
	testsupport.NeedTool(t, "nbdinfo")
	dir := t.TempDir()
	byVdisk := filepath.Join(dir, "v4k.img")
	if _, err := create.Image(byVdisk, create.Options{Size: 32 * testsupport.MiB, Table: partition.GPT, SectorSize: 4096,
		Parts: []partition.Spec{{Size: 8 * testsupport.MiB, Type: "linux", Label: "one"}, {Size: partition.Rest, Type: "raw", Label: "two"}}}); err != nil {
		t.Fatal(err)
	}
	byFdisk := filepath.Join(dir, "f4k.img")
	if err := os.WriteFile(byFdisk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(byFdisk, 32*testsupport.MiB); err != nil {
		t.Fatal(err)
	}
	if r := (testsupport.Cmd{Stdin: "g\nn\n1\n\n+8M\nn\n2\n\n\nw\n"}).Run(t, "fdisk", "-b", "4096", byFdisk); r.Code != 0 {
		t.Fatalf("fdisk -b 4096: exit status %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}

	sys, imgs := testworld.System(t, 0, false, byVdisk, byFdisk)
	oracle := map[string][]testsupport.Part{}
	for i, path := range []string{byVdisk, byFdisk} {
		img := imgs[i]
		want := testsupport.Fdisk4096(t, path)
		oracle[img.Name] = want
		dk := img.Disk.Extension.(*disk.Disk)
		if dk.SectorSize != 4096 || img.Disk.SectorSize != 4096 || img.Table.Kind != partition.GPT || img.Table.SectorSize != 4096 {
			t.Fatalf("%s: disk sector size %d, table %v with %d-byte sectors", path, dk.SectorSize, img.Table.Kind, img.Table.SectorSize)
		}
		if len(img.Partitions) != len(want) {
			t.Fatalf("%s: %d partitions, fdisk sees %d", path, len(img.Partitions), len(want))
		}
		for j, p := range img.Table.Partitions {
			if p.Start != want[j].Start || p.Size != want[j].Size {
				t.Errorf("%s partition %d: [%d, +%d), fdisk says [%d, +%d)", path, j+1, p.Start, p.Size, want[j].Start, want[j].Size)
			}
			if img.Partitions[j].SectorSize != 4096 || img.Volumes[j].SectorSize != 4096 {
				t.Errorf("%s partition %d: device sector sizes %d/%d", path, j+1, img.Partitions[j].SectorSize, img.Volumes[j].SectorSize)
			}
		}
	}
	uri := testworld.ServeSystem(t, sys, false)
	list := testworld.Nbdinfo(t, "--list", uri)
	if len(list) != 2*3+1 {
		t.Fatalf("nbdinfo --list: %d exports: %+v", len(list), list)
	}
	for _, e := range list {
		if e.MinBlock != 4096 {
			t.Errorf("export %q: block_size_minimum %d, want 4096", e.Name, e.MinBlock)
		}
		if name, n, ok := strings.Cut(e.Name, "@"); ok {
			i, _ := strconv.Atoi(n)
			if want := oracle[name][i-1].Size; e.Size != want {
				t.Errorf("export %q: size %d, fdisk says %d", e.Name, e.Size, want)
			}
		}
	}

	t.Run("nbdsh", func(t *testing.T) {
		py := testsupport.NeedNbdsh(t)
		for _, name := range []string{"v4k", "f4k"} {
			r := testworld.Nbdsh(t, py, uri+"/"+name+"@2", `
h.set_strict_mode(0)
r = {"min": h.get_block_size(nbd.SIZE_MINIMUM),
     "write": tryop(h.pwrite, bytes(range(256)) * 16, 4096),
     "small": tryop(h.pwrite, b"x" * 512, 512),
     "flush": tryop(h.flush)}
print(json.dumps(r))
`)
			testworld.Expect(t, name+"@2", r, map[string]any{"min": 4096, "write": "ok", "small": "EINVAL", "flush": "ok"})
			p := oracle[name][1]
			path := filepath.Join(dir, name+".img")
			want := bytes.Repeat(func() []byte {
				b := make([]byte, 256)
				for i := range b {
					b[i] = byte(i)
				}
				return b
			}(), 16)
			if !bytes.Equal(testsupport.ReadAt(t, path, p.Start+4096, 4096), want) {
				t.Errorf("%s@2: the write is not at the partition's offset %d + 4096", name, p.Start)
			}
			if !bytes.Equal(testsupport.ReadAt(t, path, p.Start, 4096), make([]byte, 4096)) {
				t.Errorf("%s@2: a refused 512-byte write changed the partition's first sector", name)
			}
		}
	})
}
