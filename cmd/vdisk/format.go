package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"
	"github.com/vdisk-dev/vdisk/create"
	"github.com/vdisk-dev/vdisk/format"
	"github.com/vdisk-dev/vdisk/fsd/fat"
)

// formatArgs is format's command line: its own long options, as it always
// took them, and mkfs.fat's, read by fat.ParseMkfsFlags.
type formatArgs struct {
	mkfs      *fat.MkfsFlags
	long      fat.FormatOptions // what the long options set
	set       map[string]bool   // which long options were given
	labelFlag string            // "--label" or "-n", for messages
	volume    string
}

// formatLongFlags are format's long options.
var formatLongFlags = map[string]bool{"fat": true, "label": true, "cluster-size": true, "sector-size": true,
	"volume-id": true, "reserved": true, "root-entries": true, "fats": true}

// parseFormatArgs reads format's command line. urfave/cli does not parse
// it: mkfs.fat's -h (hidden sectors) is its -h (help).
func parseFormatArgs(args []string) (f *formatArgs, help bool, err error) {
	f = &formatArgs{set: map[string]bool{}}
	var mkfs []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--help" || a == "-help" {
			return nil, true, nil
		}
		name, val, hasVal := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if a == "--" || !strings.HasPrefix(a, "--") || !formatLongFlags[name] {
			if a == "-n" || strings.HasPrefix(a, "-n") && !strings.HasPrefix(a, "--") {
				f.labelFlag = "-n"
			}
			mkfs = append(mkfs, a)
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, false, usagef("format: --%s needs a value", name)
			}
			i++
			val = args[i]
		}
		f.set[name] = true
		number := func() (int, error) {
			n, err := strconv.Atoi(val)
			if err != nil {
				return 0, usagef("format: --%s %q is not a number", name, val)
			}
			return n, nil
		}
		o := &f.long
		switch name {
		case "fat":
			if o.FATType, err = number(); err == nil && o.FATType != 12 && o.FATType != 16 && o.FATType != 32 {
				err = usagef("format: --fat %d: want 12, 16 or 32", o.FATType)
			}
		case "label":
			o.Label, f.labelFlag = val, "--label"
		case "cluster-size":
			n, perr := humanize.ParseBytes(val)
			if perr != nil || n == 0 {
				err = usagef("format: --cluster-size %q is not a size", val)
			}
			o.ClusterSize = int(n)
		case "sector-size":
			o.SectorSize, err = number()
		case "volume-id":
			n, perr := strconv.ParseUint(val, 16, 32)
			if perr != nil {
				err = usagef("format: --volume-id %q is not 8 hex digits", val)
			}
			o.VolumeID, o.HasVolumeID = uint32(n), true
		case "reserved":
			o.ReservedSectors, err = number()
		case "root-entries":
			o.RootEntries, err = number()
		case "fats":
			o.NumFATs, err = number()
		}
		if err != nil {
			return nil, false, err
		}
	}
	m, rest, err := fat.ParseMkfsFlags(mkfs)
	if err != nil {
		return nil, false, usagef("format: %s", strings.TrimPrefix(err.Error(), fat.ErrMkfsFlag.Error()+": "))
	}
	if len(rest) != 1 {
		return nil, false, usagef("format: want one VOLUME (IMAGE or IMAGE@N)")
	}
	f.mkfs, f.volume = m, rest[0]
	return f, false, nil
}

// options are the format options for a volume of the given sector size:
// mkfs.fat's flags, then the long options over them.
func (f *formatArgs) options(sectorSize int) fat.FormatOptions {
	o, l := f.mkfs.Resolve(sectorSize), f.long
	for name, apply := range map[string]func(){
		"fat": func() { o.FATType = l.FATType }, "label": func() { o.Label = l.Label },
		"cluster-size": func() { o.ClusterSize = l.ClusterSize }, "sector-size": func() { o.SectorSize = l.SectorSize },
		"volume-id": func() { o.VolumeID, o.HasVolumeID = l.VolumeID, true }, "reserved": func() { o.ReservedSectors = l.ReservedSectors },
		"root-entries": func() { o.RootEntries = l.RootEntries }, "fats": func() { o.NumFATs = l.NumFATs },
	} {
		if f.set[name] {
			apply()
		}
	}
	return o
}

func formatCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "format",
		Usage:     "write a FAT file system on a volume",
		ArgsUsage: "VOLUME",
		Description: `Options left out are chosen like mkfs.fat. The volume is dismounted and opened
directly through the raw file system.

Besides the long options, format takes mkfs.fat's: -F TYPE, -n LABEL, -i VOLID (hex),
-s SECTORS_PER_CLUSTER, -S SECTOR_SIZE, -R RESERVED, -r ROOT_ENTRIES, -f FATS,
-h HIDDEN_SECTORS, -M MEDIA, -b BACKUP_SECTOR, -g HEADS/SECTORS, --codepage=437|850
and --invariant (mkfs.fat's fixed serial and time); -v and -I are accepted and change
nothing. -h is mkfs.fat's hidden sectors here: --help shows this help.

With SOURCE_DATE_EPOCH or --seed the label's time is the epoch and the serial is
derived from the seed and the volume's name (the one vdisk create gives it), unless
-i or --volume-id gives one.

Formatting erases what the volume held. When standard error is a terminal, a progress
bar counts the bytes written.

Examples:
   vdisk format disk.img@1 --fat 32 --label EFI
   vdisk format disk.img@1 -F 32 -n EFI -s 8
   vdisk format floppy.img --fat 12 --volume-id 1234ABCD`,
		SkipFlagParsing: true,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "fat", Usage: "FAT type: 12, 16 or 32 (default: by size, like mkfs.fat); -F"},
			&cli.StringFlag{Name: "label", Usage: "volume label (11 characters at most); -n"},
			&cli.StringFlag{Name: "cluster-size", Usage: "cluster size (512, 4KiB, ...); -s takes it in sectors"},
			&cli.IntFlag{Name: "sector-size", Usage: "logical sector size, 512 to 4096 (default: the device's); -S"},
			&cli.StringFlag{Name: "volume-id", Usage: "volume serial number, 8 hex digits; -i"},
			&cli.IntFlag{Name: "reserved", Usage: "reserved sectors; -R"},
			&cli.IntFlag{Name: "root-entries", Usage: "FAT12/16 root directory entries; -r"},
			&cli.IntFlag{Name: "fats", Usage: "number of FATs, 1 or 2; -f"},
		},
		Action: func(c *cli.Context) (err error) {
			f, help, err := parseFormatArgs(c.Args().Slice())
			if err != nil {
				return err
			}
			if help {
				return cli.ShowCommandHelp(c, "format")
			}
			a, err := volumeOnly("format", f.volume)
			if err != nil {
				return err
			}
			s := newSession("vdisk format", true, true)
			defer func() { err = s.close(err) }()
			v, err := s.openVolume(c, a)
			if err != nil {
				return err
			}
			opts := f.options(int(v.Device.SectorSize))
			if opts.Label != "" {
				if _, err := fat.EncodeVolumeLabel(opts.Label, opts.CodePage); err != nil {
					return usagef("format: %s: %s", f.labelFlag, fatReason(err))
				}
			}
			if now, ok := reproducible.Now(); ok && !f.mkfs.Invariant {
				opts.Time = now
				if !opts.HasVolumeID {
					n := 0
					if _, num, ok := strings.Cut(v.Name, "@"); ok {
						n, _ = strconv.Atoi(num)
					}
					opts.VolumeID, opts.HasVolumeID = create.VolumeID(imageIdentities(a.Image), n), true
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
