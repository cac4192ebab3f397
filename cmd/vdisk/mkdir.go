package main

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/urfave/cli/v2"
	"github.com/vdisk-dev/vdisk/iomgr"
)

func mkdirCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "mkdir",
		Usage:     "create directories on a volume",
		ArgsUsage: "VOLUME:/path...",
		Description: `Example:
   vdisk mkdir -p disk.img@1:/EFI/BOOT`,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "p", Usage: "create parents; no error if it exists"}},
		Action: func(c *cli.Context) (err error) {
			if c.NArg() < 1 {
				return usagef("mkdir: want VOLUME:/path")
			}
			s := newSession("vdisk mkdir", true, c.Bool("sync"))
			defer func() { err = s.close(err) }()
			addrs, err := s.openPaths(c, "mkdir")
			if err != nil {
				return err
			}
			for _, a := range addrs {
				v, err := s.volume(a)
				if err != nil {
					return err
				}
				if c.Bool("p") {
					err = v.MkdirAll(a.Path)
				} else {
					err = v.Mkdir(a.Path)
				}
				if errors.Is(err, iomgr.StatusNotADirectory) {
					// MkdirAll met a file where a directory should be.
					var pe *fs.PathError
					errors.As(err, &pe)
					return fmt.Errorf("mkdir %s: %s is a file, not a directory", a, Address{Image: a.Image, Partition: a.Partition, Path: pe.Path, HasPath: true})
				}
				if err != nil {
					return explain("mkdir", a, v, err)
				}
			}
			return nil
		},
	})
}
