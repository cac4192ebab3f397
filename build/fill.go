package build

import (
	"errors"
	"fmt"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/format"
	"github.com/vdisk-dev/vdisk/fsd/fat"
)

// formatAndFill formats the image file (sized, empty) in a System of its
// own, as `vdisk format` would, then mounts it with vdisk's FAT driver and
// copies t into it.
func (p *Plan) formatAndFill(img *Image, file string, opts fat.FormatOptions, t *tree) (err error) {
	sys := vdisk.New(vdisk.Options{Requestor: "vdisk build", FAT: p.opts.Repro.FAT()})
	defer func() {
		if cerr := sys.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("image %q: %w", img.File, cerr)
		}
	}()
	im, err := sys.AddImage(file, false)
	if err != nil {
		return fmt.Errorf("image %q: %w", img.File, err)
	}
	v, err := sys.Volume(im, 0)
	if err != nil {
		return fmt.Errorf("image %q: %w", img.File, err)
	}
	if _, err := format.Volume(v, opts); err != nil {
		if errors.Is(err, fat.ErrFormatOption) || errors.Is(err, fat.ErrVolumeTooSmall) || errors.Is(err, fat.ErrVolumeTooLarge) {
			return configErrorf(img.Pos, "image %q: %v", img.File, err)
		}
		return fmt.Errorf("image %q: %w", img.File, err)
	}
	if err := p.copyTree(v, t); err != nil {
		return fmt.Errorf("image %q: %w", img.File, err)
	}
	if err := v.Dismount(false); err != nil {
		return fmt.Errorf("image %q: dismounting: %w", img.File, err)
	}
	return nil
}
