package fat

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/fsd/fat/internal/ondisk"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/mount"
)

// vcb is the volume control block (VCB) of a mounted FAT volume: the
// device extension of the driver's volume device. It embeds the mount
// bookkeeping every file system keeps (mount.VolumeState) and holds the
// volume's metadata in memory: the boot sector, the FAT, the open files
// and the directory indexes.
type vcb struct {
	mount.VolumeState

	fs       *FileSystem
	geo      ondisk.Geometry
	bs       *ondisk.BootSector
	cp       *ondisk.CodePage
	loc      *time.Location
	serial   uint32
	readOnly bool

	// stream is the volume stream file object: metadata is read and
	// written with paging, non-cached IRPs on it, sent to the top of the
	// volume device's stack (the "DIRECT I/O" a monitor shows).
	stream *iomgr.FileObject
	// meta and data are the two paths to the storage: metadata through the
	// volume stream, file data straight to the storage volume's stack. A
	// cache would wrap them.
	meta, data blockDevice
	// cache holds file data pages (see cache.go); its mutex comes after mu.
	cache *dataCache

	// mu is the volume lock. Exclusive for anything that changes metadata
	// or sends metadata I/O; shared for file data reads and queries.
	mu          sync.RWMutex
	rq          string // requestor of the operation holding mu exclusively
	boot        []byte // the boot sector as on disk (one FAT sector)
	fat         *ondisk.Table
	fsinfo      []byte        // the FSInfo sector as on disk; nil when the volume has none (or a bad one)
	fsinfoDisk  ondisk.FSInfo // the figures the FSInfo sector holds on disk
	label       string
	root        *fcb
	claimed     []uint64          // clusters of the chains held in memory (cross-link detection)
	dirtyDirs   map[*fcb]struct{} // directories with changed sectors not yet written
	cachedDirs  int               // directory FCBs kept in memory, the root excepted
	wasDirty    bool              // the volume was dirty when mounted: it stays dirty, and its dirty state is never written
	markedDirty bool              // the dirty state is on the disk now
	changed     bool              // something was written since the mount (FSInfo is then brought up to date)
	lockedBy    *iomgr.FileObject // the handle that locked the volume
	lazyArmed   bool              // a lazy write is scheduled (lazyTimer runs)
	lazyTimer   *time.Timer       // runs lazyWrite
	lazyDelay   time.Duration     // lazyWriteDelay; tests stretch it
	share       shareAccess       // volume opens

	errMu   sync.Mutex // guards lastErr and corrupt (corruption may be found under the shared lock); a leaf
	lastErr error      // the last corruption found, for logs
	corrupt error      // the first corruption found: writes are refused from then on
}

// volumeStream is the FsContext of the volume stream file object.
type volumeStream struct{ vol *vcb }

// fatType returns the volume's FAT type.
func (v *vcb) fatType() ondisk.FATType { return v.geo.Type }

// geometry returns the volume's layout.
func (v *vcb) geometry() ondisk.Geometry { return v.geo }

// isReadOnly reports whether the volume was mounted read-only (its storage is
// write-protected): every write-class request fails with
// STATUS_MEDIA_WRITE_PROTECTED.
func (v *vcb) isReadOnly() bool { return v.readOnly }

// freeClusters returns the number of free clusters.
func (v *vcb) freeClusters() uint32 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.fat.FreeCount()
}

// lastError returns the last corruption the driver found on the volume
// (what STATUS_FILE_CORRUPT_ERROR was about), nil if none.
func (v *vcb) lastError() error {
	v.errMu.Lock()
	defer v.errMu.Unlock()
	return v.lastErr
}

// streamFileObject returns the volume stream file object that metadata I/O
// is sent with, so that a monitor can recognise it.
func (v *vcb) streamFileObject() *iomgr.FileObject { return v.stream }

// needsCheck returns the first corruption the driver found on the volume,
// nil if none. From then on every request that would write to the volume
// fails with STATUS_VOLUME_DIRTY (reads go on): writing to a volume whose
// chains are damaged can make it worse, handing out clusters a damaged
// chain still reaches or freeing clusters another file still uses. NT's
// FastFAT marks such a volume for chkdsk; a check that repairs it (and a
// new mount) makes it writable again.
func (v *vcb) needsCheck() error {
	v.errMu.Lock()
	defer v.errMu.Unlock()
	return v.corrupt
}

// note records an error when it is a corruption, for the logs and to
// refuse writes; it returns err.
func (v *vcb) note(err error) error {
	if err != nil && (errors.Is(err, ondisk.ErrCorrupt) || errors.Is(err, ondisk.ErrRange) || errors.Is(err, iomgr.StatusFileCorruptError)) {
		v.errMu.Lock()
		v.lastErr = err
		first := v.corrupt == nil
		if first {
			v.corrupt = err
		}
		v.errMu.Unlock()
		v.fs.logf("fat: volume %v: %v", v.Real, err)
		if first && !v.readOnly {
			v.fs.logf("fat: volume %v: writes are refused until the volume is checked and repaired", v.Real)
		}
	}
	return err
}

// refuseWrite says whether a request that writes to the volume must fail,
// and with which status: STATUS_MEDIA_WRITE_PROTECTED on read-only storage,
// STATUS_VOLUME_DIRTY once corruption was found (needsCheck), else
// STATUS_SUCCESS.
func (v *vcb) refuseWrite() iomgr.Status {
	if v.readOnly {
		return iomgr.StatusMediaWriteProtected
	}
	if v.needsCheck() != nil {
		return iomgr.StatusVolumeDirty
	}
	return iomgr.StatusSuccess
}

// mount handles IRP_MN_MOUNT_VOLUME: recognise the volume by its boot
// sector, create the volume device, load the FAT and the root directory
// (checking what load checks) and claim the VPB. Nothing is written.
func (fs *FileSystem) mount(irp *iomgr.IRP) (iomgr.Status, error) {
	p := irp.CurrentStackLocation().Parameters.MountVolume
	real, vp := p.Device, p.VPB
	if real == nil {
		return iomgr.StatusInvalidParameter, errors.New("mount request without a storage device")
	}
	if vp == nil {
		vp = real.VPB()
	}
	if vp == nil {
		return iomgr.StatusInvalidParameter, errors.New("mount request without a VPB")
	}
	rq := irp.Requestor
	ss := int(real.SectorSize)
	if ss == 0 {
		ss = 512
	}
	bio := &iomgr.BlockIO{Device: real, Requestor: rq}
	first := make([]byte, max(ss, 512))
	if _, err := bio.ReadAt(first, 0); err != nil {
		// A volume that cannot be read is not "unrecognised": as in NT, the
		// read's own status ends the mount, so the user hears of the I/O
		// error rather than of a missing file system.
		st := iomgr.StatusUnrecognizedVolume
		if s := iomgr.StatusOf(err); !s.IsSuccess() {
			st = s
		}
		return st, fmt.Errorf("read the boot sector: %w", err)
	}
	bs, err := ondisk.ParseBootSector(first)
	if err != nil {
		return iomgr.StatusUnrecognizedVolume, err
	}
	g, _ := bs.Geometry()
	if int(g.BytesPerSector) < ss {
		return iomgr.StatusUnrecognizedVolume, fmt.Errorf("%w: %d-byte FAT sectors on a device with %d-byte sectors", ondisk.ErrNotFAT, g.BytesPerSector, ss)
	}
	var size int64
	if err := bio.Control(disk.IOCTLDiskGetLengthInfo, nil, &size); err == nil && g.VolumeBytes() > size {
		return iomgr.StatusUnrecognizedVolume, fmt.Errorf("%w: the boot sector describes %d bytes, the device has %d", ondisk.ErrNotFAT, g.VolumeBytes(), size)
	}
	boot := first
	if len(boot) < int(g.BytesPerSector) {
		boot = make([]byte, g.BytesPerSector)
		if _, err := bio.ReadAt(boot, 0); err != nil {
			return iomgr.StatusOf(err), err
		}
	}
	boot = boot[:g.BytesPerSector]

	dev, err := fs.io.CreateDevice(fs.driver, "", iomgr.DeviceDiskFileSystem, 0)
	if err != nil {
		return iomgr.StatusInsufficientResources, err
	}
	dev.StackSize = iomgr.GetAttachedDevice(real).StackSize + 1
	dev.SectorSize = real.SectorSize
	dev.AlignmentRequirement = real.AlignmentRequirement
	dev.SetFlags(iomgr.DeviceDirectIO)
	v := &vcb{
		VolumeState: mount.VolumeState{VPB: vp, Real: real, Device: dev},
		fs:          fs, geo: g, bs: bs, boot: boot, cp: fs.opts.CodePage, loc: fs.opts.Location,
		serial:    bs.VolumeID,
		readOnly:  real.Characteristics&iomgr.ReadOnlyDevice != 0 || writeProtected(bio),
		dirtyDirs: map[*fcb]struct{}{},
		lazyDelay: lazyWriteDelay,
		rq:        rq,
	}
	dev.Extension = v
	v.stream = iomgr.NewFileObject(real, "")
	v.stream.VPB = vp
	v.stream.FsContext = &volumeStream{vol: v}
	v.stream.Flags |= iomgr.FOVolumeOpen
	v.stream.Requestor = "fat"
	v.meta = &streamDevice{vol: v}
	v.data = &storageDevice{vol: v}
	v.cache = newDataCache(cacheLimit)
	if err := v.load(); err != nil {
		fs.io.DeleteDevice(dev)
		st := statusOf(err)
		if st == iomgr.StatusUnsuccessful {
			st = iomgr.StatusFileCorruptError
		}
		return st, err
	}
	if err := vp.Mount(dev, v.serial, v.label, false); err != nil {
		fs.io.DeleteDevice(dev)
		return iomgr.StatusUnrecognizedVolume, fmt.Errorf("claim the VPB: %w", err)
	}
	fs.addVolume(v)
	dev.ClearFlags(iomgr.DeviceInitializing)
	return iomgr.StatusSuccess, nil
}

// writeProtected asks the storage whether it takes writes
// (IOCTL_DISK_IS_WRITABLE, as FastFAT asks at mount), so that a
// write-protected volume is known without writing to it. Storage that does
// not answer the question is taken as writable; a write it refuses later
// fails that request.
func writeProtected(bio *iomgr.BlockIO) bool {
	return errors.Is(bio.Control(disk.IOCTLDiskIsWritable, nil, nil), iomgr.StatusMediaWriteProtected)
}

// load reads the FAT, the FSInfo sector and the root directory, and checks
// the links between clusters; a writable volume that is dirty (not
// cleanly unmounted) also has its chains checked (checkOwnership). Nothing
// is written: the volume is marked dirty before the first change
// (ensureDirty).
func (v *vcb) load() error {
	g := &v.geo
	data := make([]byte, g.FATBytes())
	const chunk = 1 << 20
	base := g.FATOffset(g.ActiveFAT)
	for off := int64(0); off < int64(len(data)); off += chunk {
		end := min(off+chunk, int64(len(data)))
		if err := v.meta.transfer(iomgr.MajorRead, ioReq{rq: v.rq}, data[off:end], base+off); err != nil {
			return fmt.Errorf("read FAT %d: %w", g.ActiveFAT, err)
		}
	}
	t, err := ondisk.NewTable(g, data)
	if err != nil {
		return v.note(err)
	}
	v.fat = t
	v.claimed = make([]uint64, (uint64(t.MaxCluster())+64)/64)
	if g.FSInfoSector != 0 {
		b := make([]byte, g.BytesPerSector)
		if err := v.meta.transfer(iomgr.MajorRead, ioReq{rq: v.rq}, b, int64(g.FSInfoSector)*int64(g.BytesPerSector)); err != nil {
			return fmt.Errorf("read the FSInfo sector: %w", err)
		}
		if fi, err := ondisk.ParseFSInfo(b); err == nil {
			v.fsinfo, v.fsinfoDisk = b, fi
			t.SetNextFree(fi.Sanitized(g).NextFree)
		} else {
			v.fs.logf("fat: volume %v: FSInfo sector ignored: %v", v.Real, err)
		}
	}
	// Links into free clusters and chains joined into one show in the
	// FAT alone; both make writing unsafe.
	_ = v.note(t.CheckLinks())
	root := &fcb{vol: v, isDir: true, isRoot: true, opens: 1}
	if g.Type == ondisk.FAT32 {
		if err := v.loadChain(root, g.RootCluster); err != nil {
			return fmt.Errorf("root directory: %w", err)
		}
	}
	v.root = root
	if err := v.loadDir(root); err != nil {
		return fmt.Errorf("root directory: %w", err)
	}
	// The label is the root directory's label entry alone, as fatlabel,
	// mlabel and Windows read it; the boot sector's copy is informational.
	if l := root.dir.label; l != nil {
		v.label = ondisk.FormatVolumeLabel(l.short.Name, v.cp)
	}
	v.wasDirty = v.bs.Dirty() || !t.VolumeClean()
	v.markedDirty = v.wasDirty
	if v.wasDirty && !v.readOnly && v.needsCheck() == nil {
		v.checkOwnership()
	}
	return nil
}

// checkOwnership runs the cluster-ownership pass (ownership.go) over the
// volume and records the first problem that makes writing unsafe, which
// ends the pass. A directory it cannot read leaves the chains unchecked:
// writes are refused as for a corrupt volume, reads go on.
func (v *vcb) checkOwnership() {
	start := time.Now()
	c := ondisk.OwnershipCheck{Geometry: &v.geo, FAT: v.fat, CodePage: v.cp,
		ReadAt: func(p []byte, off int64) error {
			return v.meta.transfer(iomgr.MajorRead, ioReq{rq: v.rq}, p, off)
		},
		Problem: func(p *ondisk.OwnershipProblem) bool {
			if !p.UnsafeToWrite() {
				return true
			}
			_ = v.note(p)
			return false
		}}
	rep, err := c.Run()
	if err != nil {
		_ = v.note(fmt.Errorf("%w: the chains of a dirty volume could not be checked: %w", ondisk.ErrCorrupt, err))
		return
	}
	v.fs.logf("fat: volume %v: dirty at mount: ownership check of %d files in %d directories, %d clusters: %d problems, took %v",
		v.Real, rep.Files, rep.Directories, rep.Owned, len(rep.Problems), time.Since(start).Round(time.Microsecond))
}

// lock takes the volume lock exclusively for a request of rq, unless the
// volume was dismounted.
func (v *vcb) lock(rq string) bool {
	v.mu.Lock()
	if v.Dismounted() {
		v.mu.Unlock()
		return false
	}
	v.rq = rq
	return true
}

// rlock takes the volume lock shared, unless the volume was dismounted.
func (v *vcb) rlock() bool {
	v.mu.RLock()
	if v.Dismounted() {
		v.mu.RUnlock()
		return false
	}
	return true
}

// Cluster claims: the chains held in memory, to find cross-linked chains.

func (v *vcb) claim(exts []ondisk.Extent) error {
	for _, e := range exts {
		for c := e.Start; c-e.Start < e.Len; c++ {
			if c < 2 || c > v.fat.MaxCluster() {
				return v.note(fmt.Errorf("%w: cluster %d outside 2..%d", ondisk.ErrCorrupt, c, v.fat.MaxCluster()))
			}
			if v.claimed[c>>6]&(1<<(c&63)) != 0 {
				return v.note(fmt.Errorf("%w: cluster %d is cross-linked (in two chains)", ondisk.ErrCorrupt, c))
			}
		}
	}
	for _, e := range exts {
		for c := e.Start; c-e.Start < e.Len; c++ {
			v.claimed[c>>6] |= 1 << (c & 63)
		}
	}
	return nil
}

func (v *vcb) unclaim(exts []ondisk.Extent) {
	for _, e := range exts {
		for c := e.Start; c-e.Start < e.Len; c++ {
			if c <= v.fat.MaxCluster() {
				v.claimed[c>>6] &^= 1 << (c & 63)
			}
		}
	}
}

// Writing metadata back.

// commit writes every metadata change made in memory: FAT sectors to each
// FAT copy, then changed directory sectors. It marks the volume dirty on
// disk first. Caller holds mu exclusively.
func (v *vcb) commit() error {
	if v.readOnly {
		return nil
	}
	if !v.fat.HasDirty() && len(v.dirtyDirs) == 0 {
		return nil
	}
	if err := v.ensureDirty(); err != nil {
		return err
	}
	if err := v.writeFAT(); err != nil {
		return err
	}
	for d := range v.dirtyDirs {
		if err := v.writeDir(d); err != nil {
			return err
		}
		delete(v.dirtyDirs, d)
	}
	return nil
}

// writeFAT writes the changed FAT sectors to every FAT copy (the active one
// when mirroring is off).
func (v *vcb) writeFAT() error {
	var runs [][2]uint32
	v.fat.DirtySectors(func(first, count uint32) { runs = append(runs, [2]uint32{first, count}) })
	for _, r := range runs {
		if err := v.writeFATSectors(r[0], r[1]); err != nil {
			return err
		}
	}
	return nil
}

// writeFATSectors writes FAT sectors first..first+count-1 (numbered from
// the start of the FAT) to every FAT copy (the active one when mirroring
// is off); once written, they are no longer pending, so that a later
// commit does not write them again (which would mark a volume left clean
// by a shutdown dirty again).
func (v *vcb) writeFATSectors(first, count uint32) error {
	g := &v.geo
	bps := int64(g.BytesPerSector)
	data := v.fat.Bytes()
	a, b := int64(first)*bps, min(int64(first+count)*bps, int64(len(data)))
	if a >= b {
		return nil
	}
	for i := uint32(0); i < g.NumFATs; i++ {
		if !g.Mirrored && i != g.ActiveFAT {
			continue
		}
		if err := v.meta.transfer(iomgr.MajorWrite, ioReq{rq: v.rq}, data[a:b], g.FATOffset(i)+a); err != nil {
			return fmt.Errorf("write FAT %d: %w", i, err)
		}
	}
	v.fat.ClearDirtySectors(first, count)
	return nil
}

// ensureDirty puts the dirty state on the disk before the first change
// (each change calls it before it can reach the disk), so that a session
// that changes nothing writes nothing. A volume that was dirty when
// mounted already says so and is left as it is: writing the flag again
// would set it in the boot sector alone (its FAT32 backup never carries
// it, as with FastFAT, and fsck.fat clears only the boot sector's), leaving
// the two out of step.
func (v *vcb) ensureDirty() error {
	v.changed = true
	if v.markedDirty {
		return nil
	}
	return v.setDirtyState(true)
}

// setDirtyState sets or clears the volume dirty state in both places, as
// FastFAT does: the NT flags byte of the boot sector (not of its FAT32
// backup) and FAT[1]'s clean bit, whose FAT sector alone is written (other
// changed FAT sectors wait for the commit, after the data).
func (v *vcb) setDirtyState(dirty bool) error {
	b := bytes.Clone(v.boot)
	if ondisk.SetBootSectorDirty(b, dirty) {
		if err := v.meta.transfer(iomgr.MajorWrite, ioReq{rq: v.rq}, b, 0); err != nil {
			return fmt.Errorf("write the boot sector: %w", err)
		}
		v.boot = b
	}
	if clean := v.fat.VolumeClean(); clean == dirty && v.geo.Type != ondisk.FAT12 {
		v.fat.SetVolumeClean(!dirty)
		if err := v.writeFATSectors(0, 1); err != nil {
			v.fat.SetVolumeClean(clean)
			return err
		}
	}
	v.markedDirty = dirty
	return nil
}

// writeFSInfo brings the FSInfo sector up to date with the free count and
// the next-free hint, when something was written since the mount (FastFAT
// too writes it when it marks a volume clean): a session that only reads
// leaves even a stale FSInfo sector alone.
func (v *vcb) writeFSInfo() error {
	if v.fsinfo == nil || v.readOnly || !v.changed {
		return nil
	}
	fi := ondisk.FSInfo{FreeCount: v.fat.FreeCount(), NextFree: v.fat.NextFree()}
	if fi == v.fsinfoDisk {
		return nil
	}
	if err := v.ensureDirty(); err != nil {
		return err
	}
	b := bytes.Clone(v.fsinfo)
	_ = fi.Encode(b)
	off := int64(v.geo.FSInfoSector) * int64(v.geo.BytesPerSector)
	if err := v.meta.transfer(iomgr.MajorWrite, ioReq{rq: v.rq}, b, off); err != nil {
		return fmt.Errorf("write the FSInfo sector: %w", err)
	}
	v.fsinfo, v.fsinfoDisk = b, fi
	return nil
}

// flushAll writes everything and sends a flush down the storage stack.
// clean also clears the dirty state (dismount, shutdown) unless the volume
// was dirty when it was mounted. Caller holds mu exclusively.
func (v *vcb) flushAll(clean bool) error {
	if v.readOnly {
		return nil
	}
	// Data first, then the metadata that points at it: a crash between
	// the two loses at most the metadata of the newest changes.
	if err := v.writeChanges(); err != nil {
		return err
	}
	if err := v.writeFSInfo(); err != nil {
		return err
	}
	if clean && !v.wasDirty && v.markedDirty {
		if err := v.setDirtyState(false); err != nil {
			return err
		}
	}
	if err := v.meta.flush(ioReq{rq: v.rq}); err != nil {
		return err
	}
	// Everything is written: a lazy write armed before has nothing left
	// to do. The next change arms it again (after marking the volume
	// dirty).
	v.stopLazyWriter()
	return nil
}

// shutdown handles IRP_MJ_SHUTDOWN: flush everything and leave the volume
// clean; a later change marks it dirty again.
func (v *vcb) shutdown(rq string) error {
	if !v.lock(rq) {
		return nil
	}
	defer v.mu.Unlock()
	v.trimAll()
	return v.flushAll(true)
}

// dispatch handles a request to the volume device (other than stream I/O
// and close, which fsd.go routes itself).
func (v *vcb) dispatch(irp *iomgr.IRP) (iomgr.Status, uint64) {
	sl := irp.CurrentStackLocation()
	if v.Dismounted() && sl.Major != iomgr.MajorCleanup {
		return iomgr.StatusVolumeDismounted, 0
	}
	switch sl.Major {
	case iomgr.MajorCreate:
		return v.create(irp)
	case iomgr.MajorCleanup:
		return v.cleanup(irp)
	case iomgr.MajorRead:
		return v.read(irp)
	case iomgr.MajorWrite:
		return v.write(irp)
	case iomgr.MajorQueryInformation:
		return v.queryInformation(irp)
	case iomgr.MajorSetInformation:
		return v.setInformation(irp)
	case iomgr.MajorQueryVolumeInformation:
		return v.queryVolumeInformation(irp)
	case iomgr.MajorSetVolumeInformation:
		return v.setVolumeInformation(irp)
	case iomgr.MajorDirectoryControl:
		return v.directoryControl(irp)
	case iomgr.MajorFlushBuffers:
		return v.flushBuffers(irp)
	case iomgr.MajorFileSystemControl:
		return v.fileSystemControl(irp)
	case iomgr.MajorShutdown:
		return statusOf(v.shutdown(irp.Requestor)), 0
	}
	return iomgr.StatusInvalidDeviceRequest, 0
}

// flushBuffers handles IRP_MJ_FLUSH_BUFFERS on a file or the volume: every
// change of the volume is written and the storage is flushed.
func (v *vcb) flushBuffers(irp *iomgr.IRP) (iomgr.Status, uint64) {
	if !v.lock(irp.Requestor) {
		return iomgr.StatusVolumeDismounted, 0
	}
	defer v.mu.Unlock()
	return statusOf(v.flushAll(false)), 0
}
