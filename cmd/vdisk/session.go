package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	"github.com/urfave/cli/v2"
	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/partition"
)

// session opens the images a command names in one System, with the
// filters of --filter (and --trace) loaded.
type session struct {
	sys      *vdisk.System
	writable bool
	images   map[string]*vdisk.Image // by the path the operand named
	filtered bool
	trace    *tracePrinter
	// progress is set when progress bars may draw on stderr: it is a
	// terminal and no --trace writes there.
	progress bool

	// forceShare opens the images without locking them (--force-share).
	forceShare bool
	// ceph says how to reach the cluster of rbd: images (--ceph-conf,
	// --ceph-id).
	ceph disk.RBDOptions
}

// newSession starts a session. fsync says whether flushing the images ends
// in fsync: the file commands leave that to --sync, as cp and mcopy do.
func newSession(requestor string, writable, fsync bool) *session {
	sys := vdisk.New(vdisk.Options{Requestor: requestor, NoFsync: !fsync, FAT: reproducible.FAT()})
	return &session{sys: sys, writable: writable, images: map[string]*vdisk.Image{}}
}

// add opens the images of the given addresses (host paths are skipped).
func (s *session) add(addrs ...Address) error {
	for _, a := range addrs {
		if a.IsHost() || s.images[a.Image] != nil {
			continue
		}
		img, err := addImage(s.sys, a.Image, !s.writable, s.forceShare, s.ceph)
		if err != nil {
			return err
		}
		for _, w := range img.Warnings {
			fmt.Fprintf(os.Stderr, "vdisk: warning: %s: %s\n", a.Image, w)
		}
		s.images[a.Image] = img
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
func (s *session) open(c *cli.Context, addrs ...Address) error {
	s.forceShare = c.Bool("force-share")
	s.ceph = cephOptions(c)
	if err := s.add(addrs...); err != nil {
		return err
	}
	return s.applyFilters(c)
}

// openVolume opens the image of a, loads the filters and returns a's
// volume: what a command on one volume starts with.
func (s *session) openVolume(c *cli.Context, a Address) (*vdisk.Volume, error) {
	if err := s.open(c, a); err != nil {
		return nil, err
	}
	return s.volume(a)
}

// openPaths parses every argument as VOLUME:/path, then opens their images
// and loads the filters.
func (s *session) openPaths(c *cli.Context, cmd string) ([]Address, error) {
	var addrs []Address
	for _, arg := range c.Args().Slice() {
		a, err := volumePath(cmd, arg)
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, a)
	}
	return addrs, s.open(c, addrs...)
}

// volume returns the volume an address is on, adding its image on first
// use. Its errors speak in the operand the user typed and say what the
// image does hold: `disk.img@3: no partition 3 (disk.img has 2
// partitions)`.
func (s *session) volume(a Address) (*vdisk.Volume, error) {
	if a.IsHost() {
		return nil, fmt.Errorf("%s is a host path, not IMAGE[@N]", a.Path)
	}
	if err := s.add(a); err != nil {
		return nil, err
	}
	img := s.images[a.Image]
	vol := Address{Image: a.Image, Partition: a.Partition}
	n := len(img.Partitions)
	switch {
	case a.Partition > 0 && n == 0:
		what := "has no partition table"
		if img.Table.Kind != partition.None {
			what = "has an empty " + img.Table.Kind.String() + " partition table"
		}
		return nil, fmt.Errorf("%s: no partition %d (%s %s: name the whole disk, %s)",
			vol, a.Partition, a.Image, what, Address{Image: a.Image, Path: a.Path, HasPath: a.HasPath})
	case a.Partition > n:
		return nil, fmt.Errorf("%s: no partition %d (%s has %s)", vol, a.Partition, a.Image, plural(n, "partition"))
	case a.Partition == 0 && len(img.Volumes) == 0:
		return nil, fmt.Errorf("%s: no volume (its %s partition table is empty)", a.Image, img.Table.Kind)
	case a.Partition == 0 && len(img.Volumes) > 1:
		return nil, fmt.Errorf("%s has %s: name one, e.g. %s", a.Image, plural(n, "partition"),
			Address{Image: a.Image, Partition: 1, Path: a.Path, HasPath: a.HasPath})
	}
	return s.sys.Volume(img, a.Partition)
}

// plural is "1 partition" or "n partitions".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
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

// cephOptions are the global flags that say how to reach a Ceph cluster.
func cephOptions(c *cli.Context) disk.RBDOptions {
	return disk.RBDOptions{ConfFile: c.String("ceph-conf"), ID: c.String("ceph-id")}
}

// addImage adds an image file or an RBD image to sys, saying plainly when
// it is missing (the library's error would repeat the path through two
// layers of open). forceShare (--force-share) opens it without its lock,
// and only for reading; an image that another process holds is refused
// with a hint at --force-share when this command only reads it.
func addImage(sys *vdisk.System, path string, readOnly, forceShare bool, ceph disk.RBDOptions) (*vdisk.Image, error) {
	if disk.IsRBD(path) {
		if forceShare && !readOnly {
			return nil, errForceShareWrites(path)
		}
		return addRBD(sys, path, readOnly, ceph)
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s: no such image file", path)
	case err == nil && fi.IsDir():
		return nil, fmt.Errorf("%s is a directory, not a disk image file", path)
	case err == nil && fi.Size() < 512:
		return nil, fmt.Errorf("%s is not a disk image: %d bytes is less than one sector", path, fi.Size())
	}
	if forceShare {
		if !readOnly {
			return nil, errForceShareWrites(path)
		}
		return sys.AddImageForceShare(path)
	}
	img, err := sys.AddImage(path, readOnly)
	if readOnly && errors.Is(err, disk.ErrLocked) {
		err = fmt.Errorf("%w; --force-share reads it anyway, though it may be changing", err)
	}
	return img, err
}

// errForceShareWrites refuses --force-share for a command that writes.
func errForceShareWrites(path string) error {
	return usagef("--force-share opens images only for reading, and this command writes %s", path)
}

// addRBD adds the RBD image an operand names. Opened for reading it is
// shared with every other client (no lock, so --force-share changes
// nothing); opened for writing it holds the image's exclusive lock, and a
// lock another client holds is refused naming that client.
func addRBD(sys *vdisk.System, operand string, readOnly bool, ceph disk.RBDOptions) (*vdisk.Image, error) {
	spec, err := disk.ParseRBD(operand)
	if err != nil {
		return nil, usageError{err}
	}
	ceph.ReadOnly = readOnly
	img, err := sys.AddRBD(spec, ceph)
	var locked *disk.RBDLockedError
	if errors.As(err, &locked) {
		err = fmt.Errorf("%w; commands that only read it (and serve --read-only) open it all the same", locked)
	}
	return img, err
}
