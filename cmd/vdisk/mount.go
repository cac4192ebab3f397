package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"
	"github.com/vdisk-dev/vdisk/control"
)

func mountCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "mount",
		Usage:     "mount a volume inside a running server (without EXPORT: list the volumes)",
		ArgsUsage: "[EXPORT]",
		Description: `EXPORT is a volume's export name: disk@1, or disk for an image without a
partition table. The server's file system claims the volume (filters
attached to file systems attach to it) until vdisk dismount. A volume an
NBD client has written to while still connected cannot be mounted: two
writers would corrupt it; and while it is mounted, NBD writes to it fail.

Examples:
   vdisk serve disk.img --control /tmp/vdisk.sock &
   vdisk mount disk@1 --control /tmp/vdisk.sock
   vdisk mount --control /tmp/vdisk.sock          # volumes and their state`,
		Flags: append(controlFlags(), &cli.BoolFlag{Name: "json", Usage: "print JSON"}),
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return usagef("mount: name one EXPORT")
			}
			cl, err := controlClient(c, "mount")
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := signalContext()
			defer cancel()
			if c.NArg() == 0 {
				vols, err := cl.Volumes(ctx)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(map[string]any{"volumes": vols})
				}
				return printVolumes(vols)
			}
			vs, err := cl.Mount(ctx, c.Args().First())
			if err != nil {
				return err
			}
			return printVolume(c, vs, "mounted")
		},
	})
}

func dismountCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "dismount",
		Usage:     "flush and dismount a volume inside a running server",
		ArgsUsage: "EXPORT",
		Description: `Refused while files are open on the volume, unless --force (their handles
then fail). The file system's volume device and every filter device above
it are deleted.

Example:
   vdisk dismount disk@1 --control /tmp/vdisk.sock`,
		Flags: append(controlFlags(), &cli.BoolFlag{Name: "force", Usage: "dismount even with files open"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"}),
		Action: volumeAction("dismount", func(ctx context.Context, cl *control.Client, c *cli.Context, name string) (control.VolumeStatus, error) {
			return cl.Dismount(ctx, name, c.Bool("force"))
		}, "dismounted"),
	})
}

func lockCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "lock",
		Usage:     "have a running server lock a volume (FSCTL_LOCK_VOLUME) until vdisk unlock",
		ArgsUsage: "EXPORT",
		Description: `Every other open of the volume is refused while the lock is held; it is
refused itself while files are open. The file system flushes first.`,
		Flags: append(controlFlags(), &cli.BoolFlag{Name: "json", Usage: "print JSON"}),
		Action: volumeAction("lock", func(ctx context.Context, cl *control.Client, _ *cli.Context, name string) (control.VolumeStatus, error) {
			return cl.Lock(ctx, name)
		}, "locked"),
	})
}

func unlockCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "unlock",
		Usage:     "give back a volume lock taken with vdisk lock",
		ArgsUsage: "EXPORT",
		Flags:     append(controlFlags(), &cli.BoolFlag{Name: "json", Usage: "print JSON"}),
		Action: volumeAction("unlock", func(ctx context.Context, cl *control.Client, _ *cli.Context, name string) (control.VolumeStatus, error) {
			return cl.Unlock(ctx, name)
		}, "unlocked"),
	})
}

// volumeAction is the action of a command that takes one EXPORT and asks
// the server to do op on it.
func volumeAction(command string, op func(context.Context, *control.Client, *cli.Context, string) (control.VolumeStatus, error), done string) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.NArg() != 1 {
			return usagef("%s: name one EXPORT (a volume such as disk@1)", command)
		}
		cl, err := controlClient(c, command)
		if err != nil {
			return err
		}
		defer cl.Close()
		ctx, cancel := signalContext()
		defer cancel()
		vs, err := op(ctx, cl, c, c.Args().First())
		if err != nil {
			return err
		}
		return printVolume(c, vs, done)
	}
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printVolume prints a volume's state after an operation.
func printVolume(c *cli.Context, vs control.VolumeStatus, done string) error {
	if c.Bool("json") {
		return printJSON(vs)
	}
	if vs.Mounted {
		fmt.Printf("%s: %s (%s, %s, label %q, serial %s)\n", vs.Name, done, vs.Device, vs.FileSystem, vs.Label, vs.Serial)
	} else {
		fmt.Printf("%s: %s (%s)\n", vs.Name, done, vs.Device)
	}
	return nil
}

// printVolumes prints the volume list as a table.
func printVolumes(vols []control.VolumeStatus) error {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VOLUME\tDEVICE\tSIZE\tSTATE\tFILE SYSTEM\tLABEL\tNBD WRITERS")
	for _, v := range vols {
		state := "dismounted"
		if v.Mounted {
			state = "mounted"
			if v.Locked {
				state += ",locked"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", v.Name, v.Device, humanize.IBytes(uint64(v.Size)), state, v.FileSystem, v.Label, v.ExportWriters)
	}
	return tw.Flush()
}
