package build

import (
	"fmt"
	"time"

	"github.com/vdisk-dev/vdisk"
)

// fill mounts the formatted image file with vdisk's FAT driver, in a
// System of its own, and copies t into it.
func (p *Plan) fill(img *Image, file string, t *tree) (err error) {
	o := vdisk.Options{Requestor: "vdisk build"}
	if now, ok := p.clock(); ok {
		o.FAT.Now, o.FAT.Location = func() time.Time { return now }, time.UTC
	}
	sys := vdisk.New(o)
	defer func() {
		if cerr := sys.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	im, err := sys.AddImage(file, false)
	if err != nil {
		return err
	}
	v, err := sys.OpenVolume(im.Name, "vdisk build")
	if err != nil {
		return err
	}
	if err := p.copyTree(fatVolume{v}, t); err != nil {
		return err
	}
	if err := v.Dismount(false); err != nil {
		return fmt.Errorf("dismounting: %w", err)
	}
	return nil
}

// fatVolume is the volumeWriter of a mounted vdisk.Volume.
type fatVolume struct{ v *vdisk.Volume }

func (f fatVolume) Mkdir(name string) error { return f.v.Mkdir(name) }

func (f fatVolume) Chtimes(name string, atime, mtime time.Time) error {
	return f.v.Chtimes(name, atime, mtime)
}

func (f fatVolume) create(name string) (fileWriter, error) { return f.v.Create(name) }
