package vdisk

import (
	"errors"
	"io/fs"

	"github.com/vdisk-dev/vdisk/iomgr"
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
