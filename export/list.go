package export

import (
	"fmt"

	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/nbd"
	"github.com/vdisk-dev/vdisk/partition"
	"github.com/vdisk-dev/vdisk/volume"
)

// Disk is what the exports of one disk image are built from.
type Disk struct {
	// Name is the image's export base name ("disk" for disk.img).
	Name string
	// Device is the disk device.
	Device *iomgr.Device
	// Table is the kind of its partition table, for the description.
	Table partition.Kind
	// Partitioned says whether it has partitions: their volumes are
	// exported too.
	Partitioned bool
	// Volumes are its volume devices: one per partition, or one over the
	// whole disk when it has no partition table.
	Volumes []*iomgr.Device
	// ReadOnly is set when the image was opened read-only.
	ReadOnly bool
	// Shared is set when others may write the image while it is served
	// (opened read-only without a lock that keeps writers out: an RBD
	// image's head, or a file with --force-share): its exports withhold
	// NBD multi-conn (nbd.Export.SingleConn), since connections to this
	// server and to others serving the image could see different bytes.
	Shared bool
}

// Claim says when a writable export claims the volumes beneath it, so
// that an in-process mount and NBD writes never both change a volume.
type Claim int

const (
	// ClaimPerConnection claims nothing up front: a connection claims the
	// volumes beneath a writable export (its volume for `disk@1`, every
	// volume of the image for `disk`) with its first write, trim or
	// zeroing request, and holds the claim until it ends. So `vdisk serve
	// --control` can mount a volume no client is writing to; while it is
	// mounted, NBD writes to it fail with EPERM (and a message saying
	// why), and while a client that wrote is connected, mounting it is
	// refused. The claim is per connection rather than per request
	// because a client caches what it wrote: letting the file system in
	// between two of its writes would still make two writers.
	ClaimPerConnection Claim = iota
	// ClaimAtOnce claims every volume beneath a writable export now, for
	// as long as the exports exist (until release), so that an
	// in-process mount is refused meanwhile; it fails, claiming nothing,
	// if a volume is mounted.
	ClaimAtOnce
)

// Build returns the NBD exports of disks, as docs/CLI.md names them: for
// disk.img, `disk` (the whole disk) and `disk@1`, `disk@2`, … (its
// volumes, one per partition); the first disk is also the default export
// "". readOnly makes every export read-only; so is every export of a
// read-only disk, and those claim nothing. release gives back what
// ClaimAtOnce claimed (a second call gives nothing back twice).
func Build(disks []Disk, readOnly bool, claim Claim) (exports []nbd.Export, release func(), err error) {
	var claimed []*volume.Extension
	release = func() {
		for _, c := range claimed {
			c.ReleaseExportWrite()
		}
		claimed = nil
	}
	if claim == ClaimAtOnce {
		for _, d := range disks {
			if readOnly || d.ReadOnly {
				continue
			}
			for _, v := range d.Volumes {
				ext := v.Extension.(*volume.Extension)
				if err := ext.AcquireExportWrite(); err != nil {
					release()
					return nil, nil, fmt.Errorf("export %v writable: %w", v, err)
				}
				claimed = append(claimed, ext)
			}
		}
	}
	perConnection := claim == ClaimPerConnection
	for i, d := range disks {
		ro := readOnly || d.ReadOnly
		dk := d.Device.Extension.(*disk.Disk)
		wholeDev := &Device{Device: d.Device, Length: dk.Size, Name: d.Name}
		if perConnection && !ro {
			wholeDev.Claims = d.Volumes
		}
		whole := nbd.Export{Name: d.Name, Description: fmt.Sprintf("%s: whole disk (%s)", d.Name, d.Table),
			Device: wholeDev, ReadOnly: ro, MinBlock: dk.SectorSize, SingleConn: d.Shared}
		exports = append(exports, whole)
		if i == 0 {
			def := whole
			def.Name = ""
			exports = append(exports, def)
		}
		if !d.Partitioned {
			continue
		}
		for j, v := range d.Volumes {
			vext := v.Extension.(*volume.Extension)
			name := fmt.Sprintf("%s@%d", d.Name, j+1)
			dev := &Device{Device: v, Length: vext.Size, Name: name}
			if perConnection && !ro {
				dev.Claims = []*iomgr.Device{v}
			}
			exports = append(exports, nbd.Export{
				Name:        name,
				Description: fmt.Sprintf("%s partition %d", d.Name, j+1),
				Device:      dev,
				ReadOnly:    ro,
				MinBlock:    dk.SectorSize,
				SingleConn:  d.Shared,
			})
		}
	}
	return exports, release, nil
}
