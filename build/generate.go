package build

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vdisk-dev/vdisk/disk"
)

// Build makes every image of the plan, in order. Each image is written to
// a temporary file beside its output and renamed into place when whole, so
// that a failed build leaves no partial image (genimage removes a failed
// one); temporary images are removed at the end, as genimage empties its
// temporary directory.
func (p *Plan) Build() (err error) {
	var temps []string
	defer func() {
		for _, t := range temps {
			os.Remove(t)
		}
		p.removeViews()
	}()
	for _, img := range p.Order {
		out := p.OutputPath(img)
		if img.Type != "file" || img.FileImage.Copy {
			if err := os.MkdirAll(filepath.Dir(out), 0o777); err != nil {
				return fmt.Errorf("image %q: %w", img.File, err)
			}
		}
		if err := p.exec(img, img.ExecPre, "exec-pre"); err != nil {
			return err
		}
		if err := p.generate(img, out); err != nil {
			return err
		}
		if img.Temporary {
			temps = append(temps, out)
		}
		if err := p.exec(img, img.ExecPost, "exec-post"); err != nil {
			return err
		}
	}
	return nil
}

func (p *Plan) generate(img *Image, out string) error {
	switch img.Type {
	case "file":
		if !img.FileImage.Copy || p.Inputs[img] == out {
			return nil
		}
		p.logf(1, img, "copying %s to %s", p.Inputs[img], out)
		return p.writeAtomically(img, out, p.Sizes[img], func(dst *disk.FileStore) error {
			return copySparse(dst, 0, p.Inputs[img], 0, p.Sizes[img], true)
		})
	case "hdimage":
		return p.generateHD(img, out)
	case "vfat":
		return p.generateVFAT(img, out)
	}
	return fmt.Errorf("image %q: unknown type %s", img.File, img.Type)
}

// writeAtomically writes an image of size bytes through fill into a
// temporary file next to out, syncs it and renames it over out.
func (p *Plan) writeAtomically(img *Image, out string, size int64, fill func(*disk.FileStore) error) error {
	tmp := tempName(out)
	dst, err := disk.CreateFile(tmp, size)
	if err != nil {
		return fmt.Errorf("image %q: creating %s: %w", img.File, tmp, err)
	}
	ok := false
	defer func() {
		if !ok {
			dst.Close()
			os.Remove(tmp)
		}
	}()
	if err := fill(dst); err != nil {
		return fmt.Errorf("image %q: %w", img.File, err)
	}
	if err := dst.Sync(); err != nil {
		return fmt.Errorf("image %q: %w", img.File, err)
	}
	if err := dst.Close(); err != nil {
		return fmt.Errorf("image %q: %w", img.File, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("image %q: %w", img.File, err)
	}
	ok = true
	return nil
}

// tempName is where an image is written before it is renamed into place.
func tempName(out string) string {
	return filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".vdisk-build")
}

// generateHD writes an hdimage: each partition's image where the layout
// put it, then the partition tables, keeping whatever a boot loader put in
// the first 440 bytes.
func (p *Plan) generateHD(img *Image, out string) error {
	l := p.Layouts[img]
	p.logf(1, img, "writing %s: %s table, %d bytes", out, l.TableType, l.Size)
	return p.writeAtomically(img, out, l.FileSize, func(dst *disk.FileStore) error {
		for _, part := range l.Parts {
			if part.Image == nil {
				continue
			}
			cp := part.Partition
			n := part.DataSize
			if cp.Fill {
				n = part.Size
			}
			if n == 0 {
				continue
			}
			p.logf(2, img, "adding partition %q from %s at offset %d (%d bytes)", part.Name, part.Image.File, part.Offset, n)
			if err := copySparse(dst, part.Offset, p.OutputPath(part.Image), cp.ImageOffset, n, cp.Sparse); err != nil {
				return fmt.Errorf("partition %q: %w", part.Name, err)
			}
		}
		boot := make([]byte, mbrTailOffset)
		if l.FileSize >= mbrTailOffset {
			if _, err := dst.ReadAt(boot, 0); err != nil {
				return err
			}
		}
		t, err := l.Table(boot)
		if err != nil {
			return err
		}
		// Write through WriteAt alone: with a ReaderAt, the table writer
		// would erase what it takes for stale GPT headers in the free
		// space, and in a fresh image they are a boot loader's bytes.
		return t.Write(writeOnly{dst})
	})
}

type writeOnly struct{ w io.WriterAt }

func (w writeOnly) WriteAt(p []byte, off int64) (int, error) { return w.w.WriteAt(p, off) }

// copySparse copies n bytes of the file src from srcOff to dst at dstOff.
// Holes in src stay holes (dst is new, so they read as zeros already)
// when sparse is set, else they are written as zeros; so are the bytes
// beyond src's end, when n reaches past it. Data is copied as it is, zero
// blocks included, as genimage copies it.
func copySparse(dst *disk.FileStore, dstOff int64, src string, srcOff, n int64, sparse bool) error {
	in, err := disk.OpenFile(src, true)
	if err != nil {
		return err
	}
	defer in.Close()
	avail := max(min(in.Size()-srcOff, n), 0)
	exts, err := disk.MapAllocation(in, srcOff, avail)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	pos := int64(0) // bytes of the n done
	for _, e := range exts {
		if e.Hole {
			if !sparse {
				if err := disk.ZeroRange(dst, dstOff+e.Offset-srcOff, e.Length, disk.ZeroNoHole); err != nil {
					return err
				}
			}
			pos = e.End() - srcOff
			continue
		}
		for off := e.Offset; off < e.End(); {
			k := min(int64(len(buf)), e.End()-off)
			if _, err := in.ReadAt(buf[:k], off); err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("reading %s: %w", src, err)
			}
			if _, err := dst.WriteAt(buf[:k], dstOff+off-srcOff); err != nil {
				return err
			}
			off += k
		}
		pos = e.End() - srcOff
	}
	if pos < n && !sparse {
		return disk.ZeroRange(dst, dstOff+pos, n-pos, disk.ZeroNoHole)
	}
	return nil
}

// exec runs an exec-pre or exec-post command with genimage's variables.
func (p *Plan) exec(img *Image, command, what string) error {
	if command == "" {
		return nil
	}
	mount := ""
	if img.filledFromRoot() || img.Srcpath != "" {
		var err error
		if mount, err = p.mountView(img); err != nil {
			return fmt.Errorf("image %q: %s: %w", img.File, what, err)
		}
	}
	shell := "/bin/sh"
	if s, ok := p.opts.lookupEnv("GENIMAGE_SHELL"); ok && s != "" {
		shell = s
	}
	cmd := exec.Command(shell, "-c", command)
	cmd.Env = append(os.Environ(),
		"OUTPUTPATH="+p.Paths.Output, "INPUTPATH="+p.Paths.Input, "ROOTPATH="+p.Paths.Root, "TMPPATH="+p.Paths.Tmp,
		"IMAGE="+img.File, "IMAGEOUTFILE="+p.OutputPath(img), "IMAGENAME="+img.Name,
		"IMAGESIZE="+strconv.FormatInt(p.Sizes[img], 10), "IMAGEMOUNTPOINT="+img.Mountpoint, "IMAGEMOUNTPATH="+mount)
	cmd.Stdout, cmd.Stderr = p.log(), p.log()
	p.logf(1, img, "%s: %s", what, command)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("image %q: %s %q: %w", img.File, what, command, err)
	}
	return nil
}

// mountView makes, for a command to look at, the directory genimage
// calls an image's mount path: the root path's tree at the image's
// mountpoint, less the mountpoints of other images, which appear empty.
// genimage copies the root into the temporary path for that; this makes
// the same view there out of symbolic links (tmppath/root for the root,
// tmppath/mp-PATH for a mountpoint), removed when the build ends. An image
// with a srcpath sees it as it is.
func (p *Plan) mountView(img *Image) (string, error) {
	if img.Srcpath != "" {
		return img.Srcpath, nil
	}
	name := "root"
	if img.Mountpoint != "" {
		name = "mp-" + strings.ReplaceAll(img.Mountpoint, "/", "-")
	}
	view := filepath.Join(p.Paths.Tmp, name)
	if p.views[view] {
		return view, nil
	}
	src := p.mountPath(img)
	ex := p.excluded(img)
	if err := os.MkdirAll(p.Paths.Tmp, 0o777); err != nil {
		return "", err
	}
	if err := os.RemoveAll(view); err != nil {
		return "", err
	}
	// below reports whether dir is, or holds, an excluded directory.
	below := func(dir string) bool {
		for e := range ex {
			if e == dir || strings.HasPrefix(e, dir+string(filepath.Separator)) {
				return true
			}
		}
		return false
	}
	var mirror func(src, dst string) error
	mirror = func(src, dst string) error {
		if !below(src) {
			return os.Symlink(src, dst)
		}
		if err := os.Mkdir(dst, 0o755); err != nil {
			return err
		}
		if ex[src] {
			return nil
		}
		entries, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := mirror(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
				return err
			}
		}
		return nil
	}
	if err := mirror(src, view); err != nil {
		return "", err
	}
	p.views[view] = true
	return view, nil
}

// removeViews removes the mount views exec made.
func (p *Plan) removeViews() {
	for v := range p.views {
		os.RemoveAll(v)
	}
}

func (p *Plan) log() io.Writer {
	if p.opts.Log != nil {
		return p.opts.Log
	}
	return os.Stderr
}

// logf prints a progress line at level or above, genimage-style.
func (p *Plan) logf(level int, img *Image, format string, args ...any) {
	if p.LogLevel < level {
		return
	}
	kind := map[int]string{1: "INFO", 2: "DEBUG"}[level]
	fmt.Fprintf(p.log(), "%s: %s(%s): %s\n", kind, img.Type, img.File, fmt.Sprintf(format, args...))
}
