package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// session opens the images a command names in one System, with the
// filters of --filter (and --trace) loaded.
type session struct {
	sys      *vdisk.System
	writable bool
	images   map[string]bool
	filtered bool
	trace    *tracePrinter
	// progress is set when progress bars may draw on stderr: it is a
	// terminal and no --trace writes there.
	progress bool

	// forceShare opens the images without locking them (--force-share).
	forceShare bool
}

// newSession starts a session. fsync says whether flushing the images ends
// in fsync: the file commands leave that to --sync, as cp and mcopy do.
func newSession(requestor string, writable, fsync bool) *session {
	sys := vdisk.New(vdisk.Options{Requestor: requestor, NoFsync: !fsync})
	return &session{sys: sys, writable: writable, images: map[string]bool{}}
}

// add opens the images of the given addresses (host paths are skipped).
func (s *session) add(addrs ...vdisk.Address) error {
	for _, a := range addrs {
		if a.IsHost() || s.images[a.Image] {
			continue
		}
		img, err := addImage(s.sys, a.Image, !s.writable, s.forceShare)
		if err != nil {
			return err
		}
		for _, w := range img.Warnings {
			fmt.Fprintf(os.Stderr, "vdisk: warning: %s: %s\n", a.Image, w)
		}
		s.images[a.Image] = true
	}
	return nil
}

// applyFilters loads the --filter specs and, with --trace, the monitor and a
// disk trace printing to standard error. Call it once, after every image
// of the command was added and before any volume is used.
func (s *session) applyFilters(c *cli.Context) error {
	if s.filtered {
		return nil
	}
	s.filtered = true
	s.progress = stderrIsTerminal() && !c.Bool("trace")
	if c.Bool("trace") {
		s.trace = startTrace(s.sys.Ring(), os.Stderr)
	}
	for _, spec := range filterSpecs(c) {
		if _, err := s.sys.AddFilter(spec); err != nil {
			return err
		}
	}
	return nil
}

// open adds the images of addrs and loads the filters.
func (s *session) open(c *cli.Context, addrs ...vdisk.Address) error {
	s.forceShare = c.Bool("force-share")
	if err := s.add(addrs...); err != nil {
		return err
	}
	return s.applyFilters(c)
}

// openPaths parses every argument as VOLUME:/path, then opens their images
// and loads the filters.
func (s *session) openPaths(c *cli.Context, cmd string) ([]vdisk.Address, error) {
	var addrs []vdisk.Address
	for _, arg := range c.Args().Slice() {
		a, err := volumePath(cmd, arg)
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, a)
	}
	return addrs, s.open(c, addrs...)
}

// volume returns the volume an address is on, adding its image on first use.
func (s *session) volume(a vdisk.Address, requestor string) (*vdisk.Volume, error) {
	if err := s.add(a); err != nil {
		return nil, err
	}
	return s.sys.VolumeAt(a, requestor)
}

// close dismounts cleanly (flushing everything) and reports the first error.
func (s *session) close(err error) error {
	cerr := s.sys.Close()
	if s.trace != nil {
		s.trace.stop()
	}
	if err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("closing images: %w", cerr)
	}
	return nil
}

// volumeOnly parses an operand that must name a volume (IMAGE or IMAGE@N)
// and no path in it: label and format act on the whole volume, and a path
// would suggest otherwise.
func volumeOnly(cmd, s string) (vdisk.Address, error) {
	a, err := vdisk.ParseAddress(s, true)
	if err != nil {
		return a, err
	}
	if a.HasPath {
		vol := vdisk.Address{Image: a.Image, Partition: a.Partition}
		return a, usagef("%s: %s names a path; %s acts on the whole volume, %s", cmd, s, cmd, vol)
	}
	return a, nil
}

// volumePath parses an operand that must be VOLUME:/path.
func volumePath(cmd, s string) (vdisk.Address, error) {
	a, err := vdisk.ParseAddress(s, false)
	if err != nil {
		return a, err
	}
	if a.IsHost() {
		if err := missingImage(cmd, s); err != nil {
			return a, err
		}
		return a, usagef("%s: %s is not IMAGE[@N]:/path: %s", cmd, s, vdisk.NotVolumeReason(s))
	}
	return a, nil
}

// missingImage is the error of an operand IMAGE[@N]:/path whose IMAGE is
// not an image file (missing, or a directory): the operand has the shape
// the command wants, so that is a failure (exit 1), not a usage error. It
// returns nil for an operand of another shape.
func missingImage(cmd, s string) error {
	i := strings.Index(s, ":/")
	if i <= 0 {
		return nil
	}
	img := s[:i]
	if j := strings.LastIndexByte(img, '@'); j > 0 {
		if n, err := strconv.Atoi(img[j+1:]); err == nil && n > 0 && strconv.Itoa(n) == img[j+1:] {
			img = img[:j]
		} else if _, err := os.Stat(img[:j]); err == nil {
			return nil // IMAGE exists, @N is malformed: usage
		}
	}
	fi, err := os.Stat(img)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s %s: no such image file %s", cmd, s, img)
	case err == nil && fi.IsDir():
		return fmt.Errorf("%s %s: %s is a directory, not an image file", cmd, s, img)
	}
	return nil
}

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
			if err := s.open(c, a); err != nil {
				return err
			}
			v, err := s.volume(a, "vdisk ls")
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
				v, err := s.volume(a, "vdisk cat")
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
				v, err := s.volume(a, "vdisk mkdir")
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
					return fmt.Errorf("mkdir %s: %s is a file, not a directory", a, vdisk.Address{Image: a.Image, Partition: a.Partition, Path: pe.Path, HasPath: true})
				}
				if err != nil {
					return explain("mkdir", a, v, err)
				}
			}
			return nil
		},
	})
}

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
				v, err := s.volume(a, "vdisk rm")
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
			if err := s.open(c, src); err != nil {
				return err
			}
			v, err := s.volume(src, "vdisk mv")
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
			to := vdisk.Address{Image: dst.Image, Partition: dst.Partition, Path: target, HasPath: true}
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
			if err := s.open(c, a); err != nil {
				return err
			}
			v, err := s.volume(a, "vdisk label")
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
