package build

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/fsd/fat"
)

// A vfat image is formatted by fat.Format with the options genimage would
// have given mkfs.fat (its extraargs, then -n with its label) and filled
// through vdisk's own FAT driver, mounted on the new image in a System of
// its own: what mcopy did for genimage, in name order, with the host's
// mtimes (as mcopy -p keeps them), clamped to the epoch when the build is
// reproducible.

// vfatFlags reads a vfat image's extraargs as mkfs.fat's command line,
// with its label option last (genimage passes "-n LABEL" after them).
func vfatFlags(img *Image) (*fat.MkfsFlags, error) {
	v := img.VFAT
	words, err := splitWords(v.ExtraArgs)
	if err != nil {
		return nil, configErrorf(v.ExtraPos, "image %q: extraargs %v", img.File, err)
	}
	m, rest, err := fat.ParseMkfsFlags(words)
	if err != nil {
		return nil, configErrorf(v.ExtraPos, "image %q: extraargs %q: %v", img.File, v.ExtraArgs, err)
	}
	if len(rest) > 0 {
		return nil, configErrorf(v.ExtraPos, "image %q: extraargs %q: %q is not an option (genimage gives mkfs.fat the image file itself)", img.File, v.ExtraArgs, rest[0])
	}
	if v.Label != "" {
		m.Options.Label = v.Label
	}
	if m.Options.Label != "" {
		if _, err := fat.EncodeVolumeLabel(m.Options.Label, m.Options.CodePage); err != nil {
			pos := v.LabelPos
			if v.Label == "" {
				pos = v.ExtraPos
			}
			return nil, configErrorf(pos, "image %q: label %q: %v", img.File, m.Options.Label, errors.Unwrap(err))
		}
	}
	return m, nil
}

// formatOptions are the options a vfat image is formatted with: its flags,
// and in a reproducible build the epoch as the label's time and a volume
// serial derived from the seed and the image's name, unless the flags give
// them.
func (p *Plan) formatOptions(img *Image) (fat.FormatOptions, error) {
	m, err := vfatFlags(img)
	if err != nil {
		return fat.FormatOptions{}, err
	}
	o := m.Resolve(512)
	if !m.Invariant {
		if now, ok := p.opts.Repro.Now(); ok {
			o.Time = now
			if !o.HasVolumeID {
				o.VolumeID, o.HasVolumeID = p.ids.volumeID(img), true
			}
		}
	}
	return o, nil
}

func (p *Plan) generateVFAT(img *Image, out string) error {
	t, err := p.content(img)
	if err != nil {
		return err
	}
	opts, err := p.formatOptions(img)
	if err != nil {
		return err
	}
	size := p.Sizes[img]
	p.logf(1, img, "writing %s: %d bytes", out, size)
	tmp := tempName(out)
	f, err := disk.CreateFile(tmp, size)
	if err != nil {
		return fmt.Errorf("image %q: creating %s: %w", img.File, tmp, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("image %q: %w", img.File, err)
	}
	if err := p.formatAndFill(img, tmp, opts, t); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("image %q: %w", img.File, err)
	}
	return nil
}

// copyTree writes t into the volume: directories before what they hold,
// children in name order, each file's data then its time; a directory's
// time is set once everything in it is written.
func (p *Plan) copyTree(v *vdisk.Volume, t *tree) error {
	buf := make([]byte, 1<<20)
	var copyDir func(dir string, n *tree) error
	copyDir = func(dir string, n *tree) error {
		for _, c := range n.children {
			name := path.Join(dir, c.name)
			if c.dir {
				if err := v.Mkdir(name); err != nil {
					return err
				}
				if err := copyDir(name, c); err != nil {
					return err
				}
				if err := v.Chtimes(name, time.Time{}, p.opts.Repro.Stamp(c.mtime)); err != nil {
					return err
				}
				continue
			}
			if err := p.copyFile(v, name, c, buf); err != nil {
				return err
			}
		}
		return nil
	}
	return copyDir("", t)
}

func (p *Plan) copyFile(v *vdisk.Volume, name string, n *tree, buf []byte) error {
	in, err := os.Open(n.src)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := v.Create(name)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(f, io.LimitReader(in, n.size), buf); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := f.Chtimes(time.Time{}, p.opts.Repro.Stamp(n.mtime)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
