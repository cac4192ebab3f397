package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vdisk-dev/vdisk/create"
	"github.com/vdisk-dev/vdisk/partition"
)

// TestVolumeAtNamesWhatTheImageHolds: an address that names no volume is
// refused (session.volume) with the operand as typed and what the image
// does hold, never the export names the library uses inside.
func TestVolumeAtNamesWhatTheImageHolds(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	two := filepath.Join(dir, "two.img")
	if _, err := create.Image(two, create.Options{Size: 8 << 20, Table: partition.GPT, NoFormat: true,
		Parts: []partition.Spec{{Size: 2 << 20, Type: "raw"}, {Size: partition.Rest, Type: "raw"}}}); err != nil {
		t.Fatal(err)
	}
	bare := filepath.Join(dir, "bare.img")
	if _, err := create.Image(bare, create.Options{Size: 1 << 20, Table: partition.None}); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.img")
	if _, err := create.Image(empty, create.Options{Size: 1 << 20, Table: partition.MBR}); err != nil {
		t.Fatal(err)
	}
	s := newSession("test", false, true)
	defer s.close(nil)
	for _, p := range []string{two, bare, empty} {
		if err := s.add(Address{Image: p}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		operand string
		want    string // "" when the volume opens
	}{
		{two + "@1:/", ""},
		{two + "@2:/x", ""},
		{two + "@3:/", two + "@3: no partition 3 (" + two + " has 2 partitions)"},
		{two + ":/", two + " has 2 partitions: name one, e.g. " + two + "@1:/"},
		{bare + ":/", ""},
		{bare + "@1:/a", bare + "@1: no partition 1 (" + bare + " has no partition table: name the whole disk, " + bare + ":/a)"},
		// An empty table leaves the whole disk as the volume.
		{empty + ":/", ""},
		{empty + "@1:/", empty + "@1: no partition 1 (" + empty + " has an empty mbr partition table: name the whole disk, " + empty + ":/)"},
	} {
		a, err := parseAddress(c.operand, false)
		if err != nil || a.IsHost() {
			t.Fatalf("ParseAddress(%q) = %+v, %v", c.operand, a, err)
		}
		_, err = s.volume(a)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("VolumeAt(%s): %v", c.operand, err)
		case c.want != "" && (err == nil || err.Error() != c.want):
			t.Errorf("VolumeAt(%s) = %v, want %q", c.operand, err, c.want)
		}
	}
}

// TestNotVolumeReason: the reason a command gives when an operand it wants
// as IMAGE[@N]:/path was taken for a host path.
func TestNotVolumeReason(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ operand, want string }{
		{img, "there is no :/path after the image (its root directory is " + img + ":/)"},
		{img + "@2", "there is no :/path after the image (its root directory is " + img + "@2:/)"},
		{"plain.txt", "there is no :/ after an image file name"},
		{img + "@x:/a", `"x" is not a partition number (1, 2, ...)`},
		{dir + ":/a", dir + " is a directory, not an image file"},
		{filepath.Join(dir, "nosuch.img") + ":/a", "no image file " + filepath.Join(dir, "nosuch.img")},
		{filepath.Join(dir, "nosuch.img") + "@1:/a", "no image file " + filepath.Join(dir, "nosuch.img")},
	} {
		if got := notVolumeReason(c.operand); got != c.want {
			t.Errorf("NotVolumeReason(%q) = %q, want %q", c.operand, got, c.want)
		}
	}
	// An operand ParseAddress accepts as a volume path has no such reason
	// to give; the two must agree on which is which.
	if a, err := parseAddress(img+":/x", false); err != nil || a.IsHost() || !strings.HasSuffix(a.String(), ":/x") {
		t.Fatalf("ParseAddress(%s:/x) = %+v, %v", img, a, err)
	}
}

// An operand starting with rbd: names an RBD image, whatever files exist:
// `:/path` is split off first, then a last all-digit `@N` is the partition,
// and the rest is the image or snapshot, as the rbd command spells it.
func TestParseRBDAddress(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		operand string
		want    Address
		err     string // a part of the error, "" when it parses
	}{
		{"rbd:pool/disk", Address{Image: "rbd:pool/disk", Path: "."}, ""},
		{"rbd:pool/disk@2", Address{Image: "rbd:pool/disk", Partition: 2, Path: "."}, ""},
		{"rbd:pool/disk@2:/EFI//BOOT/", Address{Image: "rbd:pool/disk", Partition: 2, Path: "EFI/BOOT", HasPath: true}, ""},
		{"rbd:pool/disk:/", Address{Image: "rbd:pool/disk", Path: ".", HasPath: true}, ""},
		{"rbd:pool/disk@v1", Address{Image: "rbd:pool/disk@v1", Path: "."}, ""},
		{"rbd:pool/disk@v1@1:/a", Address{Image: "rbd:pool/disk@v1", Partition: 1, Path: "a", HasPath: true}, ""},
		// A snapshot named with digits is named with a partition after it.
		{"rbd:pool/disk@7@1", Address{Image: "rbd:pool/disk@7", Partition: 1, Path: "."}, ""},
		{"rbd:pool/ns/disk@1", Address{Image: "rbd:pool/ns/disk", Partition: 1, Path: "."}, ""},
		{"rbd:pool/disk@0", Address{}, `"0" is not a partition number`},
		{"rbd:pool/disk@01:/", Address{}, `"01" is not a partition number`},
		{"rbd:pool/disk@99999999999999999999", Address{}, "is not a partition number"},
		{"rbd:pool", Address{}, "not a valid RBD image name"},
		{"rbd:pool/disk@a@b@1", Address{}, "more than one '@'"},
		{"rbd:/disk:/", Address{}, "pool name is empty"},
	} {
		for _, volumeOnly := range []bool{false, true} {
			got, err := parseAddress(c.operand, volumeOnly)
			switch {
			case c.err == "" && err != nil:
				t.Errorf("parseAddress(%q): %v", c.operand, err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Errorf("parseAddress(%q) = %+v, %v; want an error with %q", c.operand, got, err, c.err)
			case c.err != "" && !errors.As(err, new(usageError)):
				t.Errorf("parseAddress(%q): %v is not a usage error", c.operand, err)
			case c.err == "" && got != c.want:
				t.Errorf("parseAddress(%q) = %+v, want %+v", c.operand, got, c.want)
			case c.err == "" && got.String() != strings.Replace(strings.Replace(c.operand, "//", "/", -1), "BOOT/", "BOOT", 1):
				t.Errorf("parseAddress(%q).String() = %q", c.operand, got.String())
			}
		}
	}
}
