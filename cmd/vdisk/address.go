package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/vdisk-dev/vdisk/disk"
)

// Address is a parsed CLI operand: a host path, or a place on a volume of an
// image (`disk.img@1:/EFI/BOOT`, `disk.img:/x`, `disk.img@2`,
// `rbd:pool/disk@2:/x`). Operands are parsed here, against the host's files
// (an IMAGE file must exist), and nowhere else: the library below takes an
// image and a partition number.
type Address struct {
	// Image is the image file, or an RBD image as disk.RBDSpec.String
	// writes it (`rbd:POOL/IMAGE[@SNAP]`); "" for a host path.
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

// parseAddress parses a CLI operand. `IMAGE[@N]:/path` is a path on a
// volume when IMAGE exists; `IMAGE[@N]` alone is a volume when volumeOnly is
// set (commands such as label and format); anything else is a host path.
// An operand starting with "rbd:" always names an RBD image
// (parseRBDAddress).
func parseAddress(s string, volumeOnly bool) (Address, error) {
	if disk.IsRBD(s) {
		return parseRBDAddress(s)
	}
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

// parseRBDAddress parses `rbd:POOL[/NAMESPACE]/IMAGE[@SNAP][@N][:/path]`:
// the `:/path` is split off first, then a last `@N` of digits only is the
// partition number, and the rest is the image (or snapshot) as the rbd
// command names it. So a snapshot named with digits only is named with a
// partition after it (`rbd:pool/disk@7@1`). Nothing is looked up: whether
// the image exists shows when it is opened. Without `:/path` the address
// has HasPath unset: the image, or its partition N.
func parseRBDAddress(s string) (Address, error) {
	img, path, hasPath := s, ".", false
	// After "rbd:", whose colon a '/' may follow in a malformed operand.
	if i := strings.Index(s[len(disk.RBDPrefix):], ":/"); i >= 0 {
		i += len(disk.RBDPrefix)
		img, path, hasPath = s[:i], cleanVolumePath(s[i+1:]), true
	}
	n := 0
	if i := strings.LastIndexByte(img, '@'); i >= 0 && allDigits(img[i+1:]) {
		var err error
		if n, err = strconv.Atoi(img[i+1:]); err != nil || n < 1 || strconv.Itoa(n) != img[i+1:] {
			return Address{}, usagef("%s: %q is not a partition number (1, 2, ...)", s, img[i+1:])
		}
		img = img[:i]
	}
	spec, err := disk.ParseRBD(img)
	if err != nil {
		return Address{}, usageError{err}
	}
	return Address{Image: spec.String(), Partition: n, Path: path, HasPath: hasPath}, nil
}

// allDigits reports whether s is a non-empty run of ASCII digits.
func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// notVolumeReason says why parseAddress took s for a host path rather than
// IMAGE[@N]:/path, for a command that wants the latter.
func notVolumeReason(s string) string {
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

// volumeOnly parses an operand that must name a volume (IMAGE or IMAGE@N)
// and no path in it: label and format act on the whole volume, and a path
// would suggest otherwise.
func volumeOnly(cmd, s string) (Address, error) {
	a, err := parseAddress(s, true)
	if err != nil {
		return a, err
	}
	if a.HasPath {
		vol := Address{Image: a.Image, Partition: a.Partition}
		return a, usagef("%s: %s names a path; %s acts on the whole volume, %s", cmd, s, cmd, vol)
	}
	return a, nil
}

// volumePath parses an operand that must be VOLUME:/path.
func volumePath(cmd, s string) (Address, error) {
	a, err := parseAddress(s, false)
	if err != nil {
		return a, err
	}
	if !a.IsHost() && !a.HasPath {
		return a, usagef("%s: %s is not IMAGE[@N]:/path: there is no :/path after the image (its root directory is %s:/)", cmd, s, s)
	}
	if a.IsHost() {
		if err := missingImage(cmd, s); err != nil {
			return a, err
		}
		return a, usagef("%s: %s is not IMAGE[@N]:/path: %s", cmd, s, notVolumeReason(s))
	}
	return a, nil
}

// missingImage is the error of an operand IMAGE[@N]:/path whose IMAGE is
// not an image file (missing, or a directory): the operand has the shape
// the command wants, so that is a failure (exit 1), not a usage error. It
// returns nil for an operand of another shape.
func missingImage(cmd, s string) error {
	i := strings.Index(s, ":/")
	if i <= 0 {
		return nil
	}
	img := s[:i]
	if j := strings.LastIndexByte(img, '@'); j > 0 {
		if n, err := strconv.Atoi(img[j+1:]); err == nil && n > 0 && strconv.Itoa(n) == img[j+1:] {
			img = img[:j]
		} else if _, err := os.Stat(img[:j]); err == nil {
			return nil // IMAGE exists, @N is malformed: usage
		}
	}
	fi, err := os.Stat(img)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s %s: no such image file %s", cmd, s, img)
	case err == nil && fi.IsDir():
		return fmt.Errorf("%s %s: %s is a directory, not an image file", cmd, s, img)
	}
	return nil
}
