package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"
	"github.com/vdisk-dev/vdisk/format"
	"github.com/vdisk-dev/vdisk/fsd/fat"
)

func formatCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "format",
		Usage:     "write a FAT file system on a volume",
		ArgsUsage: "VOLUME",
		Description: `Options left out are chosen like mkfs.fat. The volume is dismounted and opened
directly through the raw file system.

Formatting erases what the volume held. When standard error is a terminal, a progress
bar counts the bytes written.

Examples:
   vdisk format disk.img@1 --fat 32 --label EFI
   vdisk format floppy.img --fat 12 --volume-id 1234ABCD`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "fat", Usage: "FAT type: 12, 16 or 32 (default: by size, like mkfs.fat)"},
			&cli.StringFlag{Name: "label", Usage: "volume label (11 characters at most)"},
			&cli.StringFlag{Name: "cluster-size", Usage: "cluster size (512, 4KiB, ...)"},
			&cli.IntFlag{Name: "sector-size", Usage: "logical sector size, 512 to 4096 (default: the device's)"},
			&cli.StringFlag{Name: "volume-id", Usage: "volume serial number, 8 hex digits"},
			&cli.IntFlag{Name: "reserved", Usage: "reserved sectors"},
			&cli.IntFlag{Name: "root-entries", Usage: "FAT12/16 root directory entries"},
			&cli.IntFlag{Name: "fats", Usage: "number of FATs, 1 or 2"},
		},
		Action: func(c *cli.Context) (err error) {
			if c.NArg() != 1 {
				return usagef("format: want one VOLUME (IMAGE or IMAGE@N)")
			}
			a, err := volumeOnly("format", c.Args().First())
			if err != nil {
				return err
			}
			opts := fat.FormatOptions{FATType: c.Int("fat"), Label: c.String("label"), SectorSize: c.Int("sector-size"),
				ReservedSectors: c.Int("reserved"), RootEntries: c.Int("root-entries"), NumFATs: c.Int("fats")}
			switch opts.FATType {
			case 0, 12, 16, 32:
			default:
				return usagef("format: --fat %d: want 12, 16 or 32", opts.FATType)
			}
			if cs := c.String("cluster-size"); cs != "" {
				n, err := humanize.ParseBytes(cs)
				if err != nil {
					return usagef("format: --cluster-size %q is not a size", cs)
				}
				opts.ClusterSize = int(n)
			}
			if id := c.String("volume-id"); id != "" {
				n, err := strconv.ParseUint(id, 16, 32)
				if err != nil {
					return usagef("format: --volume-id %q is not 8 hex digits", id)
				}
				opts.VolumeID, opts.HasVolumeID = uint32(n), true
			}
			s := newSession("vdisk format", true, true)
			defer func() { err = s.close(err) }()
			v, err := s.openVolume(c, a)
			if err != nil {
				return err
			}
			if opts.Label != "" {
				if _, err := fat.EncodeVolumeLabel(opts.Label, nil); err != nil {
					return usagef("format: --label: %s", fatReason(err))
				}
			}
			// The total is known only once Format has chosen the
			// layout, so the bar starts at its first report.
			var bar *progress
			if s.progress {
				opts.Progress = func(done, total int64) {
					if bar == nil {
						bar = newProgress(os.Stderr, true, total, "formatting")
					}
					bar.set(done, total)
				}
			}
			res, err := format.Volume(v, opts)
			bar.finish(err)
			if err != nil {
				// The library names the export (disk@1) and the
				// package (fat: format:); the user typed disk.img@1.
				msg := strings.TrimPrefix(err.Error(), "format "+v.Name+": ")
				msg = strings.TrimPrefix(msg, "fat: format: ")
				return &explained{msg: fmt.Sprintf("format %s: %s", a, msg), err: err}
			}
			g := res.Geometry
			fmt.Printf("%s: FAT%d, %s, %d-byte clusters, serial %04X-%04X, label %q, %s free\n", a, g.Type,
				humanize.IBytes(uint64(g.VolumeBytes())), g.ClusterSize, res.VolumeID>>16, res.VolumeID&0xFFFF,
				res.Label, humanize.IBytes(uint64(res.FreeBytes())))
			return nil
		},
	})
}
