// Package fat is vdisk's FAT12/16/32 file system driver (FSD) with VFAT
// long names, which mounts volumes through their VPBs as NT's FastFAT does,
// and Format, which writes a new FAT file system as mkfs.fat does. It sits
// above the mount manager (mount) and below the filters, the io/fs façade
// and the CLI; what a user of it needs is Register and Options, Format and
// its options, result and errors, and the rules for names and labels
// (limits.go).
//
// The on-disk format (boot sector, FAT, directory entries, names, code
// pages, timestamps, and the cluster-ownership pass) is internal/ondisk:
// pure codecs without I/O or locks. This package does the I/O, the caching
// and the locking around them. Its tests share internal/fattest with
// ondisk's (the dosfstools and mtools oracles, images edited by hand).
//
// Register loads the driver (`\FileSystem\Fat`) and registers its control
// device (`\Fat`) with the mount manager. The mount sequence sends it
// IRP_MN_MOUNT_VOLUME; it recognises the volume by its boot sector (else
// STATUS_UNRECOGNIZED_VOLUME, and the next file system is asked), creates
// a volume device whose extension is the vcb (the VCB, embedding
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
// to the storage volume's stack. File data goes through a bounded cache
// (cache.go: 64 KiB pages per FCB, 16 MiB per volume) and from there, by
// the FCB's extents, to the storage stack, one IRP per contiguous run of
// up to 1 MiB; a READ that has to go to the disk also loads the next few
// pages (read-ahead). Cached data is written back at the cleanup of a
// file's last handle, on FLUSH_BUFFERS, a volume lock, dismount and
// shutdown, before sector I/O on the volume, and when the cache is full;
// a file's pages go before its clusters are freed.
//
// The fast I/O table (fastio.go) serves reads of cached pages, writes
// within a file's clusters that need nothing from the disk, and the basic
// and standard information without an IRP; anything else answers "not
// possible" and the caller sends the IRP.
//
// Metadata lives in memory while the volume is mounted: the FAT (an
// ondisk.Table), and for each directory in use an index of its entries by
// folded name (long and short), its free slots and short names, so lookups
// and new names never rescan a directory; a file's chain is kept as
// extents, and allocation starts at the FSInfo next-free hint or right
// after the file's last cluster, taking whole free runs, so files stay
// contiguous. Changes to the FAT and directories are written by the lazy
// writer (lazy.go) a second after the first one, data first, then the FAT,
// then the directories; FLUSH_BUFFERS, a volume lock, dismount and shutdown
// write everything at once, and FSInfo with it. Nothing is written before
// the first change: storage that refuses writes is recognised at mount by
// IOCTL_DISK_IS_WRITABLE (as FastFAT asks it), and the volume is marked
// dirty (the boot sector's flag, never its FAT32 backup's, and FAT[1]'s
// clean bit, as FastFAT does) just before the first change can reach the
// disk, and clean again at dismount or shutdown; a session that only reads
// leaves the image byte for byte as it was. A volume found dirty stays as
// found: its dirty state is not written at all, so the boot sector and its
// backup stay as they were (fsck.fat compares the two and clears the flag
// in the boot sector alone).
//
// A volume found corrupt refuses writes (vcb.needsCheck): the FAT's links
// are checked at every mount (links into free or bad clusters, two chains
// joined into one), each directory's entries' first clusters when it is
// read, and a dirty volume mounted writable has every chain walked
// (ondisk.OwnershipCheck); the first corruption found there or by any
// request makes every later request that would write fail with
// STATUS_VOLUME_DIRTY, while reads go on. Writing would make it worse: the
// allocator would hand out a cluster a damaged chain still reaches, a
// delete would free clusters another file uses.
//
// The label is the root directory's label entry (the boot sector's copy is
// not read, as with fatlabel, mlabel and Windows); setting it keeps its
// case, as mkfs.fat and fatlabel do (FastFAT upper-cases), and writes the
// entry, the boot sector and its FAT32 backup.
//
// A full FAT12/16 root directory, and a directory at its 65,536 entries,
// give STATUS_CANNOT_MAKE, as FastFAT does (a full volume gives
// STATUS_DISK_FULL). Choices where NT leaves room: a write or size past
// 4 GiB - 1 gives STATUS_FILE_TOO_LARGE; a first directory query that
// matches nothing gives STATUS_OBJECT_NAME_NOT_FOUND (iomgr has no
// STATUS_NO_SUCH_FILE); an entry whose short name is all spaces goes by
// ondisk.BlankName. READ and WRITE check the handle's access (FILE_READ_DATA,
// FILE_WRITE_DATA or FILE_APPEND_DATA), renames and deletes need DELETE.
// Last-access dates are not updated by reads.
//
// Lock order: FileSystem.mu is a leaf. vcb.mu (the volume lock, a
// RWMutex) is taken exclusively by every request that changes metadata or
// sends metadata I/O, by fast I/O writes and by the lazy writer's timer,
// shared by file reads, fast I/O reads and queries, and is held while
// metadata and data IRPs are sent: the volume stream's read/write path
// takes no lock, so that is safe. A fast I/O call that may not wait only
// tries it and answers "not possible". Under it comes the cache's mutex
// (dataCache.mu, which guards the pages and every FCB's pages map), held
// while pages are loaded and written back: those IRPs go down the storage
// stack, which never calls back into the file system. A CCB's mu (the
// file position) and vcb.errMu (the corruption found) are leaves, as are
// the VPB's locks (mount.VolumeState) and FileSystem.mu. A VPB's mount
// lock (held by the mount manager around mount, verify and dismount) comes
// before vcb.mu. The on-disk layer has no locks of its own: the volume's
// Table and directory indexes are used only under vcb.mu.
package fat
