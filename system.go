package vdisk

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/export"
	"github.com/vdisk-dev/vdisk/filter/fltmgr"
	"github.com/vdisk-dev/vdisk/filter/monitor"
	"github.com/vdisk-dev/vdisk/fsd/fat"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/mount"
	"github.com/vdisk-dev/vdisk/nbd"
	"github.com/vdisk-dev/vdisk/partition"
	"github.com/vdisk-dev/vdisk/stackview"
	"github.com/vdisk-dev/vdisk/volume"
)

// Options configure a System.
type Options struct {
	// Workers is the number of disk driver workers: 0 completes requests
	// in the caller's goroutine, more marks them pending and queues them.
	Workers int
	// Requestor names the System's own requests (partition table reads)
	// in traces; "vdisk" when empty.
	Requestor string
	// RingSize is the number of monitor records kept (DefaultRingSize when 0).
	RingSize int
	// NoFsync makes flushes of image files stop at the operating system's
	// page cache, without fsync (disk.FileStore.SetFsync): the images
	// survive the process ending, cleanly or killed, but not a crash of
	// the machine. For commands that copy files into an image, as cp and
	// mcopy do; never for a server, whose clients' flushes promise stable
	// storage.
	NoFsync bool
	// FAT configures the FAT file system driver: a fixed clock and UTC
	// for reproducible images (fat.Options.Now, Location); the zero value
	// is the wall clock in local time.
	FAT fat.Options
}

// System is one instance of vdisk's storage stack: an I/O manager with the
// disk, partition and volume drivers, the mount manager, the RAW and FAT
// file systems and the filters, over the images added to it.
type System struct {
	manager    *iomgr.Manager
	disks      *disk.Driver
	partitions *partition.Driver
	volumes    *volume.Driver
	// mounts is the mount manager: file systems mount volumes on first open.
	mounts *mount.Manager

	opts Options

	mu      sync.Mutex // guards the fields below
	images  []*Image
	adding  map[string]bool // names of images being added, reserved
	ring    *monitor.Ring
	fltmgr  *fltmgr.Manager
	filters []*LoadedFilter
}

// Image is a disk image added to a System, with the devices built over it.
type Image struct {
	// Name is the image's export base name: the file name without its
	// extension ("disk" for disk.img).
	Name string
	// Path is the image file, or the RBD image (`rbd:POOL/IMAGE[@SNAP]`);
	// "" for a store added directly.
	Path string
	// Disk is the disk device.
	Disk *iomgr.Device
	// Table is the partition table (Kind None for a superfloppy).
	Table *partition.Table
	// Warnings are what reading the table worked around.
	Warnings []partition.Warning
	// Partitions are the partition devices, in table order.
	Partitions []*iomgr.Device
	// Volumes are the volume devices: one per partition, or one over the
	// whole disk when it has no partition table.
	Volumes []*iomgr.Device
	// ReadOnly is set when the image was opened read-only.
	ReadOnly bool
	// Shared is set when others may write the image meanwhile: it was
	// opened read-only without a lock that keeps writers out (a file with
	// AddImageForceShare, an RBD image's head read-only). Its NBD exports
	// then withhold multi-conn.
	Shared bool
}

// New returns a System with the storage drivers loaded and no images.
func New(opts Options) *System {
	if opts.Requestor == "" {
		opts.Requestor = "vdisk"
	}
	m := iomgr.NewManager()
	s := &System{
		manager:    m,
		disks:      disk.NewDriver(m, disk.Options{Workers: opts.Workers}),
		partitions: partition.NewDriver(m),
		volumes:    volume.NewDriver(m),
		mounts:     mount.New(m),
		opts:       opts,
	}
	// The raw file system registers first and stays last: it claims what
	// no other file system recognises, so a volume can be opened to be
	// formatted. Only a name collision could fail, and the namespace is new.
	if _, err := mount.NewRawFileSystem(s.mounts); err != nil {
		panic(fmt.Sprintf("vdisk: loading the raw file system: %v", err))
	}
	if _, err := fat.Register(s.mounts, opts.FAT); err != nil {
		panic(fmt.Sprintf("vdisk: loading the FAT file system: %v", err))
	}
	return s
}

// ImageName returns the export base name of an image path: its file name
// without the extension.
func ImageName(path string) string {
	base := filepath.Base(path)
	if ext := filepath.Ext(base); ext != "" && ext != base {
		base = strings.TrimSuffix(base, ext)
	}
	return base
}

// AddImage opens an image file and builds its disk, partition and volume
// devices. The file is locked as qemu locks images (disk.OpenFile): shared
// while it is only read, exclusive while it is written, until Close; an
// image another process (vdisk, qemu) holds that way fails with an error
// that errors.Is reports as disk.ErrLocked.
func (s *System) AddImage(path string, readOnly bool) (*Image, error) {
	return s.addImageFile(path, readOnly, func() (*disk.FileStore, error) { return disk.OpenFile(path, readOnly) })
}

// AddImageForceShare adds an image read-only without taking its lock
// (disk.OpenFileForceShare, qemu-img's -U): to look at an image that
// another process writes, accepting that what is read may be changing or
// older than what the writer has cached.
func (s *System) AddImageForceShare(path string) (*Image, error) {
	img, err := s.addImageFile(path, true, func() (*disk.FileStore, error) { return disk.OpenFileForceShare(path) })
	if img != nil {
		img.Shared = true
	}
	return img, err
}

// RBDImageName is the export base name of an RBD image: the image's name,
// and for a snapshot IMAGE.SNAP (an export name holds no '@' but the one
// before a partition number).
func RBDImageName(spec disk.RBDSpec) string {
	if spec.Snap != "" {
		return spec.Image + "." + spec.Snap
	}
	return spec.Image
}

// AddRBD opens a Ceph RBD image, or a snapshot of it, and builds its disk,
// partition and volume devices (disk.OpenRBD: a writable open holds the
// image's exclusive lock until Close, and fails with a *disk.RBDLockedError
// naming the holder while another client holds it; opts.ReadOnly or a
// snapshot opens read-only, sharing the image with every other client).
// The image is named as RBDImageName says; its Path is the spec
// (`rbd:POOL/IMAGE[@SNAP]`).
func (s *System) AddRBD(spec disk.RBDSpec, opts disk.RBDOptions) (*Image, error) {
	name := RBDImageName(spec)
	if s.Image(name) != nil {
		return nil, fmt.Errorf("open image %s: an image named %q is already added (export names must be unique)", spec, name)
	}
	store, err := disk.OpenRBD(spec, opts)
	if err != nil {
		if strings.Contains(err.Error(), spec.String()) {
			return nil, err // it names the image already
		}
		return nil, fmt.Errorf("open image %s: %w", spec, err)
	}
	img, err := s.AddStore(name, store, 512, store.ReadOnly())
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("image %s: %w", spec, err)
	}
	img.Path = spec.String()
	// A head opened read-only took no lock: another client may write it.
	img.Shared = store.ReadOnly() && spec.Snap == ""
	return img, nil
}

// addImageFile adds the image file that open opens. An image of the same
// name is refused before the file is opened (and locked), which would
// otherwise be refused as if another process held it; AddStore checks
// again.
func (s *System) addImageFile(path string, readOnly bool, open func() (*disk.FileStore, error)) (*Image, error) {
	if name := ImageName(path); s.Image(name) != nil {
		return nil, fmt.Errorf("open image %s: an image named %q is already added (export names must be unique)", path, name)
	}
	store, err := open()
	if err != nil {
		return nil, fmt.Errorf("open image %s: %w", path, err)
	}
	store.SetFsync(!s.opts.NoFsync)
	img, err := s.AddStore(ImageName(path), store, 512, readOnly)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("image %s: %w", path, err)
	}
	img.Path = path
	return img, nil
}

// AddStore adds a store as a disk named name with the given logical sector
// size; a GPT with 4096-byte sectors is recognised on a 512-byte disk too
// and the disk is then rebuilt with 4096-byte sectors.
func (s *System) AddStore(name string, store disk.Store, sectorSize uint32, readOnly bool) (*Image, error) {
	// Reserve the name while the devices are built, outside the lock:
	// two adds of one name must not both pass the check.
	s.mu.Lock()
	taken := s.adding[name]
	for _, img := range s.images {
		taken = taken || img.Name == name
	}
	if taken {
		s.mu.Unlock()
		return nil, fmt.Errorf("an image named %q is already added (export names must be unique)", name)
	}
	if s.adding == nil {
		s.adding = map[string]bool{}
	}
	s.adding[name] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.adding, name)
		s.mu.Unlock()
	}()
	dev, err := s.disks.AddDisk(store, sectorSize, readOnly)
	if err != nil {
		return nil, err
	}
	table, warns, parts, err := s.partitions.Enumerate(dev, s.opts.Requestor)
	if err == nil && table.Kind != partition.None && uint32(table.SectorSize) != sectorSize {
		// The table says the disk has other sectors than assumed: rebuild.
		s.partitions.RemovePartitions(dev)
		s.disks.DetachDisk(dev)
		sectorSize = uint32(table.SectorSize)
		if dev, err = s.disks.AddDisk(store, sectorSize, readOnly); err != nil {
			return nil, err
		}
		table, warns, parts, err = s.partitions.Enumerate(dev, s.opts.Requestor)
	}
	if err != nil {
		s.disks.DetachDisk(dev)
		return nil, err
	}
	img := &Image{Name: name, Disk: dev, Table: table, Warnings: warns, Partitions: parts, ReadOnly: readOnly || store.ReadOnly()}
	fail := func(err error) (*Image, error) {
		for _, v := range img.Volumes {
			s.volumes.RemoveVolume(v)
		}
		s.partitions.RemovePartitions(dev)
		s.disks.DetachDisk(dev)
		return nil, err
	}
	if len(parts) == 0 {
		size := dev.Extension.(*disk.Disk).Size
		v, err := s.volumes.AddVolume(dev, size, `\DosDevices\`+name)
		if err != nil {
			return fail(err)
		}
		img.Volumes = append(img.Volumes, v)
	}
	for i, p := range parts {
		ext := p.Extension.(*partition.Extension)
		v, err := s.volumes.AddVolume(p, ext.Partition.Size, fmt.Sprintf(`\DosDevices\%s@%d`, name, i+1))
		if err != nil {
			return fail(err)
		}
		img.Volumes = append(img.Volumes, v)
	}
	s.mu.Lock()
	s.images = append(s.images, img)
	s.mu.Unlock()
	return img, nil
}

// Images returns the images in the order they were added.
func (s *System) Images() []*Image {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Image(nil), s.images...)
}

// Image returns the image named name, or nil.
func (s *System) Image(name string) *Image {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, img := range s.images {
		if img.Name == name {
			return img
		}
	}
	return nil
}

// Close flushes every disk, deletes every device and closes the stores.
func (s *System) Close() error {
	var errs []error
	for _, img := range s.Images() {
		for _, v := range img.Volumes {
			if vp := v.VPB(); vp != nil && vp.Mounted() {
				errs = append(errs, s.mounts.Dismount(v, mount.DismountOptions{Force: true, Requestor: s.opts.Requestor}))
			}
		}
		io := &iomgr.BlockIO{Device: img.Disk, Requestor: s.opts.Requestor}
		if !img.ReadOnly {
			errs = append(errs, io.Flush())
		}
		for _, v := range img.Volumes {
			s.volumes.RemoveVolume(v)
		}
		s.partitions.RemovePartitions(img.Disk)
	}
	s.mu.Lock()
	s.images = nil
	filters := s.filters
	s.filters = nil
	s.mu.Unlock()
	errs = append(errs, s.disks.Close())
	for _, f := range filters {
		errs = append(errs, f.close()...)
	}
	return errors.Join(errs...)
}

// Volume returns volume n of img: partition n's, or with n = 0 the only
// volume of a disk without a partition table (or with one partition).
// Its requests carry the System's requestor.
func (s *System) Volume(img *Image, n int) (*Volume, error) {
	if n == 0 {
		if len(img.Volumes) != 1 {
			return nil, fmt.Errorf("%s has %d partitions: say which, e.g. %s@1", img.Name, len(img.Volumes), img.Name)
		}
		name := img.Name
		if len(img.Partitions) > 0 {
			name += "@1"
		}
		return &Volume{sys: s, Name: name, Device: img.Volumes[0], Requestor: s.opts.Requestor}, nil
	}
	if n < 1 || n > len(img.Partitions) {
		return nil, fmt.Errorf("%s has no partition %d: it has %d", img.Name, n, len(img.Partitions))
	}
	return &Volume{sys: s, Name: img.Name + "@" + strconv.Itoa(n), Device: img.Volumes[n-1], Requestor: s.opts.Requestor}, nil
}

// VolumeNamed returns the volume an export name names: `disk@N` for
// partition N of the image named disk, or `disk` for a disk without a
// partition table (or with exactly one partition). The control API takes
// these names.
func (s *System) VolumeNamed(name string) (*Volume, error) {
	base, idx, hasIdx := strings.Cut(name, "@")
	img := s.Image(base)
	if img == nil {
		return nil, fmt.Errorf("no image named %q", base)
	}
	if !hasIdx {
		return s.Volume(img, 0)
	}
	n, ok := partitionNumber(idx)
	if !ok {
		return nil, fmt.Errorf("%q: partition number %q is not a number", name, idx)
	}
	if n < 1 {
		return nil, fmt.Errorf("%s has no partition %d: it has %d", img.Name, n, len(img.Partitions))
	}
	return s.Volume(img, n)
}

// Volumes returns every volume of every image, in the order they were
// added: each image's partitions in table order, or its whole disk.
func (s *System) Volumes() []*Volume {
	var out []*Volume
	for _, img := range s.Images() {
		if len(img.Partitions) == 0 {
			for _, v := range img.Volumes {
				out = append(out, &Volume{sys: s, Name: img.Name, Device: v, Requestor: s.opts.Requestor})
			}
			continue
		}
		for i, v := range img.Volumes {
			out = append(out, &Volume{sys: s, Name: img.Name + "@" + strconv.Itoa(i+1), Device: v, Requestor: s.opts.Requestor})
		}
	}
	return out
}

// Devices returns every device object of the System, in driver load order
// (package stackview draws them).
func (s *System) Devices() []*iomgr.Device { return s.manager.Devices() }

// Stack describes every device object of the System, with the minifilters
// on the filter manager's frames (without loading the filter manager):
// what `vdisk stack` and the control API show.
func (s *System) Stack() stackview.Info {
	s.mu.Lock()
	fm := s.fltmgr
	s.mu.Unlock()
	return stackview.Collect(s.Devices(), fm)
}

// Exports returns the NBD exports of every image (package export builds
// them: `disk`, `disk@1`, …, the default export ""), with the volumes
// beneath writable exports claimed as claim says; release gives back what
// export.ClaimAtOnce claimed.
func (s *System) Exports(readOnly bool, claim export.Claim) (exports []nbd.Export, release func(), err error) {
	var disks []export.Disk
	for _, img := range s.Images() {
		disks = append(disks, export.Disk{Name: img.Name, Device: img.Disk, Table: img.Table.Kind,
			Partitioned: len(img.Partitions) > 0, Volumes: img.Volumes, ReadOnly: img.ReadOnly, Shared: img.Shared})
	}
	return export.Build(disks, readOnly, claim)
}
