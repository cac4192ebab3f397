package iomgr

import (
	"errors"
	"fmt"
)

// Status is an NTSTATUS: the result of an I/O request, with NT's name and value.
//
// A Status is an error, so a status travels through Go code like any other
// error and errors.Is(err, StatusDiskFull) finds it however deeply it was
// wrapped. Success and informational values are also Status values; use
// Status.Err to turn a status into a nil-or-error result.
type Status uint32

// The status codes vdisk's drivers return. Values are NT's, so traces and
// tests can be compared with Windows documentation and tools.
const (
	StatusSuccess                Status = 0x00000000
	StatusTimeout                Status = 0x00000102
	StatusPending                Status = 0x00000103
	StatusReparse                Status = 0x00000104
	StatusObjectNameExists       Status = 0x40000000
	StatusBufferOverflow         Status = 0x80000005
	StatusNoMoreFiles            Status = 0x80000006
	StatusDeviceBusy             Status = 0x80000011
	StatusVerifyRequired         Status = 0x80000016
	StatusUnsuccessful           Status = 0xC0000001
	StatusNotImplemented         Status = 0xC0000002
	StatusInvalidInfoClass       Status = 0xC0000003
	StatusInvalidHandle          Status = 0xC0000008
	StatusInvalidParameter       Status = 0xC000000D
	StatusNoSuchDevice           Status = 0xC000000E
	StatusInvalidDeviceRequest   Status = 0xC0000010
	StatusEndOfFile              Status = 0xC0000011
	StatusWrongVolume            Status = 0xC0000012
	StatusNoMediaInDevice        Status = 0xC0000013
	StatusMoreProcessingRequired Status = 0xC0000016
	StatusAccessDenied           Status = 0xC0000022
	StatusBufferTooSmall         Status = 0xC0000023
	StatusNotLocked              Status = 0xC000002A
	StatusDiskCorruptError       Status = 0xC0000032
	StatusObjectNameInvalid      Status = 0xC0000033
	StatusObjectNameNotFound     Status = 0xC0000034
	StatusObjectNameCollision    Status = 0xC0000035
	StatusObjectPathNotFound     Status = 0xC000003A
	StatusSharingViolation       Status = 0xC0000043
	StatusFileLockConflict       Status = 0xC0000054
	StatusLockNotGranted         Status = 0xC0000055
	StatusDeletePending          Status = 0xC0000056
	StatusDiskFull               Status = 0xC000007F
	StatusFileInvalid            Status = 0xC0000098
	StatusInsufficientResources  Status = 0xC000009A
	StatusDeviceDataError        Status = 0xC000009C
	StatusMediaWriteProtected    Status = 0xC00000A2
	StatusDeviceNotReady         Status = 0xC00000A3
	StatusFileIsADirectory       Status = 0xC00000BA
	StatusNotSupported           Status = 0xC00000BB
	StatusInvalidUserBuffer      Status = 0xC00000E8
	StatusDirectoryNotEmpty      Status = 0xC0000101
	StatusFileCorruptError       Status = 0xC0000102
	StatusNotADirectory          Status = 0xC0000103
	StatusNameTooLong            Status = 0xC0000106
	StatusCancelled              Status = 0xC0000120
	StatusCannotDelete           Status = 0xC0000121
	StatusFileDeleted            Status = 0xC0000123
	StatusFileClosed             Status = 0xC0000128
	StatusUnrecognizedVolume     Status = 0xC000014F
	StatusInvalidDeviceState     Status = 0xC0000184
	StatusIODeviceError          Status = 0xC0000185
	StatusFSDriverRequired       Status = 0xC000019C
	StatusVolumeDismounted       Status = 0xC000026E
	StatusCannotMake             Status = 0xC00002EA
	StatusVolumeDirty            Status = 0xC0000806
	StatusFileTooLarge           Status = 0xC0000904
)

type statusText struct{ name, text string }

var statusNames = map[Status]statusText{
	StatusSuccess:                {"STATUS_SUCCESS", "success"},
	StatusTimeout:                {"STATUS_TIMEOUT", "the wait timed out"},
	StatusPending:                {"STATUS_PENDING", "the operation is in progress"},
	StatusReparse:                {"STATUS_REPARSE", "the name must be parsed again"},
	StatusObjectNameExists:       {"STATUS_OBJECT_NAME_EXISTS", "the object already existed"},
	StatusBufferOverflow:         {"STATUS_BUFFER_OVERFLOW", "the data did not fit in the buffer"},
	StatusNoMoreFiles:            {"STATUS_NO_MORE_FILES", "no more files match"},
	StatusDeviceBusy:             {"STATUS_DEVICE_BUSY", "the device is busy"},
	StatusVerifyRequired:         {"STATUS_VERIFY_REQUIRED", "the volume must be verified"},
	StatusUnsuccessful:           {"STATUS_UNSUCCESSFUL", "the operation failed"},
	StatusNotImplemented:         {"STATUS_NOT_IMPLEMENTED", "the operation is not implemented"},
	StatusInvalidInfoClass:       {"STATUS_INVALID_INFO_CLASS", "the information class is not valid"},
	StatusInvalidHandle:          {"STATUS_INVALID_HANDLE", "the handle is not valid"},
	StatusInvalidParameter:       {"STATUS_INVALID_PARAMETER", "a parameter is not valid"},
	StatusNoSuchDevice:           {"STATUS_NO_SUCH_DEVICE", "no such device"},
	StatusInvalidDeviceRequest:   {"STATUS_INVALID_DEVICE_REQUEST", "the device does not handle this request"},
	StatusEndOfFile:              {"STATUS_END_OF_FILE", "end of file"},
	StatusWrongVolume:            {"STATUS_WRONG_VOLUME", "the wrong volume is in the drive"},
	StatusNoMediaInDevice:        {"STATUS_NO_MEDIA_IN_DEVICE", "no media in the device"},
	StatusMoreProcessingRequired: {"STATUS_MORE_PROCESSING_REQUIRED", "the IRP is still owned by a completion routine"},
	StatusAccessDenied:           {"STATUS_ACCESS_DENIED", "access denied"},
	StatusBufferTooSmall:         {"STATUS_BUFFER_TOO_SMALL", "the buffer is too small"},
	StatusNotLocked:              {"STATUS_NOT_LOCKED", "the volume is not locked"},
	StatusDiskCorruptError:       {"STATUS_DISK_CORRUPT_ERROR", "the disk structure is corrupt"},
	StatusObjectNameInvalid:      {"STATUS_OBJECT_NAME_INVALID", "the name is not valid"},
	StatusObjectNameNotFound:     {"STATUS_OBJECT_NAME_NOT_FOUND", "no such file or object"},
	StatusObjectNameCollision:    {"STATUS_OBJECT_NAME_COLLISION", "the name already exists"},
	StatusObjectPathNotFound:     {"STATUS_OBJECT_PATH_NOT_FOUND", "a directory in the path does not exist"},
	StatusSharingViolation:       {"STATUS_SHARING_VIOLATION", "the file is open in a conflicting share mode"},
	StatusFileLockConflict:       {"STATUS_FILE_LOCK_CONFLICT", "a lock conflicts with the request"},
	StatusLockNotGranted:         {"STATUS_LOCK_NOT_GRANTED", "the lock was not granted"},
	StatusDeletePending:          {"STATUS_DELETE_PENDING", "the file is being deleted"},
	StatusDiskFull:               {"STATUS_DISK_FULL", "the volume is full"},
	StatusFileInvalid:            {"STATUS_FILE_INVALID", "the file is no longer valid"},
	StatusInsufficientResources:  {"STATUS_INSUFFICIENT_RESOURCES", "insufficient resources"},
	StatusDeviceDataError:        {"STATUS_DEVICE_DATA_ERROR", "the device reported a data error"},
	StatusMediaWriteProtected:    {"STATUS_MEDIA_WRITE_PROTECTED", "the media is write-protected"},
	StatusDeviceNotReady:         {"STATUS_DEVICE_NOT_READY", "the device is not ready"},
	StatusFileIsADirectory:       {"STATUS_FILE_IS_A_DIRECTORY", "the name is a directory"},
	StatusNotSupported:           {"STATUS_NOT_SUPPORTED", "the request is not supported"},
	StatusInvalidUserBuffer:      {"STATUS_INVALID_USER_BUFFER", "the buffer is not valid for the request"},
	StatusDirectoryNotEmpty:      {"STATUS_DIRECTORY_NOT_EMPTY", "the directory is not empty"},
	StatusFileCorruptError:       {"STATUS_FILE_CORRUPT_ERROR", "the file system structure is corrupt"},
	StatusNotADirectory:          {"STATUS_NOT_A_DIRECTORY", "not a directory"},
	StatusNameTooLong:            {"STATUS_NAME_TOO_LONG", "the name is too long"},
	StatusCancelled:              {"STATUS_CANCELLED", "the request was cancelled"},
	StatusCannotDelete:           {"STATUS_CANNOT_DELETE", "the file cannot be deleted"},
	StatusFileDeleted:            {"STATUS_FILE_DELETED", "the file was deleted"},
	StatusFileClosed:             {"STATUS_FILE_CLOSED", "the file was closed"},
	StatusUnrecognizedVolume:     {"STATUS_UNRECOGNIZED_VOLUME", "no file system recognises the volume"},
	StatusInvalidDeviceState:     {"STATUS_INVALID_DEVICE_STATE", "the device is not in a state to accept the request"},
	StatusIODeviceError:          {"STATUS_IO_DEVICE_ERROR", "I/O error on the device"},
	StatusFSDriverRequired:       {"STATUS_FS_DRIVER_REQUIRED", "the volume must be opened through a file system"},
	StatusVolumeDismounted:       {"STATUS_VOLUME_DISMOUNTED", "the volume was dismounted"},
	StatusCannotMake:             {"STATUS_CANNOT_MAKE", "the directory cannot hold another entry"},
	StatusVolumeDirty:            {"STATUS_VOLUME_DIRTY", "the volume is marked for a check: writes wait until it is repaired"},
	StatusFileTooLarge:           {"STATUS_FILE_TOO_LARGE", "the file would exceed the file system's size limit"},
}

// Name returns the NT name of the status, such as "STATUS_DISK_FULL", or
// "STATUS_0xC0001234" for a value vdisk does not know.
func (s Status) Name() string {
	if t, ok := statusNames[s]; ok {
		return t.name
	}
	return fmt.Sprintf("STATUS_0x%08X", uint32(s))
}

// Error returns the NT name and a short description, so a user never sees a
// bare number.
func (s Status) Error() string {
	if t, ok := statusNames[s]; ok {
		return t.name + ": " + t.text
	}
	return s.Name()
}

// String returns the NT name.
func (s Status) String() string { return s.Name() }

// IsSuccess reports whether the status is a success or informational value
// (NT_SUCCESS: the severity bits are 00 or 01).
func (s Status) IsSuccess() bool { return int32(s) >= 0 }

// IsError reports whether the status has error severity (NT_ERROR).
func (s Status) IsError() bool { return uint32(s)>>30 == 3 }

// Err returns nil for a success status and the status itself otherwise,
// so callers can write `return irp.IoStatus.Status.Err()`.
func (s Status) Err() error {
	if s.IsSuccess() {
		return nil
	}
	return s
}

// StatusOf returns the Status an error carries: the Status in its chain, or
// StatusSuccess for nil, or StatusUnsuccessful for an error that carries none.
func StatusOf(err error) Status {
	if err == nil {
		return StatusSuccess
	}
	var s Status
	if errors.As(err, &s) {
		return s
	}
	return StatusUnsuccessful
}
