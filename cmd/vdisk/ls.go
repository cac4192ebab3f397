package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/iomgr"
)

func attrString(a iomgr.FileAttributes) string {
	b := []byte("------")
	for i, f := range []struct {
		bit iomgr.FileAttributes
		c   byte
	}{{iomgr.FileAttributeDirectory, 'd'}, {iomgr.FileAttributeReadOnly, 'r'}, {iomgr.FileAttributeHidden, 'h'},
		{iomgr.FileAttributeSystem, 's'}, {iomgr.FileAttributeArchive, 'a'}} {
		if a&f.bit != 0 {
			b[i] = f.c
		}
	}
	return string(b[:5])
}

// lsEntry is one line of `vdisk ls --json`; the field names are stable.
type lsEntry struct {
	Path       string    `json:"path"`
	Name       string    `json:"name"`
	ShortName  string    `json:"short_name,omitempty"`
	Dir        bool      `json:"dir"`
	Size       int64     `json:"size"`
	Modified   time.Time `json:"modified"`
	Attributes string    `json:"attributes"`
}

func lsCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "ls",
		Usage:     "list a directory of a volume",
		ArgsUsage: "VOLUME:/path",
		Description: `Lists a directory (or names one file). Hidden and system entries show with -a.
-l adds attributes (d directory, r read-only, h hidden, s system, a archive), size and
modification time.

--json prints an array of objects with these fields (stable names):
   path         absolute path in the volume, "/EFI/BOOT/BOOTX64.EFI"
   name         long name
   short_name   8.3 name, when it differs from name (omitted otherwise)
   dir          true for a directory
   size         bytes
   modified     last write time, RFC 3339
   attributes   five letters as with -l, "-" for a clear bit

Examples:
   vdisk ls -l disk.img@1:/EFI/BOOT
   vdisk ls -R --json disk.img@1:/ | jq -r '.[] | select(.dir | not) | .path'`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "l", Usage: "long format: attributes, size, time"},
			&cli.BoolFlag{Name: "a", Usage: "include hidden and system entries"},
			&cli.BoolFlag{Name: "R", Usage: "recurse into subdirectories"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		},
		Action: func(c *cli.Context) (err error) {
			if c.NArg() != 1 {
				return usagef("ls: want one VOLUME:/path")
			}
			a, err := volumePath("ls", c.Args().First())
			if err != nil {
				return err
			}
			s := newSession("vdisk ls", false, true)
			defer func() { err = s.close(err) }()
			v, err := s.openVolume(c, a)
			if err != nil {
				return err
			}
			info, err := v.Stat(a.Path)
			if err != nil {
				return explain("ls", a, v, err)
			}
			var out []lsEntry
			add := func(dir string, e fs.DirEntry) {
				fi := e.(*vdisk.FileInfo)
				if !c.Bool("a") && fi.Attributes()&(iomgr.FileAttributeHidden|iomgr.FileAttributeSystem) != 0 {
					return
				}
				out = append(out, lsEntry{Path: path.Join("/", dir, fi.Name()), Name: fi.Name(), ShortName: fi.ShortName,
					Dir: fi.IsDir(), Size: fi.Size(), Modified: fi.ModTime(), Attributes: attrString(fi.Attributes())})
			}
			if !info.IsDir() {
				add(path.Dir(a.Path), info.(*vdisk.FileInfo))
			} else {
				var walk func(dir string) error
				walk = func(dir string) error {
					entries, err := v.ReadDir(dir)
					if err != nil {
						return err
					}
					for _, e := range entries {
						add(dir, e)
					}
					if c.Bool("R") {
						for _, e := range entries {
							if e.IsDir() {
								if err := walk(path.Join(dir, e.Name())); err != nil {
									return err
								}
							}
						}
					}
					return nil
				}
				if err := walk(a.Path); err != nil {
					return explain("ls", a, v, err)
				}
			}
			if c.Bool("json") {
				if out == nil {
					out = []lsEntry{}
				}
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			// Sizes right-aligned in a column as wide as the largest.
			width := 1
			for _, e := range out {
				width = max(width, len(strconv.FormatInt(e.Size, 10)))
			}
			w := bufio.NewWriter(os.Stdout)
			for _, e := range out {
				name := e.Name
				if c.Bool("R") {
					name = strings.TrimPrefix(e.Path, "/")
				}
				if e.Dir {
					name += "/"
				}
				if c.Bool("l") {
					fmt.Fprintf(w, "%s %*d %s %s\n", e.Attributes, width, e.Size, e.Modified.Format("2006-01-02 15:04:05"), name)
				} else {
					fmt.Fprintln(w, name)
				}
			}
			return w.Flush()
		},
	})
}
