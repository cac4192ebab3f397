package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func rmCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "rm",
		Usage:     "remove files (and with -r, directories) from a volume",
		ArgsUsage: "VOLUME:/path...",
		Description: `Example:
   vdisk rm -r disk.img@1:/old`,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "r", Usage: "remove directories and their contents"}},
		Action: func(c *cli.Context) (err error) {
			if c.NArg() < 1 {
				return usagef("rm: want VOLUME:/path")
			}
			s := newSession("vdisk rm", true, c.Bool("sync"))
			defer func() { err = s.close(err) }()
			addrs, err := s.openPaths(c, "rm")
			if err != nil {
				return err
			}
			for i, a := range addrs {
				arg := c.Args().Get(i)
				if a.Path == "." {
					return fmt.Errorf("rm %s: refusing to remove the root directory", arg)
				}
				v, err := s.volume(a)
				if err != nil {
					return err
				}
				info, err := v.Stat(a.Path)
				if err != nil {
					return explain("rm", a, v, err)
				}
				if info.IsDir() && !c.Bool("r") {
					return fmt.Errorf("rm %s: is a directory (use -r)", arg)
				}
				if c.Bool("r") {
					err = v.RemoveAll(a.Path)
				} else {
					err = v.Remove(a.Path)
				}
				if err != nil {
					return explain("rm", a, v, err)
				}
			}
			return nil
		},
	})
}
