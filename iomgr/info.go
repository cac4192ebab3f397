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
