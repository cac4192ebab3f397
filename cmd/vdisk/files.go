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
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
	specs := c.StringSlice("filter")
	if c.Bool("trace") {
		// --trace needs the monitor and the disk trace once each, whether
		// or not --filter named them too.
		for _, need := range []string{"monitor", "trace"} {
			if !slices.ContainsFunc(specs, func(sp string) bool { name, _, _ := strings.Cut(sp, ":"); return name == need }) {
				specs = append(specs, need)
			}
		}
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
		return a, usagef("%s: %s is not IMAGE[@N]:/path: %s", cmd, s, vdisk.NotVolumeReason(s))
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
		Description: `A FAT label is at most 11 characters of the code page, without control characters
or any of *?/\|.,;:+=[]<>"; it is stored upper-cased. "" removes the label.

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

func cpCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "cp",
		Usage:     "copy files between the host and volumes",
		ArgsUsage: "SRC... DST",
		Description: `Either side may be VOLUME:/path or a host path; - is standard input or output.
With several SRCs, or a SRC directory, DST is a directory; a SRC directory is copied
into it under its own name (with -r). Modification times are kept. A copy that finds
the volume full is removed, and the error says how much room there was.
When standard error is a terminal, a progress bar counts the bytes.

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
			s := newSession("vdisk cp", !dst.IsHost(), c.Bool("sync"))
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
				return fmt.Errorf("cp: target %s is not a directory (copying %d sources)", dstNode, len(srcs))
			}
			var srcNodes []node
			for _, src := range srcs {
				n, err := cp.node(src)
				if err != nil {
					return err
				}
				if err := n.check(); err != nil {
					return err
				}
				srcNodes = append(srcNodes, n)
			}
			if s.progress {
				total := int64(0)
				for _, n := range srcNodes {
					size := cp.size(n)
					if size < 0 {
						total = -1
						break
					}
					total += size
				}
				cp.bar = newProgress(os.Stderr, true, total, "copying")
				defer func() { cp.bar.finish(err) }()
			}
			for _, srcNode := range srcNodes {
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
	addr vdisk.Address // the volume's address, for messages
}

// String is the node as the user would type it.
func (n node) String() string {
	if n.vol == nil {
		return n.path
	}
	return vdisk.Address{Image: n.addr.Image, Partition: n.addr.Partition, Path: n.path, HasPath: true}.String()
}

// check reports a source that does not exist, naming it.
func (n node) check() error {
	if n.vol == nil {
		if n.path == "-" {
			return nil
		}
		if _, err := os.Stat(n.path); err != nil {
			return hostError(n.path, err)
		}
		return nil
	}
	_, err := n.vol.Stat(n.path)
	return explain("cp", n.addr, n.vol, err)
}

// hostError says what went wrong with a host path in the words of the
// other file errors ("cp PATH: no such file or directory").
func hostError(p string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &explained{msg: fmt.Sprintf("cp %s: %v", p, pe.Err), err: err}
	}
	return fmt.Errorf("cp %s: %w", p, err)
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

// copier copies nodes, sharing one buffer and one progress bar.
type copier struct {
	s         *session
	recursive bool
	buf       []byte
	bar       *progress // nil: no bar
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

// size is the number of bytes copying n will move (what -r would copy of
// a directory), or -1 when it cannot be known up front (standard input).
func (cp *copier) size(n node) int64 {
	switch {
	case n.vol == nil && n.path == "-":
		return -1
	case n.vol == nil:
		var total int64
		_ = filepath.WalkDir(n.path, func(_ string, d fs.DirEntry, err error) error {
			if err != nil || !cp.recursive && d.IsDir() && total > 0 {
				return nil
			}
			if d.Type().IsRegular() {
				if fi, err := d.Info(); err == nil {
					total += fi.Size()
				}
			}
			return nil
		})
		return total
	}
	fi, err := n.vol.Stat(n.path)
	if err != nil {
		return 0
	}
	if !fi.IsDir() {
		return fi.Size()
	}
	if !cp.recursive {
		return 0
	}
	var total int64
	_ = fs.WalkDir(n.vol, n.path, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	return total
}

func (cp *copier) copy(src, dst node) error {
	if src.isDir() {
		if !cp.recursive {
			return fmt.Errorf("cp %s: is a directory (use -r)", src)
		}
		return cp.copyDir(src, dst)
	}
	return cp.copyFile(src, dst)
}

func (cp *copier) copyDir(src, dst node) error {
	if dst.vol == nil {
		if err := os.MkdirAll(dst.path, 0o755); err != nil {
			return hostError(dst.path, err)
		}
	} else if err := dst.vol.MkdirAll(dst.path); err != nil {
		return explain("cp", dst.addr, dst.vol, err)
	}
	var entries []fs.DirEntry
	var err error
	if src.vol == nil {
		if entries, err = os.ReadDir(src.path); err != nil {
			return hostError(src.path, err)
		}
	} else if entries, err = src.vol.ReadDir(src.path); err != nil {
		return explain("cp", src.addr, src.vol, err)
	}
	for _, e := range entries {
		s, d := src.child(e.Name()), dst.child(e.Name())
		// The entry's type spares a stat per child; a symbolic link is
		// followed, so copy decides what it points to.
		switch {
		case e.Type()&fs.ModeSymlink != 0:
			err = cp.copy(s, d)
		case e.IsDir():
			err = cp.copyDir(s, d)
		default:
			err = cp.copyFile(s, d)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (cp *copier) copyFile(src, dst node) error {
	var r io.Reader
	var mtime time.Time
	size := int64(-1)
	switch {
	case src.vol == nil && src.path == "-":
		r = os.Stdin
	case src.vol == nil:
		f, err := os.Open(src.path)
		if err != nil {
			return hostError(src.path, err)
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil {
			if !fi.Mode().IsRegular() {
				return fmt.Errorf("cp %s: not a regular file", src)
			}
			mtime, size = fi.ModTime(), fi.Size()
		}
		r = f
	default:
		f, err := src.vol.Open(src.path)
		if err != nil {
			return explain("cp", src.addr, src.vol, err)
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil {
			mtime, size = fi.ModTime(), fi.Size()
		}
		r = f
	}
	if cp.bar != nil {
		r = &countingReader{r: r, p: cp.bar}
	}
	// Hide *os.File's WriteTo: io.CopyBuffer would hand the copy to it, and
	// for a destination that is not a socket or file it allocates a fresh
	// 32 KiB buffer per file instead of using cp.buf.
	r = struct{ io.Reader }{r}
	if cp.buf == nil {
		cp.buf = make([]byte, 1<<20)
	}
	// Read errors come from the source and write errors from the
	// destination; each is explained in the terms of its own side.
	readErr := func(err error) error {
		if src.vol != nil {
			return explain("cp", src.addr, src.vol, err)
		}
		return hostError(src.path, err)
	}
	switch {
	case dst.vol == nil && dst.path == "-":
		_, err := io.CopyBuffer(os.Stdout, r, cp.buf)
		return err
	case dst.vol == nil:
		f, err := os.Create(dst.path)
		if err != nil {
			return hostError(dst.path, err)
		}
		w := &sideWriter{w: f}
		if _, err := io.CopyBuffer(w, r, cp.buf); err != nil {
			f.Close()
			if w.err != nil {
				return hostError(dst.path, err)
			}
			return readErr(err)
		}
		if err := f.Close(); err != nil {
			return hostError(dst.path, err)
		}
		if !mtime.IsZero() {
			_ = os.Chtimes(dst.path, mtime, mtime)
		}
		return nil
	default:
		f, err := dst.vol.Create(dst.path)
		if err != nil {
			return explain("cp", dst.addr, dst.vol, err)
		}
		w := &sideWriter{w: f}
		if _, err := io.CopyBuffer(w, r, cp.buf); err != nil {
			f.Close()
			if w.err == nil {
				return readErr(err)
			}
			if errors.Is(err, iomgr.StatusDiskFull) {
				return cp.full(src, dst, size, err)
			}
			return explain("cp", dst.addr, dst.vol, err)
		}
		// The time is set on the open handle, after the last write (which
		// set it to now), sparing a second open.
		if !mtime.IsZero() {
			if err := f.Chtimes(time.Time{}, mtime); err != nil {
				f.Close()
				return explain("cp", dst.addr, dst.vol, err)
			}
		}
		if err := f.Close(); err != nil {
			return explain("cp", dst.addr, dst.vol, err)
		}
		return nil
	}
}

// full reports a copy that ran out of room. The partial file is removed,
// so the volume is left as it was and the free space reported is what
// there was for the file.
func (cp *copier) full(src, dst node, size int64, err error) error {
	_ = dst.vol.Remove(dst.path)
	need := ""
	if size >= 0 {
		need = fmt.Sprintf("; %s is %s", src, humanize.IBytes(uint64(size)))
	}
	return &explained{msg: fmt.Sprintf("cp %s: %s%s (%s)", dst, fullReason(dst.vol), need, iomgr.StatusDiskFull.Name()), err: err}
}

// sideWriter remembers whether a failed copy failed on the write side:
// io.Copy returns read and write errors alike.
type sideWriter struct {
	w   io.Writer
	err error
}

func (s *sideWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err != nil {
		s.err = err
	}
	return n, err
}
