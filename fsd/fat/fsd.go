package fat

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vdisk-dev/vdisk/fsd/fat/internal/ondisk"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/mount"
)

// Options configure the FAT file system driver.
type Options struct {
	// Location is the time zone FAT timestamps are read and written in (FAT
	// stores local time without a zone); nil means time.Local.
	Location *time.Location
	// Now returns the current time for new timestamps; nil means time.Now.
	// Tests set it for deterministic images.
	Now func() time.Time
	// CodePage decodes short names that are not ASCII and encodes volume
	// labels; nil means DefaultCodePage.
	CodePage *ondisk.CodePage
	// Logf, if set, receives what the driver found wrong: why a volume was
	// not recognised, where a volume is corrupt.
	Logf func(format string, args ...any)
}

// FileSystem is the loaded FAT file system driver (`\FileSystem\Fat`) with
// its control device (`\Fat`), registered with a mount manager.
type FileSystem struct {
	// driver is the driver object.
	driver *iomgr.Driver
	// controlDevice is the control device object the mount manager sends
	// IRP_MN_MOUNT_VOLUME to.
	controlDevice *iomgr.Device

	io   *iomgr.Manager
	mm   *mount.Manager
	opts Options

	mu        sync.Mutex // guards the fields below; a leaf lock
	volumes   map[*vcb]struct{}
	lastMount error // why the last mount request was refused
}

// Register loads the FAT file system driver into mm's I/O manager, creates
// its control device and registers it with mm, so the mount sequence offers
// it every volume.
func Register(mm *mount.Manager, opts Options) (*FileSystem, error) {
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CodePage == nil {
		opts.CodePage = ondisk.DefaultCodePage
	}
	io := mm.IOManager()
	fs := &FileSystem{io: io, mm: mm, opts: opts, volumes: map[*vcb]struct{}{}}
	fs.driver = io.CreateDriver(`\FileSystem\Fat`)
	cdo, err := io.CreateDevice(fs.driver, `\Fat`, iomgr.DeviceDiskFileSystem, 0)
	if err != nil {
		return nil, fmt.Errorf("register FAT file system: %w", err)
	}
	fs.controlDevice = cdo
	fs.driver.SetDispatchAll(fs.dispatch)
	fs.driver.FastIO = fastIODispatch()
	fs.driver.Unload = fs.unload
	cdo.ClearFlags(iomgr.DeviceInitializing)
	mm.RegisterFileSystem(cdo)
	return fs, nil
}

// unload unregisters the file system and deletes its control device; it is
// refused while volumes are mounted.
func (fs *FileSystem) unload(*iomgr.Driver) error {
	fs.mu.Lock()
	n := len(fs.volumes)
	fs.mu.Unlock()
	if n > 0 {
		return fmt.Errorf("%d FAT volume(s) still mounted: %w", n, iomgr.StatusDeviceBusy)
	}
	fs.mm.UnregisterFileSystem(fs.controlDevice)
	fs.io.DeleteDevice(fs.controlDevice)
	return nil
}

// mounted returns the volumes the driver has mounted and not dismounted.
func (fs *FileSystem) mounted() []*vcb {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := make([]*vcb, 0, len(fs.volumes))
	for v := range fs.volumes {
		out = append(out, v)
	}
	return out
}

// lastMountError returns why the most recent mount request was refused
// (STATUS_UNRECOGNIZED_VOLUME or an error), nil if it succeeded.
func (fs *FileSystem) lastMountError() error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.lastMount
}

func (fs *FileSystem) logf(format string, args ...any) {
	if fs.opts.Logf != nil {
		fs.opts.Logf(format, args...)
	}
}

func (fs *FileSystem) addVolume(v *vcb) {
	fs.mu.Lock()
	fs.volumes[v] = struct{}{}
	fs.mu.Unlock()
}

func (fs *FileSystem) removeVolume(v *vcb) {
	fs.mu.Lock()
	delete(fs.volumes, v)
	fs.mu.Unlock()
}

// dispatch is the driver's single dispatch routine: requests to the control
// device (mount, shutdown) and to volume devices (everything else).
func (fs *FileSystem) dispatch(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
	if dev == fs.controlDevice {
		st, info := fs.guard(irp, func() (iomgr.Status, uint64) { return fs.control(irp) })
		return irp.Complete(st, info)
	}
	vol, ok := dev.Extension.(*vcb)
	if !ok {
		return irp.Complete(iomgr.StatusInvalidDeviceRequest, 0)
	}
	sl := irp.CurrentStackLocation()
	switch sl.Major {
	case iomgr.MajorRead, iomgr.MajorWrite:
		if fo := sl.FileObject; fo != nil {
			switch fo.FsContext.(type) {
			case *volumeStream:
				// Metadata I/O on the volume stream ("DIRECT I/O"): volume
				// offsets, passed to the storage stack untranslated. This
				// path takes no lock.
				return vol.forwardToStorage(irp)
			case *vcb:
				// Sector I/O on a volume open (DASD), as FORMAT and CHKDSK do.
				return vol.dasd(irp)
			}
		}
	case iomgr.MajorDeviceControl:
		// Device controls on a volume are the storage's to answer.
		if vol.Dismounted() {
			return irp.Complete(iomgr.StatusVolumeDismounted, 0)
		}
		return vol.forwardToStorage(irp)
	case iomgr.MajorClose:
		st, info := fs.guard(irp, func() (iomgr.Status, uint64) { return vol.close(irp) })
		st = irp.Complete(st, info)
		if vol.Closed(fs.io) {
			fs.removeVolume(vol)
		}
		return st
	}
	st, info := fs.guard(irp, func() (iomgr.Status, uint64) { return vol.dispatch(irp) })
	return irp.Complete(st, info)
}

// guard runs a handler and turns an unexpected panic into
// STATUS_FILE_CORRUPT_ERROR: the last line of defence against a corrupt
// volume the checks missed. Bug checks of the I/O model are not hidden.
func (fs *FileSystem) guard(irp *iomgr.IRP, fn func() (iomgr.Status, uint64)) (st iomgr.Status, info uint64) {
	defer func() {
		if r := recover(); r != nil {
			if bc, ok := r.(*iomgr.BugCheck); ok {
				panic(bc)
			}
			sl := irp.CurrentStackLocation()
			fs.logf("fat: %v %s: internal error (treated as a corrupt volume): %v", sl.Major, iomgr.MinorName(sl.Major, sl.Minor), r)
			st, info = iomgr.StatusFileCorruptError, 0
		}
	}()
	return fn()
}

// control handles requests to the control device.
func (fs *FileSystem) control(irp *iomgr.IRP) (iomgr.Status, uint64) {
	sl := irp.CurrentStackLocation()
	switch sl.Major {
	case iomgr.MajorFileSystemControl:
		if sl.Minor == iomgr.MinorMountVolume {
			st, err := fs.mount(irp)
			fs.mu.Lock()
			fs.lastMount = err
			fs.mu.Unlock()
			if err != nil {
				fs.logf("fat: mount %v: %v", sl.Parameters.MountVolume.Device, err)
			}
			return st, 0
		}
		return iomgr.StatusInvalidDeviceRequest, 0
	case iomgr.MajorCreate, iomgr.MajorCleanup, iomgr.MajorClose:
		return iomgr.StatusSuccess, 0
	case iomgr.MajorShutdown:
		var first error
		for _, v := range fs.mounted() {
			if err := v.shutdown(irp.Requestor); err != nil && first == nil {
				first = err
			}
		}
		return statusOf(first), 0
	}
	return iomgr.StatusInvalidDeviceRequest, 0
}

// statusOf maps an error of this package to the NT status a caller sees:
// a Status in its chain first, then the on-disk layer's sentinels.
func statusOf(err error) iomgr.Status {
	if err == nil {
		return iomgr.StatusSuccess
	}
	var s iomgr.Status
	switch {
	case errors.As(err, &s):
		return s
	case errors.Is(err, ondisk.ErrCorrupt), errors.Is(err, ondisk.ErrRange):
		return iomgr.StatusFileCorruptError
	case errors.Is(err, ondisk.ErrNoSpace):
		return iomgr.StatusDiskFull
	case errors.Is(err, ondisk.ErrInvalidName):
		return iomgr.StatusObjectNameInvalid
	case errors.Is(err, ondisk.ErrNotFAT):
		return iomgr.StatusUnrecognizedVolume
	}
	return iomgr.StatusUnsuccessful
}

// fail is an error carrying an NT status and the reason, for logs.
func fail(st iomgr.Status, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{st}, args...)...)
}
