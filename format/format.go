// Package format writes a FAT file system on a volume of a System, as
// `vdisk format` and `vdisk create` do: it opens the volume's bytes with
// the volume locked through the raw file system (vdisk.Volume.OpenRaw,
// which dismounts what was mounted), formats with package fat, flushes and
// closes, so that the next open mounts the new file system. It holds no
// lock of its own; the volume lock is the file system's.
package format

import (
	"fmt"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/fsd/fat"
	"github.com/vdisk-dev/vdisk/partition"
	"github.com/vdisk-dev/vdisk/volume"
)

// Volume writes a FAT file system on v. It opens the volume's bytes with
// the volume locked (Volume.OpenRaw, which dismounts what was mounted),
// formats, flushes and closes, which dismounts the raw mount, so the next
// open mounts the new file system. Options left zero are chosen like
// mkfs.fat; the sector size and hidden sectors come from the volume.
// Errors begin "format VOLUME: " (v.Name).
func Volume(v *vdisk.Volume, opts fat.FormatOptions) (*fat.FormatResult, error) {
	addr := v.Name
	raw, err := v.OpenRaw(true)
	if err != nil {
		return nil, fmt.Errorf("format %s: %w", addr, err)
	}
	defer raw.Close()
	dev := v.Device
	if opts.SectorSize == 0 {
		opts.SectorSize = int(dev.SectorSize)
	}
	if ext, ok := dev.Extension.(*volume.Extension); ok {
		if pext, ok := ext.Target.Extension.(*partition.Extension); ok && opts.HiddenSectors == 0 {
			opts.HiddenSectors = uint32(pext.Partition.Start / int64(dev.SectorSize))
		}
	}
	res, err := fat.Format(raw, raw.Size(), opts)
	if err != nil {
		return nil, fmt.Errorf("format %s: %w", addr, err)
	}
	if err := raw.Flush(); err != nil {
		return nil, fmt.Errorf("format %s: %w", addr, err)
	}
	if err := raw.Close(); err != nil {
		return nil, fmt.Errorf("format %s: %w", addr, err)
	}
	return res, nil
}
