package disk

import "github.com/vdisk-dev/vdisk/iomgr"

// The disk I/O control codes vdisk's storage drivers handle. Values are NT's.
var (
	IOCTLDiskGetDriveGeometry   = iomgr.CTLCode(iomgr.DeviceDisk, 0x0000, iomgr.MethodBuffered, iomgr.FileAnyAccess)  // 0x00070000
	IOCTLDiskIsWritable         = iomgr.CTLCode(iomgr.DeviceDisk, 0x0009, iomgr.MethodBuffered, iomgr.FileAnyAccess)  // 0x00070024
	IOCTLDiskGetPartitionInfoEx = iomgr.CTLCode(iomgr.DeviceDisk, 0x0012, iomgr.MethodBuffered, iomgr.FileAnyAccess)  // 0x00070048
	IOCTLDiskGetDriveLayoutEx   = iomgr.CTLCode(iomgr.DeviceDisk, 0x0014, iomgr.MethodBuffered, iomgr.FileAnyAccess)  // 0x00070050
	IOCTLDiskGetLengthInfo      = iomgr.CTLCode(iomgr.DeviceDisk, 0x0017, iomgr.MethodBuffered, iomgr.FileReadAccess) // 0x0007405C
	// IOCTLStorageManageDataSetAttributes carries TRIM, zeroing, allocation
	// queries and prefetch (a *DataSetRequest as input).
	IOCTLStorageManageDataSetAttributes = iomgr.CTLCode(iomgr.DeviceMassStorage, 0x0501, iomgr.MethodBuffered, iomgr.FileWriteAccess) // 0x002D9404
)

// MediaType is NT's MEDIA_TYPE of a disk geometry.
type MediaType uint32

// The media types vdisk reports.
const (
	FixedMedia     MediaType = 12
	RemovableMedia MediaType = 11
)

// Geometry is the result of IOCTL_DISK_GET_DRIVE_GEOMETRY: a fictitious CHS
// geometry (255 heads, 63 sectors per track, as firmware reports for large
// disks) and the real sector size and length.
type Geometry struct {
	Cylinders         int64
	MediaType         MediaType
	TracksPerCylinder uint32
	SectorsPerTrack   uint32
	BytesPerSector    uint32
	DiskSize          int64 // GET_DRIVE_GEOMETRY_EX's DiskSize
}

// PartitionStyle is how a disk is partitioned.
type PartitionStyle uint32

// The partition styles. Values are NT's.
const (
	StyleMBR PartitionStyle = 0
	StyleGPT PartitionStyle = 1
	StyleRaw PartitionStyle = 2
)

// PartitionInfo is the result of IOCTL_DISK_GET_PARTITION_INFO_EX: where a
// partition (or, for a disk device, the whole disk) lies.
type PartitionInfo struct {
	Style           PartitionStyle
	StartingOffset  int64
	PartitionLength int64
	PartitionNumber int // 0 for the whole disk
	Type            string
	Name            string
	MBRType         byte
	GPTType         [16]byte
}

// DataSetAction selects what IOCTL_STORAGE_MANAGE_DATA_SET_ATTRIBUTES does.
type DataSetAction uint32

// The data-set actions.
const (
	// DataSetTrim discards the range (DeviceDsmAction_Trim).
	DataSetTrim DataSetAction = 1
	// DataSetAllocation reports the range's allocation as []Extent in the
	// IRP's SystemBuffer (*[]Extent) (DeviceDsmAction_Allocation).
	DataSetAllocation DataSetAction = 0x13
	// DataSetZero makes the range read as zeros, honouring Flags (vdisk's
	// own action, for NBD_CMD_WRITE_ZEROES).
	DataSetZero DataSetAction = 0x80000001
	// DataSetPrefetch asks for the range to be brought into cache (NBD_CMD_CACHE).
	DataSetPrefetch DataSetAction = 0x80000002
)

// DataSetRequest is the input of IOCTL_STORAGE_MANAGE_DATA_SET_ATTRIBUTES.
// Offset is relative to the device the request is sent to; partition
// drivers translate it on the way down.
type DataSetRequest struct {
	Action DataSetAction
	Offset int64
	Length int64
	Flags  ZeroFlags
}
