package main

import (
	"fmt"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"
	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/partition"
)

func createCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "create",
		Usage:     "create a sparse disk image with a partition table",
		ArgsUsage: "IMAGE",
		Description: `Partitions are laid out in order, 1 MiB aligned; SIZE "rest" takes what is left.
TYPE is fat12, fat16, fat32, esp, linux or raw; LABEL is the GPT partition name and, for
FAT-typed partitions (esp is FAT32), the volume label: they are formatted.

Example:
   vdisk create disk.img --size 256MiB --table gpt --part 64MiB:esp:EFI --part rest:fat32:DATA`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "size", Usage: "image size (64MiB, 1.5GB, 4096); required"},
			&cli.StringFlag{Name: "table", Usage: "partition table: gpt, mbr or none", Value: "gpt"},
			&cli.StringSliceFlag{Name: "part", Usage: "a partition SIZE:TYPE[:LABEL] (repeatable)"},
			&cli.IntFlag{Name: "sector-size", Usage: "logical sector size: 512 or 4096", Value: 512},
			&cli.BoolFlag{Name: "force", Usage: "overwrite an existing file"},
			&cli.BoolFlag{Name: "no-format", Usage: "leave FAT-typed partitions unformatted"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("create: want exactly one IMAGE, got %d arguments", c.NArg())
			}
			path := c.Args().First()
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
				spec, err := vdisk.ParsePartSpec(s)
				if err != nil {
					return usagef("create: %v", err)
				}
				specs = append(specs, spec)
			}
			t, err := vdisk.CreateImage(path, vdisk.CreateOptions{Size: int64(size), Table: kind,
				SectorSize: c.Int("sector-size"), Parts: specs, Overwrite: c.Bool("force"), NoFormat: c.Bool("no-format")})
			if err != nil {
				return err
			}
			fmt.Printf("%s: %s, %s table, %d partition(s)\n", path, humanize.IBytes(size), t.Kind, len(t.Partitions))
			return nil
		},
	})
}
