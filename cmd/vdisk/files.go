package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
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
}

func newSession(requestor string, writable bool) *session {
	return &session{sys: vdisk.New(vdisk.Options{Requestor: requestor}), writable: writable, images: map[string]bool{}}
}

// add opens the images of the given addresses (host paths are skipped).
func (s *session) add(addrs ...vdisk.Address) error {
	for _, a := range addrs {
		if a.IsHost() || s.images[a.Image] {
			continue
		}
		img, err := s.sys.AddImage(a.Image, !s.writable)
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
	specs := c.StringSlice("filter")
	if c.Bool("trace") {
		specs = append(specs, "monitor", "trace")
		s.trace = startTrace(s.sys.Ring(), os.Stderr)
	}
	for _, spec := range specs {
		if _, err := s.sys.AddFilter(spec); err != nil {
			return err
		}
	}
	return nil
}

// open adds the images of addrs and loads the filters.
func (s *session) open(c *cli.Context, addrs ...vdisk.Address) error {
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
	v, err := s.sys.OpenVolume(a.VolumeName(), requestor)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.Image, err)
	}
	return v, nil
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

// volumePath parses an operand that must be VOLUME:/path.
func volumePath(cmd, s string) (vdisk.Address, error) {
	a, err := vdisk.ParseAddress(s, false)
	if err != nil {
		return a, err
	}
	if a.IsHost() {
		return a, usagef("%s: %q is not IMAGE[@N]:/path (does the image exist?)", cmd, s)
	}
	return a, nil
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
		Description: `Example:
   vdisk ls -l disk.img@1:/EFI/BOOT`,
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
			s := newSession("vdisk ls", false)
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
				return err
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
					return err
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
			tw := tabwriter.NewWriter(os.Stdout, 1, 8, 1, ' ', tabwriter.AlignRight)
			for _, e := range out {
				name := e.Name
				if c.Bool("R") {
					name = strings.TrimPrefix(e.Path, "/")
				}
				if e.Dir {
					name += "/"
				}
				if c.Bool("l") {
					fmt.Fprintf(tw, "%s\t%d\t %s\t %s\n", e.Attributes, e.Size, e.Modified.Format("2006-01-02 15:04:05"), name)
				} else {
					fmt.Fprintln(tw, name)
				}
			}
			return tw.Flush()
		},
	})
}

func catCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "cat",
		Usage:     "write a file of a volume to standard output",
		ArgsUsage: "VOLUME:/path",
		Description: `Example:
   vdisk cat disk.img@1:/EFI/BOOT/grub.cfg`,
		Action: func(c *cli.Context) (err error) {
			if c.NArg() < 1 {
				return usagef("cat: want VOLUME:/path")
			}
			s := newSession("vdisk cat", false)
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
				f, err := v.Open(a.Path)
				if err != nil {
					return err
				}
				_, err = io.Copy(os.Stdout, f)
				f.Close()
				if err != nil {
					return err
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
			s := newSession("vdisk mkdir", true)
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
				if err != nil {
					return err
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
			s := newSession("vdisk rm", true)
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
					return err
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
					return err
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
			s := newSession("vdisk mv", true)
			defer func() { err = s.close(err) }()
			if err := s.open(c, src); err != nil {
				return err
			}
			v, err := s.volume(src, "vdisk mv")
			if err != nil {
				return err
			}
			target := dst.Path
			if info, err := v.Stat(target); err == nil && info.IsDir() {
				target = path.Join(target, path.Base(src.Path))
			}
			return v.Rename(src.Path, target, true)
		},
	})
}

func labelCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "label",
		Usage:     "show or set a volume's label",
		ArgsUsage: "VOLUME [LABEL]",
		Description: `Example:
   vdisk label disk.img@1 EFI`,
		Action: func(c *cli.Context) (err error) {
			if c.NArg() < 1 || c.NArg() > 2 {
				return usagef("label: want VOLUME [LABEL]")
			}
			a, err := vdisk.ParseAddress(c.Args().First(), true)
			if err != nil {
				return err
			}
			s := newSession("vdisk label", c.NArg() == 2)
			defer func() { err = s.close(err) }()
			if err := s.open(c, a); err != nil {
				return err
			}
			v, err := s.volume(a, "vdisk label")
			if err != nil {
				return err
			}
			if c.NArg() == 2 {
				return v.SetLabel(c.Args().Get(1))
			}
			info, err := v.Info()
			if err != nil {
				return err
			}
			fmt.Println(info.Label)
			return nil
		},
	})
}

func cpCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "cp",
		Usage:     "copy files between the host and volumes",
		ArgsUsage: "SRC... DST",
		Description: `Either side may be VOLUME:/path or a host path; - is standard input or output.

Examples:
   vdisk cp -r ./boot/ disk.img@1:/
   vdisk cp disk.img@1:/EFI/BOOT/BOOTX64.EFI .
   echo hi | vdisk cp - disk.img@1:/hello.txt`,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "r", Usage: "copy directories recursively"}},
		Action: func(c *cli.Context) (err error) {
			args := c.Args().Slice()
			if len(args) < 2 {
				return usagef("cp: want SRC... DST")
			}
			var srcs []vdisk.Address
			for _, s := range args[:len(args)-1] {
				a, err := vdisk.ParseAddress(s, false)
				if err != nil {
					return err
				}
				srcs = append(srcs, a)
			}
			dst, err := vdisk.ParseAddress(args[len(args)-1], false)
			if err != nil {
				return err
			}
			s := newSession("vdisk cp", !dst.IsHost())
			defer func() { err = s.close(err) }()
			if err := s.open(c, append(srcs, dst)...); err != nil {
				return err
			}
			cp := &copier{s: s, recursive: c.Bool("r")}
			dstNode, err := cp.node(dst)
			if err != nil {
				return err
			}
			dstIsDir := dstNode.isDir()
			if len(srcs) > 1 && !dstIsDir {
				return fmt.Errorf("cp: target %s is not a directory", dst)
			}
			for _, src := range srcs {
				srcNode, err := cp.node(src)
				if err != nil {
					return err
				}
				target := dstNode
				if dstIsDir {
					target = dstNode.child(srcNode.base())
				}
				if err := cp.copy(srcNode, target); err != nil {
					return err
				}
			}
			return nil
		},
	})
}

// node is one side of a copy: a host path or a path on a volume.
type node struct {
	vol  *vdisk.Volume // nil for the host
	path string        // host path, or volume path ("." is the root)
	addr vdisk.Address
}

func (n node) String() string {
	if n.vol == nil {
		return n.path
	}
	return n.addr.Image + ":/" + strings.TrimPrefix(n.path, ".")
}

func (n node) isDir() bool {
	if n.path == "-" {
		return false
	}
	if n.vol == nil {
		fi, err := os.Stat(n.path)
		return err == nil && fi.IsDir()
	}
	fi, err := n.vol.Stat(n.path)
	return err == nil && fi.IsDir()
}

func (n node) base() string {
	if n.vol == nil {
		return filepath.Base(n.path)
	}
	return path.Base(n.path)
}

func (n node) child(name string) node {
	if n.vol == nil {
		return node{path: filepath.Join(n.path, name), addr: n.addr}
	}
	return node{vol: n.vol, path: path.Join(n.path, name), addr: n.addr}
}

type copier struct {
	s         *session
	recursive bool
	buf       []byte
}

func (cp *copier) node(a vdisk.Address) (node, error) {
	if a.IsHost() {
		return node{path: a.Path, addr: a}, nil
	}
	v, err := cp.s.volume(a, "vdisk cp")
	if err != nil {
		return node{}, err
	}
	return node{vol: v, path: a.Path, addr: a}, nil
}

func (cp *copier) copy(src, dst node) error {
	if src.isDir() {
		if !cp.recursive {
			return fmt.Errorf("cp: %s is a directory (use -r)", src)
		}
		return cp.copyDir(src, dst)
	}
	return cp.copyFile(src, dst)
}

func (cp *copier) copyDir(src, dst node) error {
	if dst.vol == nil {
		if err := os.MkdirAll(dst.path, 0o755); err != nil {
			return err
		}
	} else if err := dst.vol.MkdirAll(dst.path); err != nil {
		return err
	}
	var names []string
	if src.vol == nil {
		entries, err := os.ReadDir(src.path)
		if err != nil {
			return err
		}
		for _, e := range entries {
			names = append(names, e.Name())
		}
	} else {
		entries, err := src.vol.ReadDir(src.path)
		if err != nil {
			return err
		}
		for _, e := range entries {
			names = append(names, e.Name())
		}
	}
	for _, name := range names {
		if err := cp.copy(src.child(name), dst.child(name)); err != nil {
			return err
		}
	}
	return nil
}

func (cp *copier) copyFile(src, dst node) error {
	var r io.Reader
	var mtime time.Time
	switch {
	case src.vol == nil && src.path == "-":
		r = os.Stdin
	case src.vol == nil:
		f, err := os.Open(src.path)
		if err != nil {
			return err
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil {
			if !fi.Mode().IsRegular() {
				return fmt.Errorf("cp: %s is not a regular file", src)
			}
			mtime = fi.ModTime()
		}
		r = f
	default:
		f, err := src.vol.Open(src.path)
		if err != nil {
			return err
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil {
			mtime = fi.ModTime()
		}
		r = f
	}
	if cp.buf == nil {
		cp.buf = make([]byte, 1<<20)
	}
	switch {
	case dst.vol == nil && dst.path == "-":
		_, err := io.CopyBuffer(os.Stdout, r, cp.buf)
		return err
	case dst.vol == nil:
		f, err := os.Create(dst.path)
		if err != nil {
			return err
		}
		if _, err := io.CopyBuffer(f, r, cp.buf); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if !mtime.IsZero() {
			_ = os.Chtimes(dst.path, mtime, mtime)
		}
		return nil
	default:
		f, err := dst.vol.Create(dst.path)
		if err != nil {
			return err
		}
		if _, err := io.CopyBuffer(struct{ io.Writer }{f}, r, cp.buf); err != nil {
			f.Close()
			if errors.Is(err, iomgr.StatusDiskFull) {
				if info, ierr := dst.vol.Info(); ierr == nil {
					return fmt.Errorf("%w (%s free on %s)", err, humanize.IBytes(uint64(info.FreeBytes)), dst.addr.Image)
				}
			}
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if !mtime.IsZero() {
			return dst.vol.Chtimes(dst.path, time.Time{}, mtime)
		}
		return nil
	}
}
