package iomgr

import "time"

// AccessMask is the access a create asks for (FILE_READ_DATA and friends).
type AccessMask uint32

// The access rights file systems check. Values are NT's.
const (
	FileReadData        AccessMask = 0x0001
	FileListDirectory   AccessMask = 0x0001
	FileWriteData       AccessMask = 0x0002
	FileAddFile         AccessMask = 0x0002
	FileAppendData      AccessMask = 0x0004
	FileAddSubdirectory AccessMask = 0x0004
	FileReadEA          AccessMask = 0x0008
	FileWriteEA         AccessMask = 0x0010
	FileExecute         AccessMask = 0x0020
	FileTraverse        AccessMask = 0x0020
	FileDeleteChild     AccessMask = 0x0040
	FileReadAttributes  AccessMask = 0x0080
	FileWriteAttributes AccessMask = 0x0100
	Delete              AccessMask = 0x00010000
	Synchronize         AccessMask = 0x00100000
	GenericRead         AccessMask = 0x80000000
	GenericWrite        AccessMask = 0x40000000
	GenericAll          AccessMask = 0x10000000

	// FileGenericRead and FileGenericWrite are what GenericRead and GenericWrite map to for files.
	FileGenericRead  = FileReadData | FileReadAttributes | FileReadEA | Synchronize
	FileGenericWrite = FileWriteData | FileAppendData | FileWriteAttributes | FileWriteEA | Synchronize
)

// ShareAccess says which accesses other opens of the same file may have.
type ShareAccess uint16

// The share modes. Values are NT's.
const (
	ShareRead   ShareAccess = 0x1
	ShareWrite  ShareAccess = 0x2
	ShareDelete ShareAccess = 0x4
)

// CreateDisposition says what a create does when the file exists or not.
type CreateDisposition uint8

// The dispositions. Values are NT's.
const (
	FileSupersede   CreateDisposition = 0 // replace if exists, create if not
	FileOpen        CreateDisposition = 1 // open if exists, fail if not
	FileCreate      CreateDisposition = 2 // fail if exists, create if not
	FileOpenIf      CreateDisposition = 3 // open if exists, create if not
	FileOverwrite   CreateDisposition = 4 // truncate if exists, fail if not
	FileOverwriteIf CreateDisposition = 5 // truncate if exists, create if not
)

// String returns the NT name of the disposition.
func (d CreateDisposition) String() string {
	switch d {
	case FileSupersede:
		return "FILE_SUPERSEDE"
	case FileOpen:
		return "FILE_OPEN"
	case FileCreate:
		return "FILE_CREATE"
	case FileOpenIf:
		return "FILE_OPEN_IF"
	case FileOverwrite:
		return "FILE_OVERWRITE"
	case FileOverwriteIf:
		return "FILE_OVERWRITE_IF"
	}
	return "FILE_DISPOSITION_?"
}

// Create results, in IOStatus.Information of a completed IRP_MJ_CREATE.
const (
	FileSuperseded   = 0
	FileOpened       = 1
	FileCreated      = 2
	FileOverwritten  = 3
	FileExists       = 4
	FileDoesNotExist = 5
)

// CreateOptions are the FILE_* create options. Values are NT's.
type CreateOptions uint32

// The create options vdisk's file systems honour.
const (
	FileDirectoryFile    CreateOptions = 0x00000001
	FileWriteThrough     CreateOptions = 0x00000002
	FileSequentialOnly   CreateOptions = 0x00000004
	FileNonDirectoryFile CreateOptions = 0x00000040
	FileDeleteOnClose    CreateOptions = 0x00001000
	FileOpenByFileID     CreateOptions = 0x00002000
)

// FileAttributes are the FILE_ATTRIBUTE_* bits; FAT stores the low byte.
type FileAttributes uint32

// The file attributes. Values are NT's (and FAT's for the low byte).
const (
	FileAttributeReadOnly  FileAttributes = 0x01
	FileAttributeHidden    FileAttributes = 0x02
	FileAttributeSystem    FileAttributes = 0x04
	FileAttributeDirectory FileAttributes = 0x10
	FileAttributeArchive   FileAttributes = 0x20
	FileAttributeNormal    FileAttributes = 0x80
)

// FileInformationClass selects the structure of a query or set file
// information request. Values are NT's.
type FileInformationClass uint32

// The file information classes.
const (
	FileDirectoryInformationClass     FileInformationClass = 1
	FileFullDirectoryInformationClass FileInformationClass = 2
	FileBothDirectoryInformationClass FileInformationClass = 3
	FileBasicInformationClass         FileInformationClass = 4
	FileStandardInformationClass      FileInformationClass = 5
	FileInternalInformationClass      FileInformationClass = 6
	FileNameInformationClass          FileInformationClass = 9
	FileRenameInformationClass        FileInformationClass = 10
	FileNamesInformationClass         FileInformationClass = 12
	FileDispositionInformationClass   FileInformationClass = 13
	FilePositionInformationClass      FileInformationClass = 14
	FileAllInformationClass           FileInformationClass = 18
	FileAllocationInformationClass    FileInformationClass = 19
	FileEndOfFileInformationClass     FileInformationClass = 20
)

// FSInformationClass selects the structure of a volume information request.
type FSInformationClass uint32

// The volume information classes. Values are NT's.
const (
	FileFsVolumeInformationClass    FSInformationClass = 1
	FileFsLabelInformationClass     FSInformationClass = 2
	FileFsSizeInformationClass      FSInformationClass = 3
	FileFsDeviceInformationClass    FSInformationClass = 4
	FileFsAttributeInformationClass FSInformationClass = 5
	FileFsFullSizeInformationClass  FSInformationClass = 7
)

// FileBasicInformation is the FileBasicInformation class: times and attributes.
// A zero time in a set request means "leave unchanged".
type FileBasicInformation struct {
	CreationTime   time.Time
	LastAccessTime time.Time
	LastWriteTime  time.Time
	ChangeTime     time.Time
	FileAttributes FileAttributes
}

// FileStandardInformation is the FileStandardInformation class: sizes and kind.
type FileStandardInformation struct {
	AllocationSize int64
	EndOfFile      int64
	NumberOfLinks  uint32
	DeletePending  bool
	Directory      bool
}

// FileDirectoryEntry is one entry returned by IRP_MN_QUERY_DIRECTORY (the
// FileBothDirectoryInformation class): the IRP's SystemBuffer is a
// *[]FileDirectoryEntry that the file system appends to.
type FileDirectoryEntry struct {
	FileIndex      uint32 // position in the directory, for resuming
	FileName       string // the long name (or the short name when there is none)
	ShortName      string // the 8.3 name, "" when FileName is already 8.3
	CreationTime   time.Time
	LastAccessTime time.Time
	LastWriteTime  time.Time
	ChangeTime     time.Time
	EndOfFile      int64
	AllocationSize int64
	FileAttributes FileAttributes
}

// FileNameInformation is the FileNameInformation class: the path inside the volume.
type FileNameInformation struct {
	FileName string
}

// FilePositionInformation is the FilePositionInformation class.
type FilePositionInformation struct {
	CurrentByteOffset int64
}

// FileInternalInformation is the FileInternalInformation class: a number
// unique to the file on its volume.
type FileInternalInformation struct {
	IndexNumber int64
}

// FileAllInformation is the FileAllInformation class.
type FileAllInformation struct {
	Basic    FileBasicInformation
	Standard FileStandardInformation
	Internal FileInternalInformation
	Position FilePositionInformation
	Name     FileNameInformation
}

// FileRenameInformation is the FileRenameInformation class of a set
// request: the new name, relative to RootDirectory when it is set, else a
// path from the volume root (`\dir\new.txt`). The request's
// Parameters.SetFile.ReplaceIfExists repeats ReplaceIfExists.
type FileRenameInformation struct {
	ReplaceIfExists bool
	RootDirectory   *FileObject
	FileName        string
}

// FileDispositionInformation is the FileDispositionInformation class: mark
// (or unmark) the file for deletion when its last handle is cleaned up.
type FileDispositionInformation struct {
	DeleteFile bool
}

// FileEndOfFileInformation is the FileEndOfFileInformation class: set the size.
type FileEndOfFileInformation struct {
	EndOfFile int64
}

// FileAllocationInformation is the FileAllocationInformation class: set the
// allocation (truncating the file if it is smaller than the size).
type FileAllocationInformation struct {
	AllocationSize int64
}

// FileFsVolumeInformation is the FileFsVolumeInformation class.
type FileFsVolumeInformation struct {
	VolumeCreationTime time.Time
	VolumeSerialNumber uint32
	VolumeLabel        string
}

// FileFsLabelInformation is the FileFsLabelInformation class (set only).
type FileFsLabelInformation struct {
	VolumeLabel string
}

// FileFsSizeInformation is the FileFsSizeInformation class (and, with the
// caller's quota equal to the free space, FileFsFullSizeInformation).
type FileFsSizeInformation struct {
	TotalAllocationUnits     int64
	AvailableAllocationUnits int64
	SectorsPerAllocationUnit uint32
	BytesPerSector           uint32
}

// FileFsAttributeInformation is the FileFsAttributeInformation class.
type FileFsAttributeInformation struct {
	FileSystemAttributes       uint32
	MaximumComponentNameLength uint32
	FileSystemName             string // "FAT", "FAT32"
}
