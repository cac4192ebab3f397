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

// statusError carries an NT status and answers errors.Is for the io/fs
// sentinel that means the same, so callers can test either.
type statusError struct{ st iomgr.Status }

func (e statusError) Error() string { return e.st.Error() }
func (e statusError) Unwrap() error { return e.st }

func (e statusError) Is(target error) bool {
	switch target {
	case fs.ErrNotExist:
		return e.st == iomgr.StatusObjectNameNotFound || e.st == iomgr.StatusObjectPathNotFound
	case fs.ErrExist:
		return e.st == iomgr.StatusObjectNameCollision
	case fs.ErrPermission:
		return e.st == iomgr.StatusAccessDenied || e.st == iomgr.StatusMediaWriteProtected || e.st == iomgr.StatusSharingViolation
	case fs.ErrInvalid:
		return e.st == iomgr.StatusObjectNameInvalid || e.st == iomgr.StatusInvalidParameter
	case fs.ErrClosed:
		return e.st == iomgr.StatusFileClosed
	}
	return false
}

// pathError wraps an error of op on name so that it names the path and
// works with errors.Is for both NT statuses and io/fs sentinels.
func pathError(op, name string, err error) error {
	if err == nil {
		return nil
	}
	var st iomgr.Status
	if errors.As(err, &st) {
		err = statusError{st}
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

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
	fo, info, err := v.sys.Mounts.Open(v.nt(name), o)
	if err != nil {
		return nil, 0, pathError(op, name, err)
	}
	return fo, info, nil
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

// transfer sends one read or write of p at off on fo, as its user's
// request.
func (v *Volume) transfer(fo *iomgr.FileObject, major iomgr.MajorFunction, p []byte, off int64) iomgr.IOStatusBlock {
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
	fo, _, err := v.open("stat", name, mount.OpenOptions{DesiredAccess: iomgr.FileReadAttributes,
		ShareAccess: iomgr.ShareRead | iomgr.ShareWrite | iomgr.ShareDelete, Disposition: iomgr.FileOpen})
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
	fo, _, err := v.open("remove", name, mount.OpenOptions{DesiredAccess: iomgr.Delete,
		Disposition: iomgr.FileOpen, ShareAccess: iomgr.ShareRead | iomgr.ShareWrite | iomgr.ShareDelete})
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
	fo, _, err := v.open("rename", oldname, mount.OpenOptions{DesiredAccess: iomgr.Delete | iomgr.FileReadAttributes,
		Disposition: iomgr.FileOpen, ShareAccess: iomgr.ShareRead | iomgr.ShareWrite | iomgr.ShareDelete})
	if err != nil {
		return err
	}
	defer fo.CloseHandle(v.Requestor)
	in := &iomgr.FileRenameInformation{ReplaceIfExists: replace, FileName: `\` + strings.ReplaceAll(newname, "/", `\`)}
	return pathError("rename", oldname, v.set(fo, iomgr.FileRenameInformationClass, in, replace))
}

// Chtimes sets the access and modification times of the open file (zero
// leaves one unchanged), as Volume.Chtimes does by name but without opening
// the file again. A later write sets the modification time anew.
func (f *File) Chtimes(atime, mtime time.Time) error {
	if f.closed {
		return &fs.PathError{Op: "chtimes", Path: f.name, Err: fs.ErrClosed}
	}
	return pathError("chtimes", f.name, f.vol.set(f.fo, iomgr.FileBasicInformationClass,
		&iomgr.FileBasicInformation{LastAccessTime: atime, LastWriteTime: mtime}, false))
}

// Chtimes sets the access and modification times (zero leaves one unchanged).
func (v *Volume) Chtimes(name string, atime, mtime time.Time) error {
	fo, _, err := v.open("chtimes", name, mount.OpenOptions{DesiredAccess: iomgr.FileWriteAttributes,
		Disposition: iomgr.FileOpen, ShareAccess: iomgr.ShareRead | iomgr.ShareWrite | iomgr.ShareDelete})
	if err != nil {
		return err
	}
	defer fo.CloseHandle(v.Requestor)
	return pathError("chtimes", name, v.set(fo, iomgr.FileBasicInformationClass,
		&iomgr.FileBasicInformation{LastAccessTime: atime, LastWriteTime: mtime}, false))
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
	fo, _, err := v.open("statfs", ".", mount.OpenOptions{DesiredAccess: iomgr.FileReadAttributes,
		Disposition: iomgr.FileOpen, ShareAccess: iomgr.ShareRead | iomgr.ShareWrite | iomgr.ShareDelete})
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
	fo, _, err := v.open("label", ".", mount.OpenOptions{DesiredAccess: iomgr.FileWriteData,
		Disposition: iomgr.FileOpen, ShareAccess: iomgr.ShareRead | iomgr.ShareWrite | iomgr.ShareDelete})
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

// Dismount flushes and dismounts the volume's file system.
func (v *Volume) Dismount(force bool) error {
	return v.sys.Mounts.Dismount(v.Device, mount.DismountOptions{Force: force, Requestor: v.Requestor})
}

// FileInfo is the fs.FileInfo of a file on a volume.
type FileInfo struct {
	name  string
	size  int64
	mtime time.Time
	attrs iomgr.FileAttributes
	dir   bool
	// Created and Accessed are the file's other times.
	Created, Accessed time.Time
	// ShortName is the 8.3 name when it differs from the name (from ReadDir only).
	ShortName string
}

// Name implements fs.FileInfo.
func (fi *FileInfo) Name() string { return fi.name }

// Size implements fs.FileInfo.
func (fi *FileInfo) Size() int64 { return fi.size }

// ModTime implements fs.FileInfo.
func (fi *FileInfo) ModTime() time.Time { return fi.mtime }

// IsDir implements fs.FileInfo.
func (fi *FileInfo) IsDir() bool { return fi.dir }

// Sys returns the FAT attributes (iomgr.FileAttributes).
func (fi *FileInfo) Sys() any { return fi.attrs }

// Attributes returns the file's attributes.
func (fi *FileInfo) Attributes() iomgr.FileAttributes { return fi.attrs }

// Mode implements fs.FileInfo: directories are 0755, read-only files 0444, others 0644.
func (fi *FileInfo) Mode() fs.FileMode {
	switch {
	case fi.dir:
		return fs.ModeDir | 0o755
	case fi.attrs&iomgr.FileAttributeReadOnly != 0:
		return 0o444
	}
	return 0o644
}

// Type implements fs.DirEntry.
func (fi *FileInfo) Type() fs.FileMode { return fi.Mode().Type() }

// Info implements fs.DirEntry.
func (fi *FileInfo) Info() (fs.FileInfo, error) { return fi, nil }

// String formats the entry like fs.FormatDirEntry.
func (fi *FileInfo) String() string { return fs.FormatFileInfo(fi) }

// File is an open file or directory on a volume.
type File struct {
	vol    *Volume
	fo     *iomgr.FileObject
	name   string
	offset int64
	append bool
	closed bool
	dirEOF bool
	dirBuf []fs.DirEntry // entries fetched from the file system, not yet returned
	// ShortNames, when set before ReadDir, makes it report 8.3 names.
	ShortNames bool
}

// Stat implements fs.File.
func (f *File) Stat() (fs.FileInfo, error) {
	if f.closed {
		return nil, pathError("stat", f.name, iomgr.StatusFileClosed)
	}
	info, err := f.vol.fileInfo(f.fo, path.Base(f.name))
	if err != nil {
		// A nil *FileInfo in the interface would not compare equal to nil.
		return nil, pathError("stat", f.name, err)
	}
	return info, nil
}

// ID returns a number that names the open file on its volume for as long
// as it exists (FileInternalInformation, NTFS's file reference number; for
// FAT the place of its directory entry): two names with one ID are one file,
// however their case or 8.3 aliases differ.
func (f *File) ID() (int64, error) {
	if f.closed {
		return 0, pathError("id", f.name, iomgr.StatusFileClosed)
	}
	var in iomgr.FileInternalInformation
	if err := f.vol.query(f.fo, iomgr.FileInternalInformationClass, &in); err != nil {
		return 0, pathError("id", f.name, err)
	}
	return in.IndexNumber, nil
}

// FileID returns the ID (see File.ID) of the named file or directory.
func (v *Volume) FileID(name string) (int64, error) {
	fo, _, err := v.open("id", name, mount.OpenOptions{DesiredAccess: iomgr.FileReadAttributes,
		ShareAccess: iomgr.ShareRead | iomgr.ShareWrite | iomgr.ShareDelete, Disposition: iomgr.FileOpen})
	if err != nil {
		return 0, err
	}
	defer fo.CloseHandle(v.Requestor)
	var in iomgr.FileInternalInformation
	if err := v.query(fo, iomgr.FileInternalInformationClass, &in); err != nil {
		return 0, pathError("id", name, err)
	}
	return in.IndexNumber, nil
}

// Read implements io.Reader.
func (f *File) Read(p []byte) (int, error) {
	n, err := f.ReadAt(p, f.offset)
	f.offset += int64(n)
	return n, err
}

// ReadAt implements io.ReaderAt: a fast I/O read at off, or an
// IRP_MJ_READ when the file system cannot serve it from its cache.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if f.closed {
		return 0, pathError("read", f.name, iomgr.StatusFileClosed)
	}
	if len(p) == 0 {
		return 0, nil
	}
	total := 0
	for total < len(p) {
		n, ios := f.transferChunk(iomgr.MajorRead, p[total:], off+int64(total))
		total += int(ios.Information)
		if ios.Status == iomgr.StatusEndOfFile {
			return total, io.EOF
		}
		if !ios.Status.IsSuccess() {
			return total, pathError("read", f.name, ios.Status)
		}
		if int(ios.Information) < n {
			return total, io.EOF
		}
	}
	return total, nil
}

// transferChunk reads or writes at most 1 GiB of p at off: a fast I/O call,
// or an IRP when the file system cannot serve it from its cache. It returns
// how many bytes it asked for and the I/O status.
func (f *File) transferChunk(major iomgr.MajorFunction, p []byte, off int64) (int, iomgr.IOStatusBlock) {
	if len(p) > 1<<30 {
		p = p[:1<<30]
	}
	var ios iomgr.IOStatusBlock
	dev, fio := fastIO(f.fo)
	var call func(*iomgr.Device, *iomgr.FileObject, int64, []byte, bool, *iomgr.IOStatusBlock) bool
	if fio != nil {
		call = fio.Read
		if major == iomgr.MajorWrite {
			call = fio.Write
		}
	}
	if call == nil || !call(dev, f.fo, off, p, true, &ios) {
		ios = f.vol.transfer(f.fo, major, p, off)
	}
	return len(p), ios
}

// Write implements io.Writer.
func (f *File) Write(p []byte) (int, error) {
	n, err := f.WriteAt(p, f.offset)
	f.offset += int64(n)
	return n, err
}

// WriteAt implements io.WriterAt: a fast I/O write at off, or an
// IRP_MJ_WRITE when the file system cannot take it into its cache.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	if f.closed {
		return 0, pathError("write", f.name, iomgr.StatusFileClosed)
	}
	total := 0
	for total < len(p) {
		_, ios := f.transferChunk(iomgr.MajorWrite, p[total:], off+int64(total))
		total += int(ios.Information)
		if !ios.Status.IsSuccess() {
			return total, pathError("write", f.name, ios.Status)
		}
		if ios.Information == 0 {
			return total, pathError("write", f.name, io.ErrShortWrite)
		}
	}
	return total, nil
}

// Seek implements io.Seeker.
func (f *File) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.offset
	case io.SeekEnd:
		var st iomgr.FileStandardInformation
		if err := f.vol.query(f.fo, iomgr.FileStandardInformationClass, &st); err != nil {
			return 0, pathError("seek", f.name, err)
		}
		offset += st.EndOfFile
	default:
		return 0, pathError("seek", f.name, iomgr.StatusInvalidParameter)
	}
	if offset < 0 {
		return 0, pathError("seek", f.name, iomgr.StatusInvalidParameter)
	}
	f.offset = offset
	return offset, nil
}

// Truncate sets the file's size.
func (f *File) Truncate(size int64) error {
	return pathError("truncate", f.name, f.vol.set(f.fo, iomgr.FileEndOfFileInformationClass, &iomgr.FileEndOfFileInformation{EndOfFile: size}, false))
}

// Sync flushes the file's data and metadata to the disk.
func (f *File) Sync() error {
	return pathError("sync", f.name, f.vol.send(f.fo, iomgr.MajorFlushBuffers, 0, nil).Status.Err())
}

// ReadDir implements fs.ReadDirFile: it enumerates with IRP_MN_QUERY_DIRECTORY.
func (f *File) ReadDir(n int) ([]fs.DirEntry, error) {
	if f.closed {
		return nil, pathError("readdir", f.name, iomgr.StatusFileClosed)
	}
	for !f.dirEOF && (n <= 0 || len(f.dirBuf) < n) {
		var batch []iomgr.FileDirectoryEntry
		ios := f.vol.send(f.fo, iomgr.MajorDirectoryControl, iomgr.MinorQueryDirectory, func(irp *iomgr.IRP, sl *iomgr.StackLocation) {
			irp.SystemBuffer = &batch
			sl.Parameters.QueryDirectory = iomgr.QueryDirectoryParameters{Class: iomgr.FileBothDirectoryInformationClass, FileName: "*"}
		})
		if ios.Status == iomgr.StatusNoMoreFiles || ios.Status == iomgr.StatusObjectNameNotFound {
			f.dirEOF = true
			break
		}
		if !ios.Status.IsSuccess() {
			return nil, pathError("readdir", f.name, ios.Status)
		}
		for _, e := range batch {
			if e.FileName == "." || e.FileName == ".." {
				continue
			}
			name := e.FileName
			if f.ShortNames && e.ShortName != "" {
				name = e.ShortName
			}
			f.dirBuf = append(f.dirBuf, &FileInfo{name: name, size: e.EndOfFile, mtime: e.LastWriteTime, attrs: e.FileAttributes,
				dir: e.FileAttributes&iomgr.FileAttributeDirectory != 0, Created: e.CreationTime, Accessed: e.LastAccessTime,
				ShortName: e.ShortName})
		}
		if len(batch) == 0 {
			f.dirEOF = true
		}
	}
	out := f.dirBuf
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	f.dirBuf = f.dirBuf[len(out):]
	if n > 0 && len(out) == 0 {
		return nil, io.EOF
	}
	return out, nil
}

// Close closes the handle (cleanup, then close when unreferenced).
func (f *File) Close() error {
	if f.closed {
		return pathError("close", f.name, iomgr.StatusFileClosed)
	}
	f.closed = true
	return pathError("close", f.name, f.fo.CloseHandle(f.vol.Requestor).Err())
}

// OpenVolume returns the volume at addr: `disk@N` for partition N of the
// image named disk, or `disk` for a disk without a partition table (or with
// exactly one partition).
func (s *System) OpenVolume(addr, requestor string) (*Volume, error) {
	name, idx, hasIdx := strings.Cut(addr, "@")
	img := s.Image(name)
	if img == nil {
		return nil, fmt.Errorf("no image named %q", name)
	}
	if !hasIdx {
		if len(img.Volumes) != 1 {
			return nil, fmt.Errorf("%s has %d partitions: say which, e.g. %s@1", name, len(img.Volumes), name)
		}
		v := img.Volumes[0]
		vname := name
		if len(img.Partitions) > 0 {
			vname = name + "@1"
		}
		return &Volume{sys: s, Name: vname, Device: v, Requestor: requestor}, nil
	}
	n, ok := partitionNumber(idx)
	if !ok {
		return nil, fmt.Errorf("%q: partition number %q is not a number", addr, idx)
	}
	if n < 1 || n > len(img.Partitions) {
		return nil, fmt.Errorf("%s has no partition %d: it has %d", name, n, len(img.Partitions))
	}
	return &Volume{sys: s, Name: addr, Device: img.Volumes[n-1], Requestor: requestor}, nil
}
