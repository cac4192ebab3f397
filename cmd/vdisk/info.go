package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"
	"github.com/vdisk-dev/vdisk"
)

func infoCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "info",
		Usage:     "show an image's partition table",
		ArgsUsage: "IMAGE",
		Description: `Example:
   vdisk info disk.img --json`,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("info: want exactly one IMAGE, got %d arguments", c.NArg())
			}
			sys := vdisk.New(vdisk.Options{Requestor: "vdisk info"})
			defer sys.Close()
			img, err := sys.AddImage(c.Args().First(), true)
			if err != nil {
				return err
			}
			info := sys.Describe(img)
			for _, w := range img.Warnings {
				fmt.Fprintf(os.Stderr, "vdisk: warning: %s: %s\n", img.Path, w)
			}
			if c.Bool("json") {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			}
			fmt.Printf("%s: %s, %s table, %d-byte sectors\n", img.Path, humanize.IBytes(uint64(info.Size)), info.Table, info.SectorSize)
			if len(info.Partitions) == 0 {
				if fs := info.FileSystem; fs != nil {
					fmt.Println(fsSummary(fs))
				}
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "#\tSTART\tSIZE\tTYPE\tNAME\tFILE SYSTEM")
			for _, p := range info.Partitions {
				fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\n", p.Number, p.Start, humanize.IBytes(uint64(p.Size)), p.TypeName, p.Name, fsSummary(p.FileSystem))
			}
			return tw.Flush()
		},
	})
}

// fsSummary is one line about a file system: type, label, serial, used/free.
func fsSummary(fs *vdisk.FileSystemInfo) string {
	switch {
	case fs == nil:
		return ""
	case fs.Error != "":
		return "? (" + fs.Error + ")"
	case fs.Type == "RAW":
		return "none recognised"
	}
	return fmt.Sprintf("%s %q %s, %s used, %s free", fs.Type, fs.Label, fs.Serial,
		humanize.IBytes(uint64(fs.Used)), humanize.IBytes(uint64(fs.Free)))
}
