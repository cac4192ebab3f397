package mount

import (
	"errors"
	"fmt"

	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/vpb"
)

// OpenOptions are the arguments of an open (NtCreateFile's, in short).
type OpenOptions struct {
	DesiredAccess  iomgr.AccessMask
	ShareAccess    iomgr.ShareAccess
	Disposition    iomgr.CreateDisposition
	Options        iomgr.CreateOptions
	FileAttributes iomgr.FileAttributes
	// DirectDevice opens the device itself, bypassing any file system
	// (FO_DIRECT_DEVICE_OPEN): what an NBD export of a volume does.
	DirectDevice bool
	// Raw mounts the volume with the raw file system if it is not mounted.
	Raw bool
	// Requestor is recorded in the IRPs.
	Requestor string
}

// Open resolves name (`\DosDevices\disk@1\EFI\BOOT\BOOTX64.EFI`,
// `\Device\HarddiskVolume1`) to a device and the rest of the path, mounts
// the volume if its VPB is not mounted, and sends IRP_MJ_CREATE to the top
// of the mounted volume's stack (or of the device's own stack for a direct
// device open). On success the file object has one handle; close it with
// CloseHandle. The create's information (FileOpened, FileCreated, …) is
// returned too.
func (m *Manager) Open(name string, opts OpenOptions) (*iomgr.FileObject, uint64, error) {
	dev, rest, err := m.io.LookupDevice(name)
	if err != nil {
		return nil, 0, err
	}
	fo := iomgr.NewFileObject(dev, rest)
	fo.Requestor = opts.Requestor
	var v *iomgr.VPB
	if opts.DirectDevice {
		fo.Flags |= iomgr.FODirectDeviceOpen
	} else if dev.VPB() != nil {
		if v, err = m.Mount(dev, MountOptions{Raw: opts.Raw, Requestor: opts.Requestor}); err != nil {
			return nil, 0, fmt.Errorf("open %s: %w", name, err)
		}
		if err := v.Reference(nil); err != nil {
			st := iomgr.StatusAccessDenied
			if errors.Is(err, vpb.ErrRemoving) || errors.Is(err, vpb.ErrNotMounted) {
				st = iomgr.StatusVolumeDismounted
			}
			return nil, 0, fmt.Errorf("open %s: %w (%w)", name, err, st)
		}
		fo.VPB = v
	}
	target := iomgr.RelatedDevice(fo)
	irp := iomgr.BuildSynchronousRequest(iomgr.MajorCreate, 0, target)
	irp.Flags |= iomgr.IRPCreateOperation | iomgr.IRPSynchronousAPI
	irp.FileObject = fo
	irp.Requestor = opts.Requestor
	irp.RequestorMode = iomgr.UserMode
	sl := irp.NextStackLocation()
	sl.FileObject = fo
	sl.Parameters.Create = iomgr.CreateParameters{DesiredAccess: opts.DesiredAccess, Options: opts.Options,
		Disposition: opts.Disposition, FileAttributes: opts.FileAttributes, ShareAccess: opts.ShareAccess}
	ios := iomgr.CallDriverAndWait(target, irp)
	iomgr.FreeIRP(irp)
	if !ios.Status.IsSuccess() {
		if v != nil {
			v.Dereference()
		}
		return nil, 0, fmt.Errorf("open %s: %w", name, ios.Status)
	}
	fo.OpenHandle()
	return fo, ios.Information, nil
}
