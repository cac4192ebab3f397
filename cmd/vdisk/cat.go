package main

import (
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"
)

func catCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "cat",
		Usage:     "write a file of a volume to standard output",
		ArgsUsage: "VOLUME:/path",
		Description: `Several files are written one after another, as cat(1) does.

Example:
   vdisk cat disk.img@1:/EFI/BOOT/grub.cfg`,
		Action: func(c *cli.Context) (err error) {
			if c.NArg() < 1 {
				return usagef("cat: want VOLUME:/path")
			}
			s := newSession("vdisk cat", false, true)
			defer func() { err = s.close(err) }()
			addrs, err := s.openPaths(c, "cat")
			if err != nil {
				return err
			}
			for _, a := range addrs {
				v, err := s.volume(a)
				if err != nil {
					return err
				}
				// A directory opens fine and fails only on the first
				// read, with a status that would not say why.
				if fi, err := v.Stat(a.Path); err != nil {
					return explain("cat", a, v, err)
				} else if fi.IsDir() {
					return fmt.Errorf("cat %s: is a directory (vdisk ls lists it)", a)
				}
				f, err := v.Open(a.Path)
				if err != nil {
					return explain("cat", a, v, err)
				}
				_, err = io.Copy(os.Stdout, f)
				f.Close()
				if err != nil {
					return explain("cat", a, v, err)
				}
			}
			return nil
		},
	})
}
