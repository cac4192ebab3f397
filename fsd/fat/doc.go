// Package fat is vdisk's FAT12/16/32 file system with VFAT long names: the
// on-disk layer (boot sector, FAT, directory entries, names, timestamps)
// and the file system driver (FSD) that mounts volumes through their VPBs
// as NT's FastFAT does.
//
// Register loads the driver (`\FileSystem\Fat`) and registers its control
// device (`\Fat`) with the mount manager. The mount sequence sends it
// IRP_MN_MOUNT_VOLUME; it recognises the volume by its boot sector (else
// STATUS_UNRECOGNIZED_VOLUME, and the next file system is asked), creates
// a volume device whose extension is the Volume (the VCB, embedding
// mount.VolumeState), loads the FAT and claims the VPB. Every request on
// the volume then comes to that device: CREATE, READ, WRITE, queries and
// sets of file and volume information, directory enumeration, FLUSH,
// CLEANUP, CLOSE, the volume FSCTLs and VERIFY, SHUTDOWN. Each open file
// has an FCB (FsContext, shared) and each open a CCB (FsContext2).
//
// Metadata (boot sector, FSInfo, FAT, directories) travels as NT's
// "DIRECT I/O": paging, non-cached IRPs on the volume stream file object,
// sent to the top of the volume device's own stack so that filters above
// the FSD see them, and passed by the FSD's read/write dispatch, untouched,
// to the storage volume's stack. File data goes from the FCB's extents to
// the storage stack directly, one IRP per contiguous run. Both paths sit
// behind one small interface (blockDevice), where a cache will go.
//
// Metadata lives in memory while the volume is mounted: the FAT (Table),
// and for each directory in use an index of its entries by folded name
// (long and short), its free slots and short names, so lookups and new
// names never rescan a directory. Changes are written when the request
// that made them ends (a file's growth by WRITE at its cleanup or the next
// flush); FSInfo at flush, dismount and shutdown. The volume is marked
// dirty (boot sector and FAT[1]) at mount and clean again at dismount or
// shutdown; a volume found dirty stays dirty.
//
// Choices where NT leaves room: a full FAT12/16 root directory, and a
// directory at its 65,536 entries, give STATUS_DISK_FULL (as a full volume
// does; the log says which); a write or size past 4 GiB - 1 gives
// STATUS_FILE_TOO_LARGE; a first directory query that matches nothing gives
// STATUS_OBJECT_NAME_NOT_FOUND (iomgr has no STATUS_NO_SUCH_FILE). READ and
// WRITE check the handle's access (FILE_READ_DATA, FILE_WRITE_DATA or
// FILE_APPEND_DATA), renames and deletes need DELETE. Last-access dates
// are not updated by reads.
//
// Lock order: FileSystem.mu is a leaf. Volume.mu (the volume lock, a
// RWMutex) is taken exclusively by every request that changes metadata or
// sends metadata I/O, shared by file reads and queries, and is held while
// metadata and data IRPs are sent: the volume stream's read/write path
// takes no lock, so that is safe. Under it a CCB's mu (the file position)
// and Volume.errMu (the last corruption) are leaves, as are the VPB's
// locks (mount.VolumeState) and FileSystem.mu. A VPB's mount
// lock (held by the mount manager around mount, verify and dismount) comes
// before Volume.mu.
package fat
