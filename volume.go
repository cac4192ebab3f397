package vdisk

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/mount"
)

// Volume is a volume of a System, reached through the mount manager: its
// file system is mounted on first use. It implements io/fs.FS, fs.StatFS,
// fs.ReadDirFS and fs.ReadFileFS, plus write methods. Every call travels as
// IRPs through the volume's stack, so filters see it.
type Volume struct {
	sys *System
	// Name is the volume's address: `disk@1`, or `disk` for a disk without
	// a partition table.
	Name string
	// Device is the storage volume device.
	Device *iomgr.Device
	// Requestor is recorded in the IRPs ("vdisk cp", …).
	Requestor string
}

// nt turns an io/fs name ("a/b", ".") into the volume's NT path.
func (v *Volume) nt(name string) string {
	if name == "." || name == "" {
		return `\DosDevices\` + v.Name + `\`
	}
	return `\DosDevices\` + v.Name + `\` + strings.ReplaceAll(name, "/", `\`)
}

func (v *Volume) open(op, name string, o mount.OpenOptions) (*iomgr.FileObject, uint64, error) {
	// A backslash would become a path separator on the way to the file
	// system: io/fs names use only slashes.
	if !fs.ValidPath(name) || strings.ContainsRune(name, '\\') {
		return nil, 0, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	o.Requestor = v.Requestor
	fo, info, err := v.sys.mounts.Open(v.nt(name), o)
	if err != nil {
		return nil, 0, pathError(op, name, err)
	}
	return fo, info, nil
}

// openShared opens name for access, sharing it with every other open: how
// the metadata operations (stat, rename, label, …) reach a file.
func (v *Volume) openShared(op, name string, access iomgr.AccessMask) (*iomgr.FileObject, error) {
	fo, _, err := v.open(op, name, mount.OpenOptions{DesiredAccess: access,
		ShareAccess: iomgr.ShareRead | iomgr.ShareWrite | iomgr.ShareDelete, Disposition: iomgr.FileOpen})
	return fo, err
}

// send sends a synchronous request on fo, prepared by fill, and returns the I/O status.
func (v *Volume) send(fo *iomgr.FileObject, major iomgr.MajorFunction, minor iomgr.MinorFunction, fill func(irp *iomgr.IRP, sl *iomgr.StackLocation)) iomgr.IOStatusBlock {
	dev := iomgr.RelatedDevice(fo)
	irp := iomgr.BuildSynchronousRequest(major, minor, dev)
	irp.FileObject = fo
	irp.Requestor = v.Requestor
	irp.RequestorMode = iomgr.UserMode
	sl := irp.NextStackLocation()
	sl.FileObject = fo
	if fill != nil {
		fill(irp, sl)
	}
	ios := iomgr.CallDriverAndWait(dev, irp)
	iomgr.FreeIRP(irp)
	return ios
}

// sendTransfer sends one IRP_MJ_READ or IRP_MJ_WRITE of p at off on fo, as
// its user's request (iomgr.BlockIO, here at the top of fo's stack).
func (v *Volume) sendTransfer(fo *iomgr.FileObject, major iomgr.MajorFunction, p []byte, off int64) iomgr.IOStatusBlock {
	b := iomgr.BlockIO{Device: iomgr.RelatedDevice(fo), Here: true, FileObject: fo, Requestor: v.Requestor, RequestorMode: iomgr.UserMode}
	ios, _ := b.Send(iomgr.BlockRequest{Major: major, Buffer: p, Offset: off})
	return ios
}

// fastIO returns the device at the top of fo's volume stack and its
// driver's fast I/O table (nil when it has none). Callers try a routine of
// it first and send the IRP only when it answers "not possible", as NT's
// I/O manager does for cached files.
func fastIO(fo *iomgr.FileObject) (*iomgr.Device, *iomgr.FastIODispatch) {
	dev := iomgr.RelatedDevice(fo)
	if dev == nil || dev.Driver == nil {
		return dev, nil
	}
	return dev, dev.Driver.FastIO
}

func (v *Volume) query(fo *iomgr.FileObject, class iomgr.FileInformationClass, out any) error {
	return v.send(fo, iomgr.MajorQueryInformation, 0, func(irp *iomgr.IRP, sl *iomgr.StackLocation) {
		irp.SystemBuffer = out
		sl.Parameters.QueryFile = iomgr.QueryFileParameters{Class: class}
	}).Status.Err()
}

func (v *Volume) set(fo *iomgr.FileObject, class iomgr.FileInformationClass, in any, replace bool) error {
	return v.send(fo, iomgr.MajorSetInformation, 0, func(irp *iomgr.IRP, sl *iomgr.StackLocation) {
		irp.SystemBuffer = in
		sl.Parameters.SetFile = iomgr.SetFileParameters{Class: class, ReplaceIfExists: replace}
	}).Status.Err()
}

// Open opens the named file or directory for reading (fs.FS).
func (v *Volume) Open(name string) (fs.File, error) {
	fo, _, err := v.open("open", name, mount.OpenOptions{DesiredAccess: iomgr.FileGenericRead,
		ShareAccess: iomgr.ShareRead | iomgr.ShareWrite | iomgr.ShareDelete, Disposition: iomgr.FileOpen})
	if err != nil {
		return nil, err
	}
	return &File{vol: v, fo: fo, name: name}, nil
}

// OpenFile opens name with the os package's flags (os.O_RDONLY, O_WRONLY,
// O_RDWR, O_CREATE, O_EXCL, O_TRUNC, O_APPEND), whose values differ from
// one platform to another.
func (v *Volume) OpenFile(name string, flag int) (*File, error) {
	o := mount.OpenOptions{ShareAccess: iomgr.ShareRead, Options: iomgr.FileNonDirectoryFile}
	switch flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR) {
	case os.O_RDWR:
		o.DesiredAccess = iomgr.FileGenericRead | iomgr.FileGenericWrite
	case os.O_WRONLY:
		o.DesiredAccess = iomgr.FileGenericWrite
	default:
		o.DesiredAccess = iomgr.FileGenericRead
		o.ShareAccess |= iomgr.ShareWrite
	}
	create, excl, trunc := flag&os.O_CREATE != 0, flag&os.O_EXCL != 0, flag&os.O_TRUNC != 0
	switch {
	case create && excl:
		o.Disposition = iomgr.FileCreate
	case create && trunc:
		o.Disposition = iomgr.FileOverwriteIf
	case create:
		o.Disposition = iomgr.FileOpenIf
	case trunc:
		o.Disposition = iomgr.FileOverwrite
	default:
		o.Disposition = iomgr.FileOpen
	}
	fo, _, err := v.open("open", name, o)
	if err != nil {
		return nil, err
	}
	f := &File{vol: v, fo: fo, name: name}
	if flag&os.O_APPEND != 0 {
		var st iomgr.FileStandardInformation
		if err := v.query(fo, iomgr.FileStandardInformationClass, &st); err != nil {
			f.Close()
			return nil, pathError("open", name, err)
		}
		f.offset = st.EndOfFile
		f.append = true
	}
	return f, nil
}

// Create creates or truncates the named file for writing.
func (v *Volume) Create(name string) (*File, error) {
	return v.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC)
}

// WriteFile writes data to the named file, creating or truncating it.
func (v *Volume) WriteFile(name string, data []byte) error {
	f, err := v.Create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadFile reads the whole named file (fs.ReadFileFS).
func (v *Volume) ReadFile(name string) ([]byte, error) {
	f, err := v.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// Stat returns the named file's information (fs.StatFS).
func (v *Volume) Stat(name string) (fs.FileInfo, error) {
	fo, err := v.openShared("stat", name, iomgr.FileReadAttributes)
	if err != nil {
		return nil, err
	}
	defer fo.CloseHandle(v.Requestor)
	info, err := v.fileInfo(fo, path.Base(name))
	if err != nil {
		return nil, pathError("stat", name, err)
	}
	return info, nil
}

func (v *Volume) fileInfo(fo *iomgr.FileObject, base string) (*FileInfo, error) {
	var all iomgr.FileAllInformation
	// Fast I/O first: basic and standard information are what a FileInfo
	// needs; the IRP asks for everything at once.
	var bios, sios iomgr.IOStatusBlock
	dev, fio := fastIO(fo)
	if fio == nil || fio.QueryBasicInfo == nil || fio.QueryStandardInfo == nil ||
		!fio.QueryBasicInfo(dev, fo, true, &all.Basic, &bios) || !bios.Status.IsSuccess() ||
		!fio.QueryStandardInfo(dev, fo, true, &all.Standard, &sios) || !sios.Status.IsSuccess() {
		if err := v.query(fo, iomgr.FileAllInformationClass, &all); err != nil {
			return nil, err
		}
	}
	if base == "." || base == "/" {
		base = "."
	}
	return &FileInfo{name: base, size: all.Standard.EndOfFile, mtime: all.Basic.LastWriteTime,
		attrs: all.Basic.FileAttributes, dir: all.Standard.Directory,
		Created: all.Basic.CreationTime, Accessed: all.Basic.LastAccessTime}, nil
}

// ReadDir lists the named directory, sorted by name (fs.ReadDirFS).
func (v *Volume) ReadDir(name string) ([]fs.DirEntry, error) {
	f, err := v.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.(*File).ReadDir(-1)
	if err != nil {
		return nil, err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	return entries, nil
}

// Mkdir creates a directory.
func (v *Volume) Mkdir(name string) error {
	fo, _, err := v.open("mkdir", name, mount.OpenOptions{DesiredAccess: iomgr.FileGenericRead,
		Disposition: iomgr.FileCreate, Options: iomgr.FileDirectoryFile, ShareAccess: iomgr.ShareRead | iomgr.ShareWrite})
	if err != nil {
		return err
	}
	fo.CloseHandle(v.Requestor)
	return nil
}

// MkdirAll creates a directory and any missing parents.
func (v *Volume) MkdirAll(name string) error {
	if name == "." || name == "" {
		return nil
	}
	if info, err := v.Stat(name); err == nil {
		if !info.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: name, Err: statusError{iomgr.StatusNotADirectory}}
		}
		return nil
	}
	if err := v.MkdirAll(path.Dir(name)); err != nil {
		return err
	}
	if err := v.Mkdir(name); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// Remove deletes a file or an empty directory.
func (v *Volume) Remove(name string) error {
	fo, err := v.openShared("remove", name, iomgr.Delete)
	if err != nil {
		return err
	}
	err = v.set(fo, iomgr.FileDispositionInformationClass, &iomgr.FileDispositionInformation{DeleteFile: true}, false)
	fo.CloseHandle(v.Requestor)
	return pathError("remove", name, err)
}

// RemoveAll deletes name and everything under it.
func (v *Volume) RemoveAll(name string) error {
	info, err := v.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if info.IsDir() {
		entries, err := v.ReadDir(name)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := v.RemoveAll(path.Join(name, e.Name())); err != nil {
				return err
			}
		}
	}
	if name == "." {
		return nil
	}
	return v.Remove(name)
}

// Rename moves oldname to newname (replacing an existing file when replace is set).
func (v *Volume) Rename(oldname, newname string, replace bool) error {
	if !fs.ValidPath(newname) || strings.ContainsRune(newname, '\\') {
		return &fs.PathError{Op: "rename", Path: newname, Err: fs.ErrInvalid}
	}
	fo, err := v.openShared("rename", oldname, iomgr.Delete|iomgr.FileReadAttributes)
	if err != nil {
		return err
	}
	defer fo.CloseHandle(v.Requestor)
	in := &iomgr.FileRenameInformation{ReplaceIfExists: replace, FileName: `\` + strings.ReplaceAll(newname, "/", `\`)}
	return pathError("rename", oldname, v.set(fo, iomgr.FileRenameInformationClass, in, replace))
}

// Chtimes sets the access and modification times (zero leaves one unchanged).
func (v *Volume) Chtimes(name string, atime, mtime time.Time) error {
	fo, err := v.openShared("chtimes", name, iomgr.FileWriteAttributes)
	if err != nil {
		return err
	}
	defer fo.CloseHandle(v.Requestor)
	return pathError("chtimes", name, v.setTimes(fo, atime, mtime))
}

// setTimes sets the access and modification times of fo (zero leaves one
// unchanged).
func (v *Volume) setTimes(fo *iomgr.FileObject, atime, mtime time.Time) error {
	return v.set(fo, iomgr.FileBasicInformationClass, &iomgr.FileBasicInformation{LastAccessTime: atime, LastWriteTime: mtime}, false)
}

// FileID returns the ID (see File.ID) of the named file or directory.
func (v *Volume) FileID(name string) (int64, error) {
	fo, err := v.openShared("id", name, iomgr.FileReadAttributes)
	if err != nil {
		return 0, err
	}
	defer fo.CloseHandle(v.Requestor)
	id, err := v.fileID(fo)
	return id, pathError("id", name, err)
}

// fileID asks the file system for fo's FileInternalInformation.
func (v *Volume) fileID(fo *iomgr.FileObject) (int64, error) {
	var in iomgr.FileInternalInformation
	if err := v.query(fo, iomgr.FileInternalInformationClass, &in); err != nil {
		return 0, err
	}
	return in.IndexNumber, nil
}

// VolumeInfo describes a mounted file system.
type VolumeInfo struct {
	FileSystem  string // "FAT12", "FAT16", "FAT32" or "FAT"
	Label       string
	Serial      uint32
	TotalBytes  int64
	FreeBytes   int64
	ClusterSize int64
}

// Info queries the file system's label, serial and sizes.
func (v *Volume) Info() (VolumeInfo, error) {
	fo, err := v.openShared("statfs", ".", iomgr.FileReadAttributes)
	if err != nil {
		return VolumeInfo{}, err
	}
	defer fo.CloseHandle(v.Requestor)
	var vi iomgr.FileFsVolumeInformation
	var si iomgr.FileFsSizeInformation
	var ai iomgr.FileFsAttributeInformation
	for _, q := range []struct {
		class iomgr.FSInformationClass
		out   any
	}{{iomgr.FileFsVolumeInformationClass, &vi}, {iomgr.FileFsSizeInformationClass, &si}, {iomgr.FileFsAttributeInformationClass, &ai}} {
		st := v.send(fo, iomgr.MajorQueryVolumeInformation, 0, func(irp *iomgr.IRP, sl *iomgr.StackLocation) {
			irp.SystemBuffer = q.out
			sl.Parameters.QueryVolume = iomgr.QueryVolumeParameters{Class: q.class}
		}).Status
		if !st.IsSuccess() {
			return VolumeInfo{}, pathError("statfs", v.Name, st)
		}
	}
	cluster := int64(si.SectorsPerAllocationUnit) * int64(si.BytesPerSector)
	return VolumeInfo{FileSystem: ai.FileSystemName, Label: vi.VolumeLabel, Serial: vi.VolumeSerialNumber,
		TotalBytes: si.TotalAllocationUnits * cluster, FreeBytes: si.AvailableAllocationUnits * cluster, ClusterSize: cluster}, nil
}

// SetLabel sets the volume label.
func (v *Volume) SetLabel(label string) error {
	fo, err := v.openShared("label", ".", iomgr.FileWriteData)
	if err != nil {
		return err
	}
	defer fo.CloseHandle(v.Requestor)
	st := v.send(fo, iomgr.MajorSetVolumeInformation, 0, func(irp *iomgr.IRP, sl *iomgr.StackLocation) {
		irp.SystemBuffer = &iomgr.FileFsLabelInformation{VolumeLabel: label}
		sl.Parameters.SetVolume = iomgr.QueryVolumeParameters{Class: iomgr.FileFsLabelInformationClass}
	}).Status
	return pathError("label", v.Name, st.Err())
}

// Mount mounts the volume now (it is mounted on first use anyway); a
// mounted volume stays as it is.
func (v *Volume) Mount() error {
	_, err := v.sys.mounts.Mount(v.Device, mount.MountOptions{Requestor: v.Requestor})
	return err
}

// Dismount flushes and dismounts the volume's file system; force
// dismounts it even with files open (their handles then fail).
func (v *Volume) Dismount(force bool) error {
	return v.sys.mounts.Dismount(v.Device, mount.DismountOptions{Force: force, Requestor: v.Requestor})
}

// ErrVolumeInUse is why Lock is refused: files are open on the volume.
var ErrVolumeInUse = errors.New("files are open on it")

// VolumeLock is a volume locked with FSCTL_LOCK_VOLUME: it holds a handle
// on the volume, and other opens are refused, until Unlock.
type VolumeLock struct {
	v  *Volume
	fo *iomgr.FileObject
}

// Lock opens the volume (mounting it if needed) and locks it: the lock
// belongs to that handle. A volume with files open refuses, with an error
// that matches ErrVolumeInUse and the file system's status.
func (v *Volume) Lock() (*VolumeLock, error) {
	fo, _, err := v.sys.mounts.Open(`\DosDevices\`+v.Name, mount.OpenOptions{Requestor: v.Requestor,
		DesiredAccess: iomgr.FileGenericRead | iomgr.FileGenericWrite, ShareAccess: iomgr.ShareRead | iomgr.ShareWrite,
		Disposition: iomgr.FileOpen})
	if err != nil {
		return nil, err
	}
	if err := mount.FileSystemControl(fo, iomgr.FSCTLLockVolume, nil, nil, v.Requestor); err != nil {
		fo.CloseHandle(v.Requestor)
		return nil, fmt.Errorf("%w: %w", ErrVolumeInUse, err)
	}
	return &VolumeLock{v: v, fo: fo}, nil
}

// Unlock gives the lock back (FSCTL_UNLOCK_VOLUME) and closes its handle,
// which unlocks the volume whatever the control said; it returns the
// control's error.
func (l *VolumeLock) Unlock() error {
	err := mount.FileSystemControl(l.fo, iomgr.FSCTLUnlockVolume, nil, nil, l.v.Requestor)
	l.fo.CloseHandle(l.v.Requestor)
	return err
}
