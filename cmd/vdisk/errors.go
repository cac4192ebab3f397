package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/fsd/fat"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// explained is an error rewritten for the user: msg names the object as
// it was typed on the command line and says why in words; err is kept so
// errors.Is and errors.As still see the status underneath.
type explained struct {
	msg string
	err error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

// explain rewrites an error of op on the volume at vol (an image address,
// its Path ignored) into "op IMAGE@N:/path: reason (STATUS_NAME)". The
// library's path errors name volume-relative paths and NT statuses, which
// say little to someone who typed `disk.img@1:/EFI/BOOT`; the status name
// stays at the end for those who study the stack. v may be nil when the
// volume never opened; some reasons (a missing parent, free space) then
// stay less specific.
func explain(op string, vol Address, v *vdisk.Volume, err error) error {
	if err == nil {
		return nil
	}
	var ex *explained
	if errors.As(err, &ex) {
		return err
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		return err
	}
	volume := Address{Image: vol.Image, Partition: vol.Partition}
	obj := Address{Image: vol.Image, Partition: vol.Partition, Path: pe.Path, HasPath: true}
	if v != nil && pe.Path == v.Name || op == "label" {
		// Volume-wide operations (label, statfs) name the volume.
		obj = volume
	}
	st := iomgr.StatusOf(pe.Err)
	if v != nil && st != iomgr.StatusUnsuccessful && !isDeviceError(st) && !hasFileSystem(v) {
		// The raw file system claimed the volume: it answers
		// "not found" or "invalid request" to everything, and the
		// reason is that there is nothing to find things in.
		return &explained{msg: fmt.Sprintf("%s %s: no FAT file system on the volume; vdisk format makes one (%s)", op, obj, st.Name()), err: err}
	}
	var reason string
	switch st {
	case iomgr.StatusObjectNameNotFound:
		reason = "no such file or directory"
	case iomgr.StatusObjectPathNotFound:
		reason = missingParent(v, pe.Path)
	case iomgr.StatusObjectNameCollision:
		reason = "already exists"
	case iomgr.StatusObjectNameInvalid:
		reason = nameReason(pe.Path)
	case iomgr.StatusDiskFull:
		reason = fullReason(v)
	case iomgr.StatusCannotMake:
		reason = fullDirReason(v, pe.Path)
	case iomgr.StatusVolumeDirty:
		reason = "the file system is corrupt, so writes to it are refused: repair it with vdisk check --repair " + volume.String()
	case iomgr.StatusFileIsADirectory:
		reason = "is a directory"
	case iomgr.StatusNotADirectory:
		reason = "is not a directory"
	case iomgr.StatusDirectoryNotEmpty:
		reason = "directory is not empty"
	case iomgr.StatusMediaWriteProtected:
		reason = "the volume is write-protected"
	case iomgr.StatusAccessDenied, iomgr.StatusCannotDelete:
		reason = "access denied"
		if v != nil {
			if fi, err := v.Stat(pe.Path); err == nil {
				if attrs, ok := fi.Sys().(iomgr.FileAttributes); ok && attrs&iomgr.FileAttributeReadOnly != 0 {
					reason = "access denied: it is read-only"
				}
			}
		}
	case iomgr.StatusSharingViolation:
		reason = "in use by another open handle"
	case iomgr.StatusFileCorruptError, iomgr.StatusDiskCorruptError:
		reason = "the file system is corrupt; fsck.fat -n tells more"
	case iomgr.StatusUnsuccessful:
		// No status: the library refused the path itself.
		switch {
		case errors.Is(pe.Err, fs.ErrInvalid) && strings.Contains(pe.Path, `\`):
			reason = `a name FAT cannot hold: "\" is not allowed (separate names with /)`
		case errors.Is(pe.Err, fs.ErrInvalid):
			reason = "not a valid path (separate names with /)"
		default:
			reason = pe.Err.Error()
		}
		return &explained{msg: fmt.Sprintf("%s %s: %s", op, obj, reason), err: err}
	default:
		reason = statusText(st)
	}
	return &explained{msg: fmt.Sprintf("%s %s: %s (%s)", op, obj, reason, st.Name()), err: err}
}

// statusText is a status's description without its name.
func statusText(st iomgr.Status) string {
	_, text, ok := strings.Cut(st.Error(), ": ")
	if !ok {
		return "failed"
	}
	return text
}

// missingParent names the first directory of name's parents that does not
// exist, or the first that is a file.
func missingParent(v *vdisk.Volume, name string) string {
	if v == nil {
		return "a directory in the path does not exist"
	}
	dir := path.Dir(name)
	if dir == "." {
		return "a directory in the path does not exist"
	}
	parts := strings.Split(dir, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		fi, err := v.Stat(p)
		switch {
		case err != nil:
			return "directory /" + p + " does not exist"
		case !fi.IsDir():
			return "/" + p + " is a file, not a directory"
		}
	}
	return "a directory in the path does not exist"
}

// nameReason says which component of name FAT cannot hold, and why.
func nameReason(name string) string {
	for _, c := range strings.Split(name, "/") {
		if _, err := fat.CleanLongName(c); err != nil {
			return "a name FAT cannot hold: " + fatReason(err)
		}
	}
	return "the file system refused the name"
}

// fatReason strips the package prefix ("fat: invalid file name: ") from
// an ErrInvalidName error, leaving the reason.
func fatReason(err error) string {
	return strings.TrimPrefix(err.Error(), fat.ErrInvalidName.Error()+": ")
}

// fullReason says how much room the volume has left.
func fullReason(v *vdisk.Volume) string {
	if v == nil {
		return "the volume is full"
	}
	info, err := v.Info()
	if err != nil {
		return "the volume is full"
	}
	return fmt.Sprintf("the volume is full (%s free of %s)",
		humanize.IBytes(uint64(info.FreeBytes)), humanize.IBytes(uint64(info.TotalBytes)))
}

// fullDirReason says which directory is full when the file system could
// not make another entry in the directory of name (a volume-relative
// path): a FAT12/16 root directory has a fixed size, any other directory
// holds at most 65,536 entries (a long name takes several).
func fullDirReason(v *vdisk.Volume, name string) string {
	dir := path.Dir(name)
	if dir == "." {
		if v == nil {
			return "the root directory is full"
		}
		if info, err := v.Info(); err == nil && info.FileSystem != "FAT32" {
			return "the root directory is full: a FAT12 or FAT16 root directory has a fixed number of entries (vdisk format --root-entries sets it); put files in a subdirectory"
		}
		dir = ""
	}
	return fmt.Sprintf("directory /%s is full: a FAT directory holds at most %s entries, and a long name takes several", dir, humanize.Comma(fat.MaxDirEntries))
}

// hasFileSystem reports whether a file system (not the raw one) mounted v.
// isDeviceError reports whether st says the device failed (a read or write
// error beneath the file system), which no missing file system explains.
func isDeviceError(st iomgr.Status) bool {
	switch st {
	case iomgr.StatusDeviceDataError, iomgr.StatusIODeviceError, iomgr.StatusDeviceNotReady,
		iomgr.StatusNoSuchDevice, iomgr.StatusNoMediaInDevice:
		return true
	}
	return false
}

func hasFileSystem(v *vdisk.Volume) bool {
	_, err := v.Info()
	return err == nil
}

// labelReason says why the FAT file system refused a label, when the
// FSD's only answer was a status.
func labelReason(label string) string {
	if _, err := fat.EncodeVolumeLabel(label, nil); err != nil {
		return fatReason(err)
	}
	return ""
}
