package vdisk

import (
	"fmt"

	"github.com/vdisk-dev/vdisk/fsd/fat"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/mount"
	"github.com/vdisk-dev/vdisk/partition"
	"github.com/vdisk-dev/vdisk/volume"
)

// volumeWriter writes a volume opened through the raw file system: every
// write is an IRP on the volume handle, so filters see the format.
type volumeWriter struct {
	fo        *iomgr.FileObject
	requestor string
}

func (w *volumeWriter) WriteAt(p []byte, off int64) (int, error) {
	dev := iomgr.RelatedDevice(w.fo)
	irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorWrite, dev, p, off)
	irp.FileObject = w.fo
	irp.Requestor = w.requestor
	irp.NextStackLocation().FileObject = w.fo
	ios := iomgr.CallDriverAndWait(dev, irp)
	iomgr.FreeIRP(irp)
	if !ios.Status.IsSuccess() {
		return int(ios.Information), fmt.Errorf("write %d bytes at %d: %w", len(p), off, ios.Status)
	}
	return len(p), nil
}

// Format writes a FAT file system on the volume at addr (`disk@1`, `disk`).
// It dismounts what is mounted, opens the volume directly through the raw
// file system with the volume locked, formats, flushes and dismounts the
// raw mount, so the next open mounts the new file system. Options left zero
// are chosen like mkfs.fat; the sector size and hidden sectors come from
// the volume.
func (s *System) Format(addr string, opts fat.FormatOptions, requestor string) (*fat.FormatResult, error) {
	v, err := s.OpenVolume(addr, requestor)
	if err != nil {
		return nil, err
	}
	dev := v.Device
	if vp := dev.VPB(); vp != nil && vp.Mounted() {
		if err := s.Mounts.Dismount(dev, mount.DismountOptions{Requestor: requestor}); err != nil {
			return nil, fmt.Errorf("format %s: dismount the mounted file system first: %w", addr, err)
		}
	}
	fo, _, err := s.Mounts.Open(`\DosDevices\`+v.Name, mount.OpenOptions{Raw: true, Requestor: requestor,
		DesiredAccess: iomgr.FileGenericRead | iomgr.FileGenericWrite, Disposition: iomgr.FileOpen})
	if err != nil {
		return nil, fmt.Errorf("format %s: %w", addr, err)
	}
	closed := false
	defer func() {
		if !closed {
			fo.CloseHandle(requestor)
		}
	}()
	if err := mount.FileSystemControl(fo, iomgr.FSCTLLockVolume, nil, nil, requestor); err != nil {
		return nil, fmt.Errorf("format %s: lock the volume: %w", addr, err)
	}
	if opts.SectorSize == 0 {
		opts.SectorSize = int(dev.SectorSize)
	}
	if ext, ok := dev.Extension.(*volume.Extension); ok {
		if pext, ok := ext.Target.Extension.(*partition.Extension); ok && opts.HiddenSectors == 0 {
			opts.HiddenSectors = uint32(pext.Partition.Start / int64(dev.SectorSize))
		}
	}
	size := dev.Extension.(*volume.Extension).Size
	res, err := fat.Format(&volumeWriter{fo: fo, requestor: requestor}, size, opts)
	if err != nil {
		return nil, fmt.Errorf("format %s: %w", addr, err)
	}
	flush := iomgr.BuildSynchronousFSDRequest(iomgr.MajorFlushBuffers, iomgr.RelatedDevice(fo), nil, 0)
	flush.FileObject = fo
	flush.NextStackLocation().FileObject = fo
	st := iomgr.CallDriverAndWait(iomgr.RelatedDevice(fo), flush).Status
	iomgr.FreeIRP(flush)
	if !st.IsSuccess() {
		return nil, fmt.Errorf("format %s: flush: %w", addr, st)
	}
	_ = mount.FileSystemControl(fo, iomgr.FSCTLUnlockVolume, nil, nil, requestor)
	fo.CloseHandle(requestor)
	closed = true
	if err := s.Mounts.Dismount(dev, mount.DismountOptions{Requestor: requestor}); err != nil {
		return nil, fmt.Errorf("format %s: dismount the raw volume: %w", addr, err)
	}
	return res, nil
}
