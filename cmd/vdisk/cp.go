package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"
	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/fsd/fat"
	"github.com/vdisk-dev/vdisk/iomgr"
)

func cpCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "cp",
		Usage:     "copy files between the host and volumes, or a file to and from a volume's bytes",
		ArgsUsage: "SRC... DST",
		Description: `Either side may be VOLUME:/path or a host path; - is standard input or output.
With several SRCs, or a SRC directory, DST is a directory; a SRC directory is copied
into it under its own name (with -r). A DST ending in / must be a directory, unless
SRC is one (then it is made). Modification times are kept. When standard error is a
terminal, a progress bar counts the bytes.

Nothing is lost: a directory is never copied into itself, nor a file onto itself;
names that FAT holds as one (FAT ignores case: Index.html and index.html) are
reported and the later one is not copied; a file of 4 GiB or more, which FAT cannot
hold, is refused before anything is written; a copy that fails (the volume full, a
write refused) is removed, and the error says why. One entry that cannot be copied
does not stop the others: each failure is reported and cp exits 1.

An operand IMAGE@N without :/path is partition N's bytes, as dd would see them:
copying a file to it writes the partition (refused if the file is larger; zero blocks
and the source's holes become holes in the image; the rest of the partition reads as
zeros after); copying from it reads the partition (holes stay holes in a host file).
As the destination, an existing IMAGE without a partition table that holds a FAT file
system (a superfloppy) is its volume's bytes too: the file is written into it, and
the image keeps its size. A whole image with a partition table is an ordinary file.

Examples:
   vdisk cp -r ./boot/ disk.img@1:/
   vdisk cp disk.img@1:/EFI/BOOT/BOOTX64.EFI .
   echo hi | vdisk cp - disk.img@1:/hello.txt
   vdisk cp rootfs.ext4 sd.img@2
   vdisk cp sd.img@1 boot.vfat`,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "r", Usage: "copy directories recursively"}},
		Action: func(c *cli.Context) (err error) {
			args := c.Args().Slice()
			if len(args) < 2 {
				return usagef("cp: want SRC... DST")
			}
			var srcs []operand
			for _, s := range args[:len(args)-1] {
				op, err := copyOperand(s, false)
				if err != nil {
					return err
				}
				srcs = append(srcs, op)
			}
			dst, err := copyOperand(args[len(args)-1], true)
			if err != nil {
				return err
			}
			s := newSession("vdisk cp", !dst.addr.IsHost(), c.Bool("sync"))
			defer func() { err = s.close(err) }()
			addrs := []Address{dst.addr}
			for _, op := range srcs {
				addrs = append(addrs, op.addr)
			}
			if err := s.open(c, addrs...); err != nil {
				return err
			}
			cp := &copier{s: s, recursive: c.Bool("r"), written: map[string]copied{}}
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
				// A missing source is reported; the others are copied.
				if err := n.check(); err != nil {
					cp.fail(err)
					continue
				}
				srcNodes = append(srcNodes, n)
			}
			if dst.slash && !dstIsDir && len(srcNodes) == 1 && !(srcNodes[0].isDir() && cp.recursive) {
				// DST/ names a directory; only a directory copied
				// there may create it.
				if dstNode.exists() {
					return fmt.Errorf("cp %s: is a file, not a directory", dst.text)
				}
				hint := ""
				if dstNode.vol != nil {
					hint = "; vdisk mkdir makes one"
				}
				return fmt.Errorf("cp %s: no such directory (a trailing / names a directory%s)", dst.text, hint)
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
				err := cp.overlap(srcNode, target)
				if err == nil {
					err = cp.copy(srcNode, target)
				}
				if err != nil && stopsCopy(err) {
					return cp.result(err)
				}
				if err != nil {
					cp.fail(err)
				}
			}
			return cp.result(nil)
		},
	})
}

// operand is a parsed operand of cp.
type operand struct {
	addr Address
	// raw is set for a volume's bytes: IMAGE@N without :/path.
	raw bool
	// text is the operand as typed; slash is set when it ends in / (or
	// /.), which names a directory.
	text  string
	slash bool
}

// copyOperand parses an operand of cp: VOLUME:/path or a host path, or
// without :/path a volume's bytes: IMAGE@N of an existing image, or, as the
// destination, an existing superfloppy image that holds a FAT file system.
// As a source, such an IMAGE is its own bytes either way, so it stays a host
// file; an image with a partition table stays one on both sides, so that
// copying disk.img copies the whole disk.
func copyOperand(s string, dst bool) (operand, error) {
	op := operand{text: s, slash: strings.HasSuffix(s, "/") || strings.HasSuffix(s, "/.")}
	a, err := parseAddress(s, false)
	if err != nil {
		return op, err
	}
	op.addr = a
	if !a.IsHost() {
		// rbd:POOL/IMAGE[@N] without :/path is a volume's bytes.
		op.raw = !a.HasPath
		return op, nil
	}
	if s == "-" {
		return op, nil
	}
	v, err := parseAddress(s, true)
	switch {
	case err != nil:
	case v.Partition > 0:
		op.addr, op.raw = v, true
	case dst:
		floppy, err := isFATSuperfloppy(v.Image)
		if err != nil {
			return op, err
		}
		if floppy {
			op.addr, op.raw = v, true
		}
	}
	return op, nil
}

// isFATSuperfloppy reports whether path is an image without a partition
// table whose whole disk holds a file system vdisk recognises. It looks in
// a System of its own, read-only, so that a host file that is no image is
// never opened for writing. A file it cannot read is an error rather than
// "no image": taking an image for a host file would replace it.
func isFATSuperfloppy(path string) (bool, error) {
	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() || fi.Size() < 512 {
		return false, nil
	}
	sys := vdisk.New(vdisk.Options{Requestor: "vdisk cp"})
	defer sys.Close()
	img, err := sys.AddImageForceShare(path) // a probe: the copy itself takes the lock
	if err != nil {
		return false, fmt.Errorf("cp %s: cannot tell whether it is a disk image: %w", path, err)
	}
	if len(img.Partitions) > 0 || len(img.Volumes) != 1 {
		return false, nil
	}
	v, err := sys.Volume(img, 0)
	return err == nil && hasFileSystem(v), nil
}

// node is one side of a copy: a host path, a path on a volume, or a
// volume's bytes.
type node struct {
	vol  *vdisk.Volume // nil for the host
	path string        // host path, or volume path ("." is the root)
	addr Address       // the volume's address, for messages
	raw  bool          // the volume's bytes, not a path on it
}

// String is the node as the user would type it.
func (n node) String() string {
	switch {
	case n.vol == nil:
		return n.path
	case n.raw:
		return Address{Image: n.addr.Image, Partition: n.addr.Partition}.String()
	}
	return Address{Image: n.addr.Image, Partition: n.addr.Partition, Path: n.path, HasPath: true}.String()
}

// check reports a source that does not exist, naming it.
func (n node) check() error {
	switch {
	case n.raw:
		return nil
	case n.vol == nil:
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

// exists reports whether n names something (for messages).
func (n node) exists() bool {
	switch {
	case n.raw:
		return true
	case n.vol == nil:
		_, err := os.Stat(n.path)
		return err == nil
	}
	_, err := n.vol.Stat(n.path)
	return err == nil
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
	if n.path == "-" || n.raw {
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
	if n.vol == nil || n.raw {
		return filepath.Base(n.String())
	}
	return path.Base(n.path)
}

func (n node) child(name string) node {
	if n.vol == nil {
		return node{path: filepath.Join(n.path, name), addr: n.addr}
	}
	return node{vol: n.vol, path: path.Join(n.path, name), addr: n.addr}
}

// identity names the file or directory n is for as long as it exists,
// however its name is spelt: the volume's file ID, or for the host the
// absolute path. ok is false when n does not exist.
func (n node) identity() (key string, ok bool) {
	if n.vol != nil {
		id, err := n.vol.FileID(n.path)
		if err != nil {
			return "", false
		}
		return volumeKey(n.vol, id), true
	}
	if _, err := os.Stat(n.path); err != nil {
		return "", false
	}
	return hostKey(n.path), true
}

// hostKey is the identity of a host path: the path made absolute (a host
// file system that ignores case is not told apart).
func hostKey(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	return "host\x00" + p
}

func volumeKey(v *vdisk.Volume, id int64) string {
	return v.Name + "\x00" + strconv.FormatInt(id, 10)
}

// copier copies nodes, sharing one buffer and one progress bar, and
// remembers what it wrote so that no later entry overwrites it.
type copier struct {
	s         *session
	recursive bool
	buf       []byte
	bar       *progress // nil: no bar
	// written holds every destination this run wrote, by identity, with
	// the source it came from: a later source that lands on one of them
	// has a name the destination holds as the same (FAT ignores case).
	written map[string]copied
	// failed are the entries that could not be copied, reported at the end.
	failed []error
}

// copied is a destination written in this run and its source.
type copied struct{ src, dst node }

func (cp *copier) node(op operand) (node, error) {
	a := op.addr
	if a.IsHost() {
		return node{path: a.Path, addr: a}, nil
	}
	v, err := cp.s.volume(a)
	if err != nil {
		return node{}, err
	}
	return node{vol: v, path: a.Path, addr: a, raw: op.raw}, nil
}

// fail records an entry that could not be copied; the copy goes on.
func (cp *copier) fail(err error) { cp.failed = append(cp.failed, err) }

// result is the command's error: every entry that failed, then err (one
// that stopped the copy), each printed on a line of its own.
func (cp *copier) result(err error) error {
	errs := cp.failed
	if err != nil {
		errs = append(errs, err)
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return failures(errs)
}

// stopsCopy reports whether err stops the whole copy rather than one entry:
// the volume or the host's file system is full, read-only or corrupt, or
// the device failed, and every later entry would fail the same way.
func stopsCopy(err error) bool {
	var st iomgr.Status
	if errors.As(err, &st) {
		switch st {
		case iomgr.StatusDiskFull, iomgr.StatusMediaWriteProtected, iomgr.StatusFileCorruptError,
			iomgr.StatusDiskCorruptError, iomgr.StatusVolumeDismounted:
			return true
		}
	}
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EDQUOT)
}

// overlap refuses a copy of something onto itself, or of a directory into
// itself (which would never end), as GNU cp does. Identity decides, not
// names: FAT names ignore case, and a host path may take many spellings.
func (cp *copier) overlap(src, dst node) error {
	switch {
	case src.vol != nil && dst.vol != nil && src.vol.Name == dst.vol.Name:
		if src.raw || dst.raw {
			return fmt.Errorf("cp: %s and %s are on one volume: the copy would overwrite what it reads", src, dst)
		}
		sid, err := src.vol.FileID(src.path)
		if err != nil {
			return nil // the copy itself says why
		}
		for p := dst.path; ; p = path.Dir(p) {
			if id, err := dst.vol.FileID(p); err == nil && id == sid {
				return overlapError(src, dst, p == dst.path)
			}
			if p == "." {
				return nil
			}
		}
	case src.vol == nil && dst.vol == nil && src.path != "-" && dst.path != "-":
		sfi, err := os.Stat(src.path)
		if err != nil {
			return nil
		}
		p, err := filepath.Abs(dst.path)
		if err != nil {
			return nil
		}
		for first := true; ; first = false {
			if fi, err := os.Stat(p); err == nil && os.SameFile(fi, sfi) {
				return overlapError(src, dst, first)
			}
			parent := filepath.Dir(p)
			if parent == p {
				return nil
			}
			p = parent
		}
	}
	return nil
}

// overlapError says that src is dst (same) or holds it.
func overlapError(src, dst node, same bool) error {
	if same {
		return fmt.Errorf("cp: %s and %s are the same file", src, dst)
	}
	return fmt.Errorf("cp: cannot copy a directory, %s, into itself, %s", src, dst)
}

// collision reports src landing on a destination this run wrote from
// another source: the destination's file system holds both names as one.
func (cp *copier) collision(src, dst node, prev copied) error {
	if src.base() == prev.src.base() {
		return fmt.Errorf("cp %s: will not overwrite %s, just copied from %s", src, prev.dst, prev.src)
	}
	why := "FAT names ignore case"
	if !strings.EqualFold(src.base(), prev.src.base()) {
		why = "FAT holds both names as one"
	}
	return fmt.Errorf("cp %s: not copied: on the volume it is %s, just copied from %s (%s)", src, prev.dst, prev.src, why)
}

// size is the number of bytes copying n will move (what -r would copy of
// a directory), or -1 when it cannot be known up front (standard input).
func (cp *copier) size(n node) int64 {
	switch {
	case n.raw:
		return n.vol.Size()
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
	switch {
	case src.raw || dst.raw:
		return cp.copyRaw(src, dst)
	case src.isDir():
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
	if key, ok := dst.identity(); ok {
		// Two sources of one name merge, as with GNU cp; two names
		// that the volume holds as one do not.
		if prev, seen := cp.written[key]; seen && prev.src.base() != src.base() {
			return cp.collision(src, dst, prev)
		}
		cp.written[key] = copied{src: src, dst: dst}
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
			if err = s.check(); err == nil {
				err = cp.copy(s, d)
			}
		case e.IsDir():
			err = cp.copyDir(s, d)
		default:
			err = cp.copyFile(s, d)
		}
		if err != nil && stopsCopy(err) {
			return err
		}
		if err != nil {
			cp.fail(err)
		}
	}
	return nil
}

// source is an open source of a file copy.
type source struct {
	r     io.Reader
	size  int64 // -1: unknown (standard input)
	mtime time.Time
	close func() error
}

// open opens the source of a file copy.
func (cp *copier) open(src node) (source, error) {
	noClose := func() error { return nil }
	switch {
	case src.raw:
		rv, err := src.vol.OpenRaw(false)
		if err != nil {
			return source{}, fmt.Errorf("cp %s: %w", src, err)
		}
		return source{r: io.NewSectionReader(rv, 0, rv.Size()), size: rv.Size(), close: rv.Close}, nil
	case src.vol == nil && src.path == "-":
		return source{r: os.Stdin, size: -1, close: noClose}, nil
	case src.vol == nil:
		f, err := os.Open(src.path)
		if err != nil {
			return source{}, hostError(src.path, err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return source{}, hostError(src.path, err)
		}
		if !fi.Mode().IsRegular() {
			f.Close()
			return source{}, fmt.Errorf("cp %s: not a regular file", src)
		}
		return source{r: f, size: fi.Size(), mtime: fi.ModTime(), close: f.Close}, nil
	}
	f, err := src.vol.Open(src.path)
	if err != nil {
		return source{}, explain("cp", src.addr, src.vol, err)
	}
	in := source{r: f, size: -1, close: f.Close}
	if fi, err := f.Stat(); err == nil {
		in.mtime, in.size = fi.ModTime(), fi.Size()
	}
	return in, nil
}

// claim records dst as written from src, or reports the collision when
// this run wrote it already from another source.
func (cp *copier) claim(key string, src, dst node) error {
	if prev, seen := cp.written[key]; seen {
		return cp.collision(src, dst, prev)
	}
	cp.written[key] = copied{src: src, dst: dst}
	return nil
}

func (cp *copier) copyFile(src, dst node) error {
	in, err := cp.open(src)
	if err != nil {
		return err
	}
	defer in.close()
	if dst.vol != nil && in.size > fat.MaxFileSize {
		return fmt.Errorf("cp %s: %s is %s, more than a FAT file can hold (4 GiB less one byte)", dst, src, humanize.IBytes(uint64(in.size)))
	}
	r := in.r
	if cp.bar != nil {
		r = &countingReader{r: r, p: cp.bar}
	}
	// Hide *os.File's WriteTo: io.CopyBuffer would hand the copy to it, and
	// for a destination that is not a socket or file it allocates a fresh
	// 32 KiB buffer per file instead of using cp.buf.
	r = struct{ io.Reader }{r}
	buf := cp.buffer()
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
		_, err := io.CopyBuffer(os.Stdout, r, buf)
		return err
	case dst.vol == nil:
		key := hostKey(dst.path)
		if err := cp.claim(key, src, dst); err != nil {
			return err
		}
		f, err := os.Create(dst.path)
		if err != nil {
			delete(cp.written, key)
			return hostError(dst.path, err)
		}
		// A copy that fails leaves no partial file.
		discard := func(err error) error {
			f.Close()
			os.Remove(dst.path)
			delete(cp.written, key)
			return err
		}
		w := &sideWriter{w: f}
		if _, err := io.CopyBuffer(w, r, buf); err != nil {
			if w.err != nil {
				return discard(hostError(dst.path, err))
			}
			return discard(readErr(err))
		}
		if err := f.Close(); err != nil {
			os.Remove(dst.path)
			delete(cp.written, key)
			return hostError(dst.path, err)
		}
		if !in.mtime.IsZero() {
			_ = os.Chtimes(dst.path, in.mtime, in.mtime)
		}
		return nil
	}
	// Open without truncating: the file may be one this run wrote under
	// another name's spelling, which must be kept.
	f, err := dst.vol.OpenFile(dst.path, os.O_RDWR|os.O_CREATE)
	if err != nil {
		return explain("cp", dst.addr, dst.vol, err)
	}
	id, err := f.ID()
	if err != nil {
		f.Close()
		return explain("cp", dst.addr, dst.vol, err)
	}
	key := volumeKey(dst.vol, id)
	if err := cp.claim(key, src, dst); err != nil {
		f.Close()
		return err
	}
	// A copy that fails leaves no partial file, whether it was new or
	// replaced one (whose old contents the truncation took).
	discard := func(err error) error {
		f.Close()
		_ = dst.vol.Remove(dst.path)
		delete(cp.written, key)
		if errors.Is(err, iomgr.StatusDiskFull) {
			return cp.full(src, dst, in.size, err)
		}
		return explain("cp", dst.addr, dst.vol, err)
	}
	if fi, err := f.Stat(); err != nil {
		return discard(err)
	} else if fi.Size() > 0 {
		if err := f.Truncate(0); err != nil {
			return discard(err)
		}
	}
	w := &sideWriter{w: f}
	if _, err := io.CopyBuffer(w, r, buf); err != nil {
		if w.err == nil {
			f.Close()
			_ = dst.vol.Remove(dst.path)
			delete(cp.written, key)
			return readErr(err)
		}
		return discard(err)
	}
	// The time is set on the open handle, after the last write (which
	// set it to now), sparing a second open.
	if mtime := reproducible.Stamp(in.mtime); !mtime.IsZero() {
		if err := f.Chtimes(time.Time{}, mtime); err != nil {
			return discard(err)
		}
	}
	if err := f.Close(); err != nil {
		_ = dst.vol.Remove(dst.path)
		delete(cp.written, key)
		return explain("cp", dst.addr, dst.vol, err)
	}
	return nil
}

// full reports a copy that ran out of room; the partial file is gone (see
// copyFile), so the free space reported is what there was for the file.
func (cp *copier) full(src, dst node, size int64, err error) error {
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
