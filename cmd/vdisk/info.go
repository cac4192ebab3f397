package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"
	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/imageinfo"
)

func infoCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "info",
		Usage:     "show an image's partition table",
		ArgsUsage: "IMAGE",
		Description: `Shows the partition table, each partition and the file system on it (or on the
whole disk when it has no table).

--json prints one object with these fields (stable names; sizes in bytes):
   path, size, sector_size, table ("gpt", "mbr" or "none")
   disk_guid      a GPT's disk GUID
   disk_signature the MBR disk signature ("0x12345678"; a GPT's when not 0)
   hybrid_mbr     true on a GPT disk whose MBR lists partitions too
   partitions     array of: number, start, size, type (GUID or MBR type byte),
                  type_name, name (GPT name, omitted when empty), uuid (GPT), partuuid
                  (what root=PARTUUID= takes), attributes ("0x..." hex) and
                  attribute_names (GPT, as sfdisk prints them), bootable, mbr_type (in a hybrid MBR),
                  export (NBD export name, "disk@1"), file_system
   file_system    on a disk without a table; in each partition: type ("FAT12",
                  "FAT16", "FAT32", or "RAW" when nothing recognises it), label,
                  serial ("1234-ABCD"), cluster_size, size, used, free, and error
                  when the volume could not be read (empty fields are omitted)
   warnings       what reading the table worked around (omitted when none)

Examples:
   vdisk info disk.img
   vdisk info disk.img --json | jq '.partitions[] | {number, free: .file_system.free}'`,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("info: want exactly one IMAGE, got %d arguments", c.NArg())
			}
			sys := vdisk.New(vdisk.Options{Requestor: "vdisk info"})
			defer sys.Close()
			img, err := addImage(sys, c.Args().First(), true, c.Bool("force-share"), cephOptions(c))
			if err != nil {
				return err
			}
			info := imageinfo.Describe(sys, img)
			for _, w := range img.Warnings {
				fmt.Fprintf(os.Stderr, "vdisk: warning: %s: %s\n", img.Path, w)
			}
			if c.Bool("json") {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			}
			fmt.Printf("%s: %s, %s, %d-byte sectors\n", img.Path, humanize.IBytes(uint64(info.Size)), tableText(info.Table, len(info.Partitions)), info.SectorSize)
			if len(info.Partitions) == 0 {
				if fs := info.FileSystem; fs != nil {
					fmt.Println("file system:", fsSummary(fs))
				}
				return nil
			}
			switch {
			case info.DiskGUID != "" && info.DiskSignature != "":
				fmt.Printf("disk GUID %s, MBR disk signature %s\n", info.DiskGUID, info.DiskSignature)
			case info.DiskGUID != "":
				fmt.Printf("disk GUID %s\n", info.DiskGUID)
			case info.DiskSignature != "":
				fmt.Printf("disk signature %s\n", info.DiskSignature)
			}
			tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "#\tSTART\tSIZE\tTYPE\tNAME\tFILE SYSTEM")
			for _, p := range info.Partitions {
				fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\n", p.Number, p.Start, humanize.IBytes(uint64(p.Size)), p.TypeName, p.Name, fsSummary(p.FileSystem))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			// The identities, in a table of their own: what a boot loader's
			// root=PARTUUID= and the firmware need.
			tw = tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "#\tTYPE\tPARTUUID\tFLAGS")
			for _, p := range info.Partitions {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", p.Number, p.Type, p.PartUUID, partitionFlags(p))
			}
			return tw.Flush()
		},
	})
}

// partitionFlags lists a partition's flags: bootable, its GPT attributes,
// and its hybrid MBR entry.
func partitionFlags(p imageinfo.PartitionInfo) string {
	var f []string
	if p.Bootable {
		f = append(f, "bootable")
	}
	if p.AttributeNames != "" {
		f = append(f, "attributes "+p.AttributeNames)
	}
	if p.MBRType != "" {
		f = append(f, "hybrid MBR type "+p.MBRType)
	}
	return strings.Join(f, ", ")
}

// fsSummary is one line about a file system: type, label, serial, used/free.
func fsSummary(fs *imageinfo.FileSystemInfo) string {
	switch {
	case fs == nil:
		return ""
	case fs.Error != "":
		return "? (" + fs.Error + ")"
	case fs.Type == "RAW":
		return "none recognised (vdisk format makes one)"
	}
	return fmt.Sprintf("%s %q %s, %s used, %s free", fs.Type, fs.Label, fs.Serial,
		humanize.IBytes(uint64(fs.Used)), humanize.IBytes(uint64(fs.Free)))
}

// tableText describes a partition table in words: "gpt table, 2
// partitions", "no partition table".
func tableText(kind string, n int) string {
	if kind == "none" {
		return "no partition table"
	}
	if n == 1 {
		return kind + " table, 1 partition"
	}
	return fmt.Sprintf("%s table, %d partitions", kind, n)
}
