package fat

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vdisk-dev/vdisk/fsd/fat/internal/ondisk"
)

// ErrMkfsFlag is wrapped by every error of ParseMkfsFlags: an option of
// mkfs.fat's command line that is malformed, or that Format does not offer.
var ErrMkfsFlag = errors.New("fat: mkfs.fat option")

// MkfsFlags is a mkfs.fat command line read into Format's terms, for
// callers that take mkfs.fat's options: `vdisk format`, and the extraargs
// of genimage's vfat images, which genimage hands to mkfs.fat.
type MkfsFlags struct {
	// Options are what the flags set, but the cluster size.
	Options FormatOptions
	// SectorsPerCluster is -s: the cluster size in sectors, which Resolve
	// turns into bytes once the sector size is known.
	SectorsPerCluster int
	// Invariant is --invariant: mkfs.fat's fixed volume ID and time
	// (Options has them).
	Invariant bool
	// Verbose counts -v.
	Verbose int
	// Set names the options given (by their short form, or the long one's
	// name), so that a caller can tell "-F 32" from the default.
	Set map[string]bool
}

// InvariantTime and InvariantVolumeID are what mkfs.fat --invariant writes:
// the label entry's time (in UTC) and the serial number.
var (
	InvariantTime     = time.Date(2015, 3, 14, 9, 26, 53, 0, time.UTC)
	InvariantVolumeID = uint32(0x1234ABCD)
)

// mkfsValued are mkfs.fat's short options that take a value.
const mkfsValued = "bDfFghilmMnrRsS"

// ParseMkfsFlags reads mkfs.fat's options (as getopt does: "-F 32",
// "-F32", "-vI", "--codepage=850", "--codepage 850", "--" to end them) and
// returns the arguments that are not options (mkfs.fat's device and block
// count). Numbers are C's: 0x for hex, a leading 0 for octal; -i is hex.
//
// Taken: -F -n -i -s -S -R -r -f -h -M -b -g, --codepage (437 or 850),
// --invariant, and -v and -I, which change nothing here (vdisk formats a
// volume, never a whole disk). Refused, with ErrMkfsFlag, since Format does
// not do what they ask: -a, -A/--variant, -c, -l, -C, -D, -m, --mbr and
// --offset.
func ParseMkfsFlags(args []string) (*MkfsFlags, []string, error) {
	m := &MkfsFlags{Set: map[string]bool{}}
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return m, append(rest, args[i+1:]...), nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			switch name {
			case "invariant", "help":
				if hasVal {
					return nil, nil, mkfsErr("--%s takes no value", name)
				}
			case "codepage", "variant", "offset":
				if !hasVal {
					if i+1 >= len(args) {
						return nil, nil, mkfsErr("--%s needs a value", name)
					}
					i++
					val = args[i]
				}
			case "mbr":
			default:
				return nil, nil, mkfsErr("unknown option --%s", name)
			}
			if err := m.set(name, val); err != nil {
				return nil, nil, err
			}
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				c := a[j : j+1]
				if !strings.Contains(mkfsValued, c) {
					if err := m.set(c, ""); err != nil {
						return nil, nil, err
					}
					continue
				}
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return nil, nil, mkfsErr("-%s needs a value", c)
					}
					i++
					val = args[i]
				}
				if err := m.set(c, val); err != nil {
					return nil, nil, err
				}
				break
			}
		default:
			rest = append(rest, a)
		}
	}
	return m, rest, nil
}

func mkfsErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMkfsFlag, fmt.Sprintf(format, args...))
}

// cNumber reads a number as strtol with base 0 does.
func cNumber(s string) (int64, error) {
	body, base := s, 10
	switch {
	case len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		body, base = s[2:], 16
	case len(s) > 1 && s[0] == '0':
		body, base = s[1:], 8
	}
	return strconv.ParseInt(body, base, 64)
}

func (m *MkfsFlags) set(name, val string) error {
	o := &m.Options
	num := func(what string, lo, hi int64) (int, error) {
		n, err := cNumber(val)
		if err != nil || n < lo || n > hi {
			return 0, mkfsErr("-%s %q: %s", name, val, what)
		}
		return int(n), nil
	}
	var err error
	switch name {
	case "F":
		if o.FATType, err = num("want 12, 16 or 32", 12, 32); err == nil && o.FATType != 12 && o.FATType != 16 && o.FATType != 32 {
			err = mkfsErr("-F %q: want 12, 16 or 32", val)
		}
	case "n":
		o.Label = val
	case "i":
		hex := strings.TrimPrefix(strings.TrimPrefix(val, "0x"), "0X") // strtoll with base 16 takes it
		id, perr := strconv.ParseUint(hex, 16, 32)
		if perr != nil {
			return mkfsErr("-i %q: want a hexadecimal number of up to 8 digits", val)
		}
		o.VolumeID, o.HasVolumeID = uint32(id), true
	case "s":
		if m.SectorsPerCluster, err = num("want a power of two from 1 to 128", 1, 128); err == nil && m.SectorsPerCluster&(m.SectorsPerCluster-1) != 0 {
			err = mkfsErr("-s %q: want a power of two from 1 to 128", val)
		}
	case "S":
		o.SectorSize, err = num("want 512, 1024, 2048 or 4096", 512, 4096)
	case "R":
		o.ReservedSectors, err = num("want 1 to 65535 reserved sectors", 1, 0xFFFF)
	case "r":
		o.RootEntries, err = num("want 1 to 65535 root directory entries", 1, 0xFFFF)
	case "f":
		o.NumFATs, err = num("want 1 or 2 FATs", 1, 2)
	case "h":
		var h int
		if h, err = num("want 0 to 4294967295 hidden sectors", 0, 0xFFFFFFFF); err == nil {
			o.HiddenSectors = uint32(h)
		}
	case "M":
		var media int
		if media, err = num("want a media byte, 0xF0 or 0xF8 to 0xFF", 0, 0xFF); err == nil {
			o.Media = byte(media)
		}
	case "b":
		o.BackupBootSector, err = num("want a sector of the reserved area", 2, 0xFFFE)
	case "g":
		heads, spt, ok := strings.Cut(val, "/")
		h, herr := cNumber(heads)
		s, serr := cNumber(spt)
		if !ok || herr != nil || serr != nil || h < 1 || h > 0xFFFF || s < 1 || s > 0xFFFF {
			return mkfsErr("-g %q: want HEADS/SECTORS_PER_TRACK", val)
		}
		o.Heads, o.SectorsPerTrack = int(h), int(s)
	case "codepage":
		switch val {
		case "437":
			o.CodePage = ondisk.CodePage437
		case "850":
			o.CodePage = ondisk.CodePage850
		default:
			return mkfsErr("--codepage=%s: vdisk knows code pages 437 and 850", val)
		}
	case "invariant":
		m.Invariant = true
		o.Time = InvariantTime
		o.VolumeID, o.HasVolumeID = InvariantVolumeID, true
	case "v":
		m.Verbose++
	case "I":
		// mkfs.fat's -I lets it format a whole disk that has partitions;
		// vdisk formats one volume, so there is nothing to ignore.
	case "help":
		return mkfsErr("--help: see vdisk format --help")
	default:
		return mkfsErr("%s is not supported: %s", flagName(name), mkfsRefused[name])
	}
	if err != nil {
		return err
	}
	m.Set[name] = true
	return nil
}

// mkfsRefused says why vdisk does not take an option of mkfs.fat's.
var mkfsRefused = map[string]string{
	"a":       "vdisk always aligns the data area as mkfs.fat does by default",
	"A":       "vdisk makes no Atari variant",
	"variant": "vdisk makes no Atari variant",
	"c":       "vdisk checks for no bad blocks (an image file has none)",
	"l":       "vdisk reads no bad block list (an image file has no bad blocks)",
	"C":       "vdisk formats a volume; make the image with vdisk create",
	"D":       "the BIOS drive number follows the media byte (0x80 for 0xF8, else 0)",
	"m":       "vdisk writes the standard boot message",
	"mbr":     "vdisk formats a volume; give the image a partition table with vdisk create",
	"offset":  "vdisk formats a volume; address a partition as IMAGE@N",
}

func flagName(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// Resolve returns the format options with -s turned into a cluster size,
// for a volume whose sector size is sectorSize (used when -S was not
// given; 0 means 512).
func (m *MkfsFlags) Resolve(sectorSize int) FormatOptions {
	o := m.Options
	if m.SectorsPerCluster > 0 {
		ss := o.SectorSize
		if ss == 0 {
			ss = max(sectorSize, 512)
		}
		o.ClusterSize = m.SectorsPerCluster * ss
	}
	return o
}

// DirEntries is the number of 32-byte directory entries the driver gives a
// file or directory called name: one, plus its long-name entries unless
// the name is a valid 8.3 name (each part all upper or all lower case).
// Tools that size a volume for a tree count with it.
func DirEntries(name string) int {
	if _, _, ok := ondisk.ParseShortName(name); ok {
		return 1
	}
	return 1 + ondisk.LongNameSlots(name)
}
