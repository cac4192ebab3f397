package iomgr

// Transfer methods and access of an I/O control code (METHOD_*, FILE_*_ACCESS).
const (
	MethodBuffered  = 0
	MethodInDirect  = 1
	MethodOutDirect = 2
	MethodNeither   = 3

	FileAnyAccess   = 0
	FileReadAccess  = 1
	FileWriteAccess = 2
)

// CTLCode builds an I/O control code the way NT's CTL_CODE macro does.
func CTLCode(deviceType DeviceType, function, method, access uint32) uint32 {
	return uint32(deviceType)<<16 | access<<14 | function<<2 | method
}

// File system control codes the mount manager and file systems exchange.
var (
	FSCTLLockVolume      = CTLCode(DeviceFileSystem, 6, MethodBuffered, FileAnyAccess)  // 0x00090018
	FSCTLUnlockVolume    = CTLCode(DeviceFileSystem, 7, MethodBuffered, FileAnyAccess)  // 0x0009001C
	FSCTLDismountVolume  = CTLCode(DeviceFileSystem, 8, MethodBuffered, FileAnyAccess)  // 0x00090020
	FSCTLIsVolumeMounted = CTLCode(DeviceFileSystem, 10, MethodBuffered, FileAnyAccess) // 0x00090028
	FSCTLIsVolumeDirty   = CTLCode(DeviceFileSystem, 30, MethodBuffered, FileAnyAccess) // 0x00090078
)
