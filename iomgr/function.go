package iomgr

import "fmt"

// MajorFunction selects a driver's dispatch routine (IRP_MJ_*). Values are NT's.
type MajorFunction uint8

// The major functions.
const (
	MajorCreate                 MajorFunction = 0x00
	MajorCreateNamedPipe        MajorFunction = 0x01
	MajorClose                  MajorFunction = 0x02
	MajorRead                   MajorFunction = 0x03
	MajorWrite                  MajorFunction = 0x04
	MajorQueryInformation       MajorFunction = 0x05
	MajorSetInformation         MajorFunction = 0x06
	MajorQueryEA                MajorFunction = 0x07
	MajorSetEA                  MajorFunction = 0x08
	MajorFlushBuffers           MajorFunction = 0x09
	MajorQueryVolumeInformation MajorFunction = 0x0a
	MajorSetVolumeInformation   MajorFunction = 0x0b
	MajorDirectoryControl       MajorFunction = 0x0c
	MajorFileSystemControl      MajorFunction = 0x0d
	MajorDeviceControl          MajorFunction = 0x0e
	MajorInternalDeviceControl  MajorFunction = 0x0f
	MajorShutdown               MajorFunction = 0x10
	MajorLockControl            MajorFunction = 0x11
	MajorCleanup                MajorFunction = 0x12
	MajorCreateMailslot         MajorFunction = 0x13
	MajorQuerySecurity          MajorFunction = 0x14
	MajorSetSecurity            MajorFunction = 0x15
	MajorPower                  MajorFunction = 0x16
	MajorSystemControl          MajorFunction = 0x17
	MajorDeviceChange           MajorFunction = 0x18
	MajorQueryQuota             MajorFunction = 0x19
	MajorSetQuota               MajorFunction = 0x1a
	MajorPnP                    MajorFunction = 0x1b

	// MajorFunctionCount is the size of a dispatch table (IRP_MJ_MAXIMUM_FUNCTION + 1).
	MajorFunctionCount = 0x1c
)

var majorNames = [MajorFunctionCount]string{
	"IRP_MJ_CREATE", "IRP_MJ_CREATE_NAMED_PIPE", "IRP_MJ_CLOSE", "IRP_MJ_READ", "IRP_MJ_WRITE",
	"IRP_MJ_QUERY_INFORMATION", "IRP_MJ_SET_INFORMATION", "IRP_MJ_QUERY_EA", "IRP_MJ_SET_EA",
	"IRP_MJ_FLUSH_BUFFERS", "IRP_MJ_QUERY_VOLUME_INFORMATION", "IRP_MJ_SET_VOLUME_INFORMATION",
	"IRP_MJ_DIRECTORY_CONTROL", "IRP_MJ_FILE_SYSTEM_CONTROL", "IRP_MJ_DEVICE_CONTROL",
	"IRP_MJ_INTERNAL_DEVICE_CONTROL", "IRP_MJ_SHUTDOWN", "IRP_MJ_LOCK_CONTROL", "IRP_MJ_CLEANUP",
	"IRP_MJ_CREATE_MAILSLOT", "IRP_MJ_QUERY_SECURITY", "IRP_MJ_SET_SECURITY", "IRP_MJ_POWER",
	"IRP_MJ_SYSTEM_CONTROL", "IRP_MJ_DEVICE_CHANGE", "IRP_MJ_QUERY_QUOTA", "IRP_MJ_SET_QUOTA",
	"IRP_MJ_PNP",
}

// String returns the NT name, such as "IRP_MJ_READ".
func (m MajorFunction) String() string {
	if int(m) < len(majorNames) {
		return majorNames[m]
	}
	return fmt.Sprintf("IRP_MJ_0x%02x", uint8(m))
}

// MinorFunction refines a major function (IRP_MN_*). Its meaning depends on the major.
type MinorFunction uint8

// Minor functions of IRP_MJ_FILE_SYSTEM_CONTROL.
const (
	MinorUserFSRequest  MinorFunction = 0x00
	MinorMountVolume    MinorFunction = 0x01
	MinorVerifyVolume   MinorFunction = 0x02
	MinorLoadFileSystem MinorFunction = 0x03
)

// Minor functions of IRP_MJ_DIRECTORY_CONTROL.
const (
	MinorQueryDirectory        MinorFunction = 0x01
	MinorNotifyChangeDirectory MinorFunction = 0x02
)

// Minor functions of IRP_MJ_READ and IRP_MJ_WRITE.
const (
	MinorNormal   MinorFunction = 0x00
	MinorDPC      MinorFunction = 0x01
	MinorMDL      MinorFunction = 0x02
	MinorComplete MinorFunction = 0x04
	// MinorCompleteMDL gives back the memory an MDL read lent.
	MinorCompleteMDL = MinorComplete | MinorMDL
)

// MinorName returns the NT name of minor for major, or "" when the minor
// carries no meaning worth printing (IRP_MN_NORMAL and friends).
func MinorName(major MajorFunction, minor MinorFunction) string {
	switch major {
	case MajorFileSystemControl:
		switch minor {
		case MinorUserFSRequest:
			return "IRP_MN_USER_FS_REQUEST"
		case MinorMountVolume:
			return "IRP_MN_MOUNT_VOLUME"
		case MinorVerifyVolume:
			return "IRP_MN_VERIFY_VOLUME"
		case MinorLoadFileSystem:
			return "IRP_MN_LOAD_FILE_SYSTEM"
		}
	case MajorDirectoryControl:
		switch minor {
		case MinorQueryDirectory:
			return "IRP_MN_QUERY_DIRECTORY"
		case MinorNotifyChangeDirectory:
			return "IRP_MN_NOTIFY_CHANGE_DIRECTORY"
		}
	case MajorRead, MajorWrite:
		switch minor {
		case MinorDPC:
			return "IRP_MN_DPC"
		case MinorMDL:
			return "IRP_MN_MDL"
		case MinorComplete:
			return "IRP_MN_COMPLETE"
		case MinorCompleteMDL:
			return "IRP_MN_COMPLETE_MDL"
		}
	}
	if minor == 0 {
		return ""
	}
	return fmt.Sprintf("IRP_MN_0x%02x", uint8(minor))
}
