package create

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/format"
	"github.com/vdisk-dev/vdisk/fsd/fat"
	"github.com/vdisk-dev/vdisk/partition"
)

// Options describe a new image for Image.
type Options struct {
	// Size is the image size in bytes.
	Size int64
	// Table is the partition table kind.
	Table partition.Kind
	// SectorSize is the logical sector size: 512 (default) or 4096.
	SectorSize int
	// Parts are the partitions, in order.
	Parts []partition.Spec
	// Overwrite allows replacing an existing file.
	Overwrite bool
	// NoFormat leaves FAT-typed partitions unformatted.
	NoFormat bool
	// FormatNone formats a disk without a partition table (a superfloppy)
	// with this type: fat12, fat16, fat32 or esp; "" leaves it unformatted.
	FormatNone string
	// Label is the volume label of a formatted superfloppy.
	Label string
	// FAT configures the FAT driver the partitions are formatted through
	// (a fixed clock for reproducible images).
	FAT fat.Options
	// Format are extra options for the partitions Image formats
	// (volume id, time: for reproducible images); type and label come from
	// the partition's spec.
	Format fat.FormatOptions
	// Seeded, for a reproducible image, gives the identities: the table's
	// (partition.Options.Seeded) and each formatted volume's serial, the
	// Uint32 of "volume N" (0 for a disk without a table), unless
	// Format.HasVolumeID gives one.
	Seeded *partition.Seeded
	// ESPFATType is the FAT type of esp partitions: 32 when zero, as UEFI
	// asks of a fixed disk's EFI system partition; 12 or 16 make a small
	// ESP, as UEFI allows on removable media. An ESP too small for FAT32
	// without it is an error (ErrESPTooSmall), never silently FAT16.
	ESPFATType int
}

// ErrESPTooSmall means an esp partition is too small for FAT32 and no other
// FAT type was asked for (Options.ESPFATType).
var ErrESPTooSmall = errors.New("too small for a FAT32 EFI system partition")

// espTooSmall is the format error of an ESP too small for FAT32: it reads
// as the format's own error and matches ErrESPTooSmall too.
type espTooSmall struct{ err error }

func (e espTooSmall) Error() string   { return e.err.Error() }
func (e espTooSmall) Unwrap() []error { return []error{e.err, ErrESPTooSmall} }

// ParsePartSpec parses the CLI's --part SIZE:TYPE[:LABEL]; SIZE is a
// go-humanize size or `rest`.
func ParsePartSpec(s string) (partition.Spec, error) {
	fields := strings.SplitN(s, ":", 3)
	if len(fields) < 2 {
		return partition.Spec{}, fmt.Errorf("partition %q: want SIZE:TYPE[:LABEL], e.g. 64MiB:esp:EFI or rest:fat32", s)
	}
	spec := partition.Spec{Type: strings.ToLower(fields[1])}
	if len(fields) == 3 {
		spec.Label = fields[2]
	}
	if strings.EqualFold(fields[0], "rest") {
		spec.Size = partition.Rest
	} else {
		n, err := humanize.ParseBytes(fields[0])
		if err != nil || n == 0 {
			return partition.Spec{}, fmt.Errorf("partition %q: size %q is not a size like 64MiB, 1.5GB or 4096, or rest", s, fields[0])
		}
		spec.Size = int64(n)
	}
	if _, err := partition.TypeFor(partition.GPT, spec.Type); err != nil {
		return partition.Spec{}, fmt.Errorf("partition %q: type %q is not one of fat12, fat16, fat32, esp, linux, raw", s, fields[1])
	}
	return spec, nil
}

// Image creates a sparse image file with the partition table of opts
// and formats its FAT-typed partitions (fat12, fat16, fat32, and esp as
// FAT32 or opts.ESPFATType) with their label as volume label. It returns the
// table written.
func Image(path string, opts Options) (*partition.Table, error) {
	return makeImage(path, opts, target{
		exists: func() bool { _, err := os.Lstat(path); return err == nil },
		create: func(size int64) (disk.Store, error) { return disk.CreateFile(path, size) },
		remove: func() { os.Remove(path) },
		add:    func(sys *vdisk.System) (*vdisk.Image, error) { return sys.AddImage(path, false) },
	})
}

// RBD creates a Ceph RBD image (disk.CreateRBD: thin, with the
// exclusive-lock feature) with the partition table of opts and formats its
// FAT-typed partitions, as Image does for a file. Overwrite removes an
// existing image first (refused by Ceph if it has snapshots or is open).
func RBD(spec disk.RBDSpec, ceph disk.RBDOptions, opts Options) (*partition.Table, error) {
	ceph.ReadOnly = false
	return makeImage(spec.String(), opts, target{
		exists: func() bool { return false }, // CreateRBD refuses an existing image
		create: func(size int64) (disk.Store, error) {
			if opts.Overwrite {
				if err := disk.RemoveRBD(spec, ceph); err != nil && !errors.Is(err, os.ErrNotExist) {
					return nil, err
				}
			}
			if err := disk.CreateRBD(spec, size, ceph); err != nil {
				if errors.Is(err, os.ErrExist) {
					return nil, fmt.Errorf("the image exists (--force replaces it; rbd rm removes it)")
				}
				// makeImage says "create rbd:…" already.
				return nil, trimmed{strings.TrimPrefix(err.Error(), "create "+spec.String()+": "), err}
			}
			st, err := disk.OpenRBD(spec, ceph)
			if err != nil {
				disk.RemoveRBD(spec, ceph)
				return nil, err
			}
			return st, nil
		},
		remove: func() { disk.RemoveRBD(spec, ceph) },
		add:    func(sys *vdisk.System) (*vdisk.Image, error) { return sys.AddRBD(spec, ceph) },
	})
}

// trimmed is an error with a shorter message.
type trimmed struct {
	msg string
	err error
}

func (e trimmed) Error() string { return e.msg }
func (e trimmed) Unwrap() error { return e.err }

// target is where makeImage makes an image: a file or an RBD image.
type target struct {
	exists func() bool
	create func(size int64) (disk.Store, error)
	// remove undoes create after a failure.
	remove func()
	// add adds the new image, writable, to a System.
	add func(sys *vdisk.System) (*vdisk.Image, error)
}

// makeImage makes the image named name at tg as opts say.
func makeImage(name string, opts Options, tg target) (*partition.Table, error) {
	if opts.SectorSize == 0 {
		opts.SectorSize = 512
	}
	if opts.Size <= 0 {
		return nil, fmt.Errorf("create %s: size must be positive", name)
	}
	if opts.Size%int64(opts.SectorSize) != 0 {
		return nil, fmt.Errorf("create %s: size %d is not a multiple of the %d-byte sector", name, opts.Size, opts.SectorSize)
	}
	t, err := partition.New(opts.Table, opts.Size, opts.SectorSize, opts.Parts, &partition.Options{Seeded: opts.Seeded})
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	switch opts.ESPFATType {
	case 0, 12, 16, 32:
	default:
		return nil, fmt.Errorf("create %s: ESP FAT type %d: want 12, 16 or 32", name, opts.ESPFATType)
	}
	if !opts.Overwrite && tg.exists() {
		return nil, fmt.Errorf("create %s: file exists (remove it first)", name)
	}
	store, err := tg.create(opts.Size)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	werr := t.Write(store)
	serr := store.Sync()
	cerr := store.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		tg.remove()
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	if !opts.NoFormat {
		if err := formatParts(tg, t, opts); err != nil {
			if !errors.Is(err, disk.ErrLocked) && !errors.Is(err, disk.ErrRBDLocked) { // someone else's now
				tg.remove()
			}
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
	}
	return t, nil
}

// VolumeID is the serial number a reproducible image's volume n (0 for a
// disk without a table) gets from seeded, the identities of its image:
// create and format give a volume the same one.
func VolumeID(seeded *partition.Seeded, n int) uint32 {
	return seeded.Uint32(fmt.Sprintf("volume %d", n))
}

// fatTypes maps the partition types Image formats to a FAT type (esp's
// unless Options.ESPFATType says otherwise).
var fatTypes = map[string]int{"fat12": 12, "fat16": 16, "fat32": 32, "esp": 32}

// fatType is the FAT type a partition type is formatted with.
func (o Options) fatType(partType string) int {
	if partType == "esp" && o.ESPFATType != 0 {
		return o.ESPFATType
	}
	return fatTypes[partType]
}

// formatParts formats the FAT-typed partitions of a new image.
func formatParts(tg target, t *partition.Table, opts Options) error {
	var todo []int
	for i, spec := range opts.Parts {
		if _, ok := fatTypes[spec.Type]; ok {
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 && !(t.Kind == partition.None && opts.FormatNone != "") {
		return nil
	}
	sys := vdisk.New(vdisk.Options{Requestor: "vdisk create", FAT: opts.FAT})
	img, err := tg.add(sys)
	if err != nil {
		sys.Close()
		return err
	}
	// A serial number comes from the format time; partitions formatted in
	// one go get times 10 ms apart (the serial's finest step), so that no
	// two of them share one, deterministically when opts.Format.Time is set.
	stamp := opts.Format.Time
	if stamp.IsZero() {
		stamp = time.Now()
	}
	formatted := 0
	formatOne := func(n int, partType, label, what string) error {
		fo := opts.Format
		fo.FATType, fo.Label = opts.fatType(partType), label
		fo.Time = stamp.Add(time.Duration(formatted) * 10 * time.Millisecond)
		formatted++
		if opts.Seeded != nil && !fo.HasVolumeID {
			fo.VolumeID, fo.HasVolumeID = VolumeID(opts.Seeded, n), true
		}
		v, err := sys.Volume(img, n)
		if err == nil {
			_, err = format.Volume(v, fo)
		}
		if err != nil && partType == "esp" && fo.FATType == 32 && errors.Is(err, fat.ErrVolumeTooSmall) {
			return fmt.Errorf("format %s: %w", what, espTooSmall{err})
		}
		if err != nil {
			return fmt.Errorf("format %s: %w", what, err)
		}
		return nil
	}
	var errs []error
	if t.Kind == partition.None {
		errs = append(errs, formatOne(0, opts.FormatNone, opts.Label, "the disk"))
	}
	for _, i := range todo {
		spec := opts.Parts[i]
		errs = append(errs, formatOne(i+1, spec.Type, spec.Label,
			fmt.Sprintf("partition %d (%s)", i+1, spec.Type)))
	}
	errs = append(errs, sys.Close())
	return errors.Join(errs...)
}
