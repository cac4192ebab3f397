package main

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/vdisk-dev/vdisk/iomgr"
)

func mvCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "mv",
		Usage:     "rename or move a file or directory within one volume",
		ArgsUsage: "VOLUME:/src VOLUME:/dst",
		Description: `Example:
   vdisk mv disk.img@1:/a.txt disk.img@1:/docs/b.txt`,
		Action: func(c *cli.Context) (err error) {
			if c.NArg() != 2 {
				return usagef("mv: want SRC and DST")
			}
			src, err := volumePath("mv", c.Args().Get(0))
			if err != nil {
				return err
			}
			dst, err := volumePath("mv", c.Args().Get(1))
			if err != nil {
				return err
			}
			if src.Image != dst.Image || src.Partition != dst.Partition {
				return usagef("mv: source and destination must be on one volume (use cp and rm)")
			}
			s := newSession("vdisk mv", true, c.Bool("sync"))
			defer func() { err = s.close(err) }()
			v, err := s.openVolume(c, src)
			if err != nil {
				return err
			}
			if src.Path == "." {
				return fmt.Errorf("mv %s: cannot move the root directory", src)
			}
			if _, err := v.Stat(src.Path); err != nil {
				return explain("mv", src, v, err)
			}
			target := dst.Path
			// Into an existing directory, unless that "directory" is
			// the source itself under another case: FAT names are
			// case-insensitive, and `mv a A` changes the case.
			if info, err := v.Stat(target); err == nil && info.IsDir() && !strings.EqualFold(target, src.Path) {
				target = path.Join(target, path.Base(src.Path))
			}
			to := Address{Image: dst.Image, Partition: dst.Partition, Path: target, HasPath: true}
			if strings.HasPrefix(strings.ToUpper(target), strings.ToUpper(src.Path)+"/") {
				// The FSD answers only "invalid parameter".
				return fmt.Errorf("mv %s %s: cannot move a directory into itself", src, to)
			}
			err = v.Rename(src.Path, target, true)
			switch {
			case err == nil:
				return nil
			case errors.Is(err, iomgr.StatusObjectNameInvalid):
				// The status comes back on the source's name, but
				// it is the new name that FAT cannot hold.
				return fmt.Errorf("mv %s %s: %s (%s)", src, to, nameReason(target), iomgr.StatusObjectNameInvalid.Name())
			case errors.Is(err, iomgr.StatusObjectPathNotFound):
				return fmt.Errorf("mv %s %s: %s (%s)", src, to, missingParent(v, target), iomgr.StatusObjectPathNotFound.Name())
			case errors.Is(err, iomgr.StatusObjectNameCollision), errors.Is(err, iomgr.StatusAccessDenied):
				return fmt.Errorf("mv %s %s: %s exists and cannot be replaced (%s)", src, to, to, iomgr.StatusOf(err).Name())
			}
			return explain("mv", src, v, err)
		},
	})
}
