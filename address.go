package vdisk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/vdisk-dev/vdisk/partition"
)

// Address is a parsed CLI operand: a host path, or a place on a volume of an
// image (`disk.img@1:/EFI/BOOT`, `disk.img:/x`, `disk.img@2`).
type Address struct {
	// Image is the image file, "" for a host path.
	Image string
	// Partition is N of IMAGE@N, 0 when not given.
	Partition int
	// Path is the slash-separated path inside the volume without its
	// leading slash ("." for the root), or the host path.
	Path string
	// HasPath is set when the operand named a path inside the volume (`:/…`).
	HasPath bool
}

// IsHost reports whether the address is a host path.
func (a Address) IsHost() bool { return a.Image == "" }

// String formats the address as the CLI writes it.
func (a Address) String() string {
	if a.IsHost() {
		return a.Path
	}
	s := a.Image
	if a.Partition > 0 {
		s += "@" + strconv.Itoa(a.Partition)
	}
	if a.HasPath {
		p := a.Path
		if p == "." {
			p = ""
		}
		s += ":/" + p
	}
	return s
}

// splitImage splits "disk.img@2" into the image path and partition number,
// if the image file exists.
func splitImage(s string) (string, int, bool) {
	if fi, err := os.Stat(s); err == nil && !fi.IsDir() {
		return s, 0, true
	}
	if i := strings.LastIndexByte(s, '@'); i > 0 {
		n, err := strconv.Atoi(s[i+1:])
		if err == nil && n > 0 && strconv.Itoa(n) == s[i+1:] {
			if fi, err := os.Stat(s[:i]); err == nil && !fi.IsDir() {
				return s[:i], n, true
			}
		}
	}
	return "", 0, false
}

// cleanVolumePath turns "/EFI//BOOT/" into "EFI/BOOT" ("." for the root).
func cleanVolumePath(p string) string {
	var parts []string
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".":
		case "..":
			if len(parts) > 0 {
				parts = parts[:len(parts)-1]
			}
		default:
			parts = append(parts, c)
		}
	}
	if len(parts) == 0 {
		return "."
	}
	return strings.Join(parts, "/")
}

// ParseAddress parses a CLI operand. `IMAGE[@N]:/path` is a path on a
// volume when IMAGE exists; `IMAGE[@N]` alone is a volume when volumeOnly is
// set (commands such as label and format); anything else is a host path.
func ParseAddress(s string, volumeOnly bool) (Address, error) {
	if i := strings.Index(s, ":/"); i > 0 {
		if img, n, ok := splitImage(s[:i]); ok {
			return Address{Image: img, Partition: n, Path: cleanVolumePath(s[i+1:]), HasPath: true}, nil
		}
	}
	if volumeOnly {
		if img, n, ok := splitImage(s); ok {
			return Address{Image: img, Partition: n, Path: "."}, nil
		}
		if i := strings.LastIndexByte(s, '@'); i > 0 {
			if _, err := os.Stat(s[:i]); err == nil {
				return Address{}, fmt.Errorf("%s: %q is not a partition number", s, s[i+1:])
			}
			s = s[:i]
		}
		if _, err := os.Stat(s); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return Address{}, fmt.Errorf("%s: no such image file", s)
			}
			return Address{}, fmt.Errorf("image %s: %w", s, err)
		}
		return Address{}, fmt.Errorf("%s is a directory, not a disk image file", s)
	}
	return Address{Path: s}, nil
}

// VolumeName returns the System volume address (`disk@N` or `disk`) of an
// image address, once the image was added under its ImageName.
func (a Address) VolumeName() string {
	if a.Partition > 0 {
		return ImageName(a.Image) + "@" + strconv.Itoa(a.Partition)
	}
	return ImageName(a.Image)
}

// plural is "1 partition" or "n partitions".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// VolumeAt opens the volume an image address names, once its image was
// added. Unlike OpenVolume, which speaks in export names, its errors speak
// in the operand the user typed and say what the image does hold:
// `disk.img@3: no partition 3 (disk.img has 2 partitions)`.
func (s *System) VolumeAt(a Address, requestor string) (*Volume, error) {
	if a.IsHost() {
		return nil, fmt.Errorf("%s is a host path, not IMAGE[@N]", a.Path)
	}
	img := s.Image(ImageName(a.Image))
	if img == nil || img.Path != a.Image {
		return nil, fmt.Errorf("%s: image not opened", a.Image)
	}
	vol := Address{Image: a.Image, Partition: a.Partition}
	n := len(img.Partitions)
	switch {
	case a.Partition > 0 && n == 0:
		what := "has no partition table"
		if img.Table.Kind != partition.None {
			what = "has an empty " + img.Table.Kind.String() + " partition table"
		}
		return nil, fmt.Errorf("%s: no partition %d (%s %s: name the whole disk, %s)",
			vol, a.Partition, a.Image, what, Address{Image: a.Image, Path: a.Path, HasPath: a.HasPath})
	case a.Partition > n:
		return nil, fmt.Errorf("%s: no partition %d (%s has %s)", vol, a.Partition, a.Image, plural(n, "partition"))
	case a.Partition == 0 && len(img.Volumes) == 0:
		return nil, fmt.Errorf("%s: no volume (its %s partition table is empty)", a.Image, img.Table.Kind)
	case a.Partition == 0 && len(img.Volumes) > 1:
		return nil, fmt.Errorf("%s has %s: name one, e.g. %s", a.Image, plural(n, "partition"),
			Address{Image: a.Image, Partition: 1, Path: a.Path, HasPath: a.HasPath})
	}
	return s.OpenVolume(a.VolumeName(), requestor)
}

// NotVolumeReason says why ParseAddress took s for a host path rather than
// IMAGE[@N]:/path, for a command that wants the latter.
func NotVolumeReason(s string) string {
	i := strings.Index(s, ":/")
	if i <= 0 {
		if _, _, ok := splitImage(s); ok {
			return "there is no :/path after the image (its root directory is " + s + ":/)"
		}
		return "there is no :/ after an image file name"
	}
	img := s[:i]
	if fi, err := os.Stat(img); err == nil && fi.IsDir() {
		return img + " is a directory, not an image file"
	}
	if j := strings.LastIndexByte(img, '@'); j > 0 {
		if fi, err := os.Stat(img[:j]); err == nil && !fi.IsDir() {
			return fmt.Sprintf("%q is not a partition number (1, 2, ...)", img[j+1:])
		}
		img = img[:j]
	}
	return "no image file " + img
}
