package vdisk

import (
	"io"
	"io/fs"
	"path"
	"time"

	"github.com/vdisk-dev/vdisk/iomgr"
)

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
	id, err := f.vol.fileID(f.fo)
	return id, pathError("id", f.name, err)
}

// Chtimes sets the access and modification times of the open file (zero
// leaves one unchanged), as Volume.Chtimes does by name but without opening
// the file again. A later write sets the modification time anew.
func (f *File) Chtimes(atime, mtime time.Time) error {
	if f.closed {
		return &fs.PathError{Op: "chtimes", Path: f.name, Err: fs.ErrClosed}
	}
	return pathError("chtimes", f.name, f.vol.setTimes(f.fo, atime, mtime))
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
	return f.transfer(iomgr.MajorRead, p, off)
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
	return f.transfer(iomgr.MajorWrite, p, off)
}

// maxTransfer is the most one read or write request carries.
const maxTransfer = 1 << 30

// transfer reads or writes p at off, in requests of at most maxTransfer
// bytes, each tried as fast I/O first. A read ends at the end of the file
// (io.EOF); a write that makes no progress fails (io.ErrShortWrite).
func (f *File) transfer(major iomgr.MajorFunction, p []byte, off int64) (int, error) {
	op := "read"
	if major == iomgr.MajorWrite {
		op = "write"
	}
	if f.closed {
		return 0, pathError(op, f.name, iomgr.StatusFileClosed)
	}
	total := 0
	for total < len(p) {
		chunk := p[total:min(len(p), total+maxTransfer)]
		ios := f.fastOrIRP(major, chunk, off+int64(total))
		total += int(ios.Information)
		switch {
		case major == iomgr.MajorRead && ios.Status == iomgr.StatusEndOfFile:
			return total, io.EOF
		case !ios.Status.IsSuccess():
			return total, pathError(op, f.name, ios.Status)
		case major == iomgr.MajorRead && int(ios.Information) < len(chunk):
			return total, io.EOF
		case ios.Information == 0:
			return total, pathError(op, f.name, io.ErrShortWrite)
		}
	}
	return total, nil
}

// fastOrIRP moves one chunk: through the fast I/O routine of the volume
// stack's top driver when it serves it, else as an IRP.
func (f *File) fastOrIRP(major iomgr.MajorFunction, p []byte, off int64) iomgr.IOStatusBlock {
	var ios iomgr.IOStatusBlock
	dev, fio := fastIO(f.fo)
	if fio != nil {
		fast := fio.Read
		if major == iomgr.MajorWrite {
			fast = fio.Write
		}
		if fast != nil && fast(dev, f.fo, off, p, true, &ios) {
			return ios
		}
	}
	return f.vol.sendTransfer(f.fo, major, p, off)
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
