package fat

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vdisk-dev/vdisk/fsd/fat/internal/fattest"
	"github.com/vdisk-dev/vdisk/fsd/fat/internal/ondisk"
	"github.com/vdisk-dev/vdisk/iomgr"
)

func TestParseMkfsFlags(t *testing.T) {
	m, rest, err := ParseMkfsFlags([]string{"-F32", "-n", "MY BOOT", "-vI", "-s", "8", "-S", "0x400", "dev", "-R", "010",
		"--codepage=850", "-i", "DEADBEEF", "--invariant", "-g", "64/32", "-f1", "--", "-x"})
	if err != nil {
		t.Fatal(err)
	}
	o := m.Resolve(512)
	if o.FATType != 32 || o.Label != "MY BOOT" || m.Verbose != 1 || o.SectorSize != 1024 || o.ClusterSize != 8*1024 ||
		o.ReservedSectors != 8 || o.CodePage != ondisk.CodePage850 || !o.HasVolumeID || o.VolumeID != InvariantVolumeID ||
		o.Heads != 64 || o.SectorsPerTrack != 32 || o.NumFATs != 1 || !m.Invariant || !o.Time.Equal(InvariantTime) {
		t.Errorf("parsed %+v (flags %+v)", o, m)
	}
	if strings.Join(rest, " ") != "dev -x" {
		t.Errorf("arguments %q", rest)
	}
	if !m.Set["F"] || m.Set["r"] {
		t.Errorf("Set %v", m.Set)
	}
	// -s is in the volume's sectors when -S is not given.
	m, _, _ = ParseMkfsFlags([]string{"-s", "2"})
	if got := m.Resolve(4096).ClusterSize; got != 8192 {
		t.Errorf("-s 2 on 4 KiB sectors: cluster %d", got)
	}
	// The volume ID is -i's when it comes after --invariant, as in mkfs.fat.
	m, _, _ = ParseMkfsFlags([]string{"--invariant", "-i", "0000abcd"})
	if m.Options.VolumeID != 0xabcd {
		t.Errorf("-i after --invariant: %#x", m.Options.VolumeID)
	}
	for _, c := range []struct{ args, want string }{
		{"-F 31", `-F "31": want 12, 16 or 32`},
		{"-F", "-F needs a value"},
		{"-s 3", `-s "3": want a power of two`},
		{"-s 256", `-s "256": want a power of two`},
		{"-i xyz", `-i "xyz": want a hexadecimal number`},
		{"-i 123456789", `-i "123456789"`},
		{"-f 3", `-f "3": want 1 or 2 FATs`},
		{"-g 16", `-g "16": want HEADS/SECTORS_PER_TRACK`},
		{"-a", "-a is not supported: vdisk always aligns"},
		{"-c", "-c is not supported"},
		{"-C", "-C is not supported: vdisk formats a volume"},
		{"--mbr", "--mbr is not supported"},
		{"--mbr=y", "--mbr is not supported"},
		{"--offset=63", "--offset is not supported"},
		{"--codepage=1252", "knows code pages 437 and 850"},
		{"--frobnicate", "unknown option --frobnicate"},
		{"-x", "-x is not supported"},
	} {
		_, _, err := ParseMkfsFlags(strings.Fields(c.args))
		if !errors.Is(err, ErrMkfsFlag) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseMkfsFlags(%s) = %v, want ErrMkfsFlag with %q", c.args, err, c.want)
		}
	}
}

// TestMkfsFlagsMatchMkfs gives the same command lines to mkfs.fat and, read
// by ParseMkfsFlags, to Format: the volumes must be the same byte for byte
// (but for what fmDiffers lists), --invariant fixing the serial and time.
func TestMkfsFlagsMatchMkfs(t *testing.T) {
	fattest.Need(t, "mkfs.fat")
	for _, c := range []struct {
		size int64
		args string
	}{
		{4095 * fmKiB, "-n vfat-test"},
		{16 * fmMiB, "-F 16 -n IMXBOOT"},
		{64 * fmMiB, "-F 32 -s 1 -n BOOT"},
		{256 * fmMiB, "-S 4096 -F 16"},
		{40 * fmMiB, "-s 4 -f 1 -r 1024 -R 8"},
		{300 * fmMiB, "-F32 -b 3 -R 12 -h 2048 -i 0xC0FFEE"},
		{8 * fmMiB, "-M 0xF0 -g 2/18 -n FLOPPYISH"},
		{100 * fmMiB, "--codepage=850 -n CP850"},
	} {
		t.Run(fmt.Sprintf("%s %s", fmtSize(c.size), c.args), func(t *testing.T) {
			args := strings.Fields(c.args)
			m, rest, err := ParseMkfsFlags(append([]string{"--invariant"}, args...))
			if err != nil || len(rest) != 0 {
				t.Fatalf("ParseMkfsFlags: %v, %q", err, rest)
			}
			dir := t.TempDir()
			mine, res, err := fmFormatFile(t, dir, c.size, m.Resolve(512))
			if err != nil {
				t.Fatal(err)
			}
			theirs, out, ok, err := fmMkfs(dir, c.size, args...)
			if err != nil || !ok {
				t.Fatalf("mkfs.fat: %v\n%s", err, out)
			}
			fmCompareMetadata(t, mine, theirs, res)
		})
	}
}

// TestDirEntries checks the entries a name takes against the driver: a
// fixed 224-entry root directory holds 224/DirEntries(name) files of names
// like it.
func TestDirEntries(t *testing.T) {
	for _, c := range []struct {
		pattern string // with %03d
		want    int
	}{
		{"F%03d.TXT", 1}, {"f%03d.txt", 1}, {"Config%03d.txt", 2}, {"k%03d.img", 1}, {"bcm2711-rpi-4-b-%03d.dtb", 3},
		{"a file with a long name, number %03d.dat", 4}, {"日本語%03d.txt", 2}, {"a.b.%03d", 2},
		{"a file with a much, much longer name than that, number %03d.dat", 6},
	} {
		if got := DirEntries(fmt.Sprintf(c.pattern, 7)); got != c.want {
			t.Errorf("DirEntries(%q) = %d, want %d", fmt.Sprintf(c.pattern, 7), got, c.want)
		}
		x := fxNew(t, fxLayouts[0]) // a floppy: 224 root entries
		n := 0
		for ; n < 300; n++ {
			fo, _, err := x.open(`\`+fmt.Sprintf(c.pattern, n), fxRW, iomgr.FileCreate, 0)
			if errors.Is(err, iomgr.StatusCannotMake) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			fxClose(fo)
		}
		if want := 224 / c.want; n != want {
			t.Errorf("%q: %d files fit in a 224-entry root; DirEntries says %d entries each, so %d", c.pattern, n, c.want, want)
		}
		x.close()
	}
}
