package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func labelCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "label",
		Usage:     "show or set a volume's label",
		ArgsUsage: "VOLUME [LABEL]",
		Description: `A FAT label is at most 11 characters of the code page, without control characters,
a leading space or any of *?/\|.,;:+=[]<>"; its case is kept, as mkfs.fat and fatlabel keep it
(DOS and some old systems expect upper case). "" removes the label. The label is the root
directory's label entry; the copy in the boot sector follows it.

Examples:
   vdisk label disk.img@1          # prints the label
   vdisk label disk.img@1 EFI`,
		Action: func(c *cli.Context) (err error) {
			if c.NArg() < 1 || c.NArg() > 2 {
				return usagef("label: want VOLUME [LABEL]")
			}
			a, err := volumeOnly("label", c.Args().First())
			if err != nil {
				return err
			}
			s := newSession("vdisk label", c.NArg() == 2, c.Bool("sync"))
			defer func() { err = s.close(err) }()
			v, err := s.openVolume(c, a)
			if err != nil {
				return err
			}
			if c.NArg() == 2 {
				label := c.Args().Get(1)
				if err := v.SetLabel(label); err != nil {
					if why := labelReason(label); why != "" {
						return fmt.Errorf("label %s: %s", a, why)
					}
					return explain("label", a, v, err)
				}
				return nil
			}
			info, err := v.Info()
			if err != nil {
				return explain("label", a, v, err)
			}
			fmt.Println(info.Label)
			return nil
		},
	})
}
