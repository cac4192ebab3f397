package build

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// tree is what goes into a vfat image: a directory or a file, with the
// host file it comes from. Children are sorted by name (byte order), so
// that the volume's directory entries come in the same order whatever
// order the host's readdir returns them in.
type tree struct {
	name     string
	dir      bool
	src      string // host path of a file; of a directory, "" when it is made here
	size     int64
	mtime    time.Time
	children []*tree
}

// child returns the child directory called name, making it if needed.
func (t *tree) mkdir(name string) (*tree, error) {
	for _, c := range t.children {
		if c.name == name {
			if !c.dir {
				return nil, fmt.Errorf("%q is both a file and a directory", name)
			}
			return c, nil
		}
	}
	c := &tree{name: name, dir: true}
	t.children = append(t.children, c)
	return c, nil
}

func (t *tree) sort() {
	sort.Slice(t.children, func(i, j int) bool { return t.children[i].name < t.children[j].name })
	for _, c := range t.children {
		if c.dir {
			c.sort()
		}
	}
}

// walk visits t and everything below it, parents first, with paths
// relative to t ("" for t itself).
func (t *tree) walk(fn func(rel string, n *tree) error) error {
	var visit func(rel string, n *tree) error
	visit = func(rel string, n *tree) error {
		if err := fn(rel, n); err != nil {
			return err
		}
		for _, c := range n.children {
			if err := visit(path.Join(rel, c.name), c); err != nil {
				return err
			}
		}
		return nil
	}
	return visit("", t)
}

// scanner reads host directories into trees.
type scanner struct {
	exclude map[string]bool // absolute directories left empty (other images' mountpoints)
	seen    map[[2]uint64]bool
}

// scan reads the host path src (a file or a directory, symbolic links
// followed as mcopy follows them) into a tree node called name.
func (s *scanner) scan(src, name string) (*tree, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	n := &tree{name: name, src: src, mtime: fi.ModTime()}
	switch {
	case fi.Mode().IsRegular():
		n.size = fi.Size()
		return n, nil
	case !fi.IsDir():
		return nil, fmt.Errorf("%s is a %s: FAT holds only files and directories", src, fileKind(fi.Mode()))
	}
	n.dir = true
	if s.exclude[filepath.Clean(src)] {
		return n, nil // another image's mountpoint: an empty directory here
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		key := [2]uint64{uint64(st.Dev), uint64(st.Ino)}
		if s.seen[key] {
			return nil, fmt.Errorf("%s: a symbolic link leads back to a directory above it", src)
		}
		s.seen[key] = true
		defer delete(s.seen, key)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		c, err := s.scan(filepath.Join(src, e.Name()), e.Name())
		if err != nil {
			return nil, err
		}
		n.children = append(n.children, c)
	}
	return n, nil
}

func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// mountPath is the host directory an image is filled from, "" for none:
// its srcpath, else the root path's directory at its mountpoint.
func (p *Plan) mountPath(img *Image) string {
	switch {
	case img.Srcpath != "":
		return img.Srcpath
	case !img.filledFromRoot():
		return ""
	}
	return filepath.Join(p.Paths.Root, filepath.FromSlash(img.Mountpoint))
}

// excluded are the directories under the root path that belong to images
// with a mountpoint of their own: an image mounted above them sees them
// empty, as genimage moves them out of its copy of the root.
func (p *Plan) excluded(img *Image) map[string]bool {
	ex := map[string]bool{}
	if img.Srcpath != "" {
		return ex
	}
	for _, other := range p.Config.Images {
		if other.Mountpoint == "" || !other.filledFromRoot() || other.Mountpoint == img.Mountpoint {
			continue
		}
		if img.Mountpoint == "" || strings.HasPrefix(other.Mountpoint+"/", img.Mountpoint+"/") {
			ex[filepath.Join(p.Paths.Root, filepath.FromSlash(other.Mountpoint))] = true
		}
	}
	return ex
}

// content is what a vfat image holds: its files and file sections, or
// else its mount path's tree.
func (p *Plan) content(img *Image) (*tree, error) {
	if t, ok := p.contents[img]; ok {
		return t, nil
	}
	root := &tree{dir: true}
	s := &scanner{exclude: p.excluded(img), seen: map[[2]uint64]bool{}}
	if files := img.VFAT.Files; len(files) > 0 {
		for _, f := range files {
			child := p.Config.Image(f.Image)
			src := p.OutputPath(child)
			target := f.Target
			if target == "" {
				target = filepath.Base(f.Image)
			}
			target = strings.Trim(path.Clean("/"+filepath.ToSlash(target)), "/")
			if target == "" {
				return nil, configErrorf(f.Pos, "image %q: file %q: no name to give it in the volume", img.File, f.Target)
			}
			dir, base := path.Split(target)
			parent := root
			var err error
			for _, d := range strings.Split(strings.Trim(dir, "/"), "/") {
				if d == "" {
					continue
				}
				if parent, err = parent.mkdir(d); err != nil {
					return nil, configErrorf(f.Pos, "image %q: %s: %v", img.File, target, err)
				}
			}
			var n *tree
			if child.Type == "file" {
				if n, err = s.scan(src, base); err != nil {
					return nil, configErrorf(f.Pos, "image %q: %v", img.File, err)
				}
			} else { // built by this configuration, before this image
				n = &tree{name: base, src: src, size: p.Sizes[child]}
			}
			for _, c := range parent.children {
				if c.name == base {
					return nil, configErrorf(f.Pos, "image %q: %s is put into the volume twice", img.File, target)
				}
			}
			parent.children = append(parent.children, n)
		}
	} else if dir := p.mountPath(img); dir != "" {
		t, err := s.scan(dir, "")
		if err != nil {
			return nil, configErrorf(img.Pos, "image %q: its content: %v", img.File, err)
		}
		if !t.dir {
			return nil, configErrorf(img.Pos, "image %q: its content %s is not a directory", img.File, dir)
		}
		root = t
	}
	root.sort()
	p.contents[img] = root
	return root, nil
}

// dirSize is genimage's estimate of a directory's content, which a size
// in % is a share of: each regular file rounded up to 4 KiB, and 4 KiB for
// each directory (its mountpoint directories, left empty, included).
// Other entries (symbolic links among them) count nothing.
func (p *Plan) dirSize(img *Image) (int64, error) {
	dir := p.mountPath(img)
	if dir == "" {
		return 0, nil
	}
	ex := p.excluded(img)
	var walk func(d string) (int64, error)
	walk = func(d string) (int64, error) {
		var size int64 = 4096
		if ex[filepath.Clean(d)] {
			return size, nil
		}
		entries, err := os.ReadDir(d)
		if err != nil {
			return 0, err
		}
		for _, e := range entries {
			switch {
			case e.IsDir():
				n, err := walk(filepath.Join(d, e.Name()))
				if err != nil {
					return 0, err
				}
				size += n
			case e.Type().IsRegular():
				fi, err := e.Info()
				if err != nil {
					return 0, err
				}
				size += roundUp(fi.Size(), 4096)
			}
		}
		return size, nil
	}
	n, err := walk(dir)
	if err != nil {
		return 0, configErrorf(img.Size.Pos, "image %q: measuring its content: %v", img.File, err)
	}
	return n, nil
}

// setupVFAT sizes a vfat image: its size option, or a share of its
// content as genimage estimates it (NN%), or the smallest volume that
// holds its content (auto).
func (p *Plan) setupVFAT(img *Image) error {
	v := img.VFAT
	if len(v.Label) > 11 {
		return configErrorf(v.LabelPos, "image %q: label %q is longer than the 11 bytes a FAT label holds", img.File, v.Label)
	}
	m, err := vfatFlags(img)
	if err != nil {
		return err
	}
	opts := m.Resolve(512)
	t, err := p.content(img)
	if err != nil {
		return err
	}
	var size int64
	switch {
	case !img.Size.Set:
		return configErrorf(img.Pos, "image %q: a vfat image needs a size (bytes, NN%% of its content, or auto)", img.File)
	case img.Size.Percent:
		n, err := p.dirSize(img)
		if err != nil {
			return err
		}
		size = n * img.Size.Bytes / 100
	case img.Size.Auto:
		if size, err = smallestFit(t, opts); err != nil {
			return configErrorf(img.Size.Pos, "image %q: %v", img.File, err)
		}
	default:
		size = img.Size.Bytes
	}
	if size == 0 {
		return configErrorf(img.Size.Pos, "image %q: its size comes out as 0 bytes (an empty content directory?)", img.File)
	}
	if err := p.checkFit(img, t, size, opts); err != nil {
		return err
	}
	p.Sizes[img] = size
	return nil
}
