package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"
	"github.com/vdisk-dev/vdisk/create"
	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/fsd/fat"
	"github.com/vdisk-dev/vdisk/partition"
)

func createCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "create",
		Usage:     "create a sparse disk image with a partition table",
		ArgsUsage: "IMAGE",
		Description: `Partitions are laid out in order, 1 MiB aligned; SIZE "rest" takes what is left.
TYPE is fat12, fat16, fat32, esp, linux or raw; LABEL is the GPT partition name and, for
FAT-typed partitions, the volume label: they are formatted. An esp partition is FAT32, as
UEFI asks of a fixed disk's EFI system partition: one too small for FAT32 (about 33 MiB
with 512-byte sectors) is refused, never silently made FAT16; --esp-fat 16 (or 12) asks for
a small ESP, which UEFI names for removable media and most firmware reads.

With --table none the whole disk is one volume (a "superfloppy"); --part rest:TYPE[:LABEL]
formats it.

An operand rbd:POOL/IMAGE creates a Ceph RBD image (thin, with the exclusive-lock feature
that keeps a second writer out; --ceph-conf and --ceph-id say how to reach the cluster);
--force removes an existing one first. --clone-of rbd:POOL/GOLDEN@SNAP makes it a
copy-on-write clone of a snapshot instead (protecting the snapshot first): it reads as the
snapshot, with its size and partitions, and stores only what is written to it.

Examples:
   vdisk create disk.img --size 256MiB --table gpt --part 64MiB:esp:EFI --part rest:fat32:DATA
   vdisk create floppy.img --size 1440KiB --table none --part rest:fat12:BOOT
   vdisk create rbd:rbd/golden --size 1GiB --part 64MiB:esp:EFI --part rest:fat32:DATA
   rbd snap create rbd/golden@v1
   vdisk create rbd:rbd/runner-17 --clone-of rbd:rbd/golden@v1`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "size", Usage: "image size (64MiB, 1.5GB, 4096); required"},
			&cli.StringFlag{Name: "table", Usage: "partition table: gpt, mbr or none", Value: "gpt"},
			&cli.StringSliceFlag{Name: "part", Usage: "a partition SIZE:TYPE[:LABEL] (repeatable)"},
			&cli.IntFlag{Name: "sector-size", Usage: "logical sector size: 512 or 4096", Value: 512},
			&cli.BoolFlag{Name: "force", Usage: "overwrite an existing file"},
			&cli.BoolFlag{Name: "no-format", Usage: "leave FAT-typed partitions unformatted"},
			&cli.StringFlag{Name: "clone-of", Usage: "make the RBD image a copy-on-write clone of the snapshot `rbd:POOL/IMAGE@SNAP`"},
			&cli.IntFlag{Name: "esp-fat", Usage: "FAT type of esp partitions: 32, as UEFI asks of a fixed disk's ESP (one too small for it is refused), or 16 or 12 for a small ESP (UEFI names them for removable media)", Value: 32},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("create: want exactly one IMAGE, got %d arguments", c.NArg())
			}
			path := c.Args().First()
			if c.IsSet("clone-of") {
				return cloneRBD(c, path)
			}
			if !c.IsSet("size") {
				return usagef("create: --size is required (e.g. --size 64MiB)")
			}
			size, err := humanize.ParseBytes(c.String("size"))
			if err != nil || size == 0 {
				return usagef("create: --size %q is not a size like 64MiB, 1.5GB or 4096", c.String("size"))
			}
			if ss := c.Int("sector-size"); ss != 512 && ss != 4096 {
				return usagef("create: --sector-size %d: want 512 or 4096", ss)
			}
			if int64(size)%int64(c.Int("sector-size")) != 0 {
				return usagef("create: --size %s is not a multiple of the %d-byte sector", c.String("size"), c.Int("sector-size"))
			}
			kind, err := partition.ParseKind(c.String("table"))
			if err != nil {
				return usagef("create: --table %q: want gpt, mbr or none", c.String("table"))
			}
			var specs []partition.Spec
			for _, s := range c.StringSlice("part") {
				spec, err := create.ParsePartSpec(s)
				if err != nil {
					return usagef("create: %v", err)
				}
				if isFATType(spec.Type) && spec.Label != "" && !c.Bool("no-format") {
					// Refuse before the image exists rather than
					// when formatting it.
					if _, err := fat.EncodeVolumeLabel(spec.Label, nil); err != nil {
						return usagef("create: --part %q: %s", s, fatReason(err))
					}
				}
				specs = append(specs, spec)
			}
			espFAT := c.Int("esp-fat")
			if espFAT != 12 && espFAT != 16 && espFAT != 32 {
				return usagef("create: --esp-fat %d: want 32, 16 or 12", espFAT)
			}
			opts := create.Options{Size: int64(size), Table: kind, ESPFATType: espFAT,
				SectorSize: c.Int("sector-size"), Parts: specs, Overwrite: c.Bool("force"), NoFormat: c.Bool("no-format"),
				Seeded: imageIdentities(path), FAT: reproducible.FAT()}
			if now, ok := reproducible.Now(); ok {
				opts.Format.Time = now
			}
			if kind == partition.None && len(specs) > 0 {
				// A disk without a table holds one file system over
				// all of it (a "superfloppy"): --part rest:fat12:LABEL.
				if len(specs) > 1 || specs[0].Size != partition.Rest || !isFATType(specs[0].Type) {
					return usagef("create: --table none holds one file system on the whole disk: --part rest:TYPE[:LABEL] with TYPE fat12, fat16, fat32 or esp")
				}
				opts.Parts = nil
				if !opts.NoFormat {
					opts.FormatNone, opts.Label = specs[0].Type, specs[0].Label
				}
			}
			var t *partition.Table
			if disk.IsRBD(path) {
				spec, perr := disk.ParseRBD(path)
				if perr != nil {
					return usagef("create: %v", perr)
				}
				t, err = create.RBD(spec, cephOptions(c), opts)
			} else {
				if dir := filepath.Dir(path); dir != "" {
					if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
						return fmt.Errorf("create %s: directory %s does not exist", path, dir)
					}
				}
				t, err = create.Image(path, opts)
			}
			if err != nil {
				// "format disk@2: fat: format:" repeats what the
				// message already says, in the library's names.
				msg := libraryPrefix.ReplaceAllString(err.Error(), "")
				if errors.Is(err, create.ErrESPTooSmall) {
					msg += "; an ESP is FAT32, as UEFI asks of a fixed disk: give it more room, or ask for FAT16 with --esp-fat 16 (UEFI names FAT12 and FAT16 for removable media; most firmware reads them)"
				}
				return errors.New(msg)
			}
			fmt.Printf("%s: %s, %s\n", path, humanize.IBytes(size), tableText(t.Kind.String(), len(t.Partitions)))
			return nil
		},
	})
}

// cloneRBD is create --clone-of: the RBD image path becomes a clone of the
// snapshot --clone-of names. The clone takes its size and partitions from
// the snapshot, so the flags that lay out a new image are refused.
func cloneRBD(c *cli.Context, path string) error {
	for _, f := range []string{"size", "table", "part", "sector-size", "no-format", "esp-fat"} {
		if c.IsSet(f) {
			return usagef("create: --clone-of makes a clone with the snapshot's size and partitions; --%s does not apply", f)
		}
	}
	if !disk.IsRBD(path) {
		return usagef("create: --clone-of makes an RBD image: want rbd:POOL/IMAGE, not %s", path)
	}
	child, err := disk.ParseRBD(path)
	if err != nil {
		return usagef("create: %v", err)
	}
	parent, err := disk.ParseRBD(c.String("clone-of"))
	if err != nil {
		return usagef("create: --clone-of: %v", err)
	}
	if parent.Snap == "" {
		return usagef("create: --clone-of %s: a clone is made of a snapshot, rbd:POOL/IMAGE@SNAP (rbd snap create makes one)", parent)
	}
	if child.Snap != "" {
		return usagef("create: %s: a clone is an image, not a snapshot", child)
	}
	ceph := cephOptions(c)
	if c.Bool("force") {
		if err := disk.RemoveRBD(child, ceph); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("create %s: %w", child, err)
		}
	}
	if err := disk.CloneRBD(parent, child, ceph); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s: the image exists (--force replaces it; rbd rm removes it)", child)
		}
		return fmt.Errorf("create %s: %w", child, err)
	}
	fmt.Printf("%s: clone of %s\n", child, parent)
	return nil
}

// libraryPrefix matches the layers of names the library puts in front of
// a format error ("format disk@2: fat: format: ").
var libraryPrefix = regexp.MustCompile(`format [^ :]+: fat: format: `)

// isFATType reports whether a --part TYPE is formatted with FAT.
func isFATType(t string) bool {
	switch t {
	case "fat12", "fat16", "fat32", "esp":
		return true
	}
	return false
}
