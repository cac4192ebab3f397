package fat

import "github.com/vdisk-dev/vdisk/fsd/fat/internal/ondisk"

// The on-disk rules a caller checks before it asks the driver, so that it
// can tell its user what is wrong in its own words: the names and sizes FAT
// can store. They are the on-disk layer's (internal/ondisk), exported here
// because nothing outside fsd/fat may import that package.

// ErrInvalidName is wrapped by every error about a name FAT cannot store:
// CleanLongName's, EncodeVolumeLabel's and Format's for a label.
var ErrInvalidName = ondisk.ErrInvalidName

const (
	// MaxDirEntries is the most 32-byte entries a directory may have; a
	// long name takes one more for every 13 characters.
	MaxDirEntries = ondisk.MaxDirEntries
	// MaxFileSize is the largest file: the size field is 32 bits.
	MaxFileSize = ondisk.MaxFileSize
)

// CleanLongName strips trailing dots and spaces, as Windows does with every
// name it is given, and checks that what is left can be stored as a long
// name: not empty, "." or "..", valid UTF-8, none of "*/:<>?\| or control
// characters, at most 255 UTF-16 units. Errors wrap ErrInvalidName.
func CleanLongName(name string) (string, error) { return ondisk.CleanLongName(name) }

// EncodeVolumeLabel converts a label to the 11 bytes stored in the boot
// sector and the root directory's label entry, encoded with cp (nil: the
// code page the driver reads labels with), its case kept, padded with
// spaces. A label longer than 11 bytes, with a leading space, a control
// character or any of *?/\|.,;:+=[]<>" is refused with ErrInvalidName.
func EncodeVolumeLabel(label string, cp *ondisk.CodePage) ([11]byte, error) {
	return ondisk.EncodeVolumeLabel(label, cp)
}
