// Package ondisk is the FAT12/16/32 on-disk format: what the bytes of a
// FAT volume mean, with no I/O, no locks and nothing of the I/O stack. The
// FAT file system driver (fsd/fat) reads and writes those bytes through its
// volume's stack and hands them here to be decoded, changed and encoded;
// Format in fsd/fat builds a new volume with the same codecs; a checker
// under fsd/fat can use them as they are.
//
// What it holds:
//
//   - The boot sector (BPB and extended BPB: ParseBootSector, Encode, the
//     NT dirty bit), the layout derived from it (Geometry, validated the
//     way FastFAT recognises a volume) and the FAT32 FSInfo sector.
//   - The FAT: Table, one copy of the FAT in memory with entry access for
//     all three widths, chain walking into extents, and the allocation
//     state derived from the bytes (free bitmap and count, next-free hint,
//     which clusters have a predecessor, which FAT sectors changed). The
//     state lives with the entries because every Set must keep it exact:
//     split apart, the free count and the predecessor bits could drift
//     from the bytes they describe.
//   - Directory entries: the 32-byte short entry, VFAT long-name slots
//     (AppendEntries to write, Scanner to read, with Windows's rules for
//     broken runs), SlotMap for free slots, and volume labels.
//   - Names: 8.3 parsing and display, long-name validation, Windows's short
//     name generation (GenerateShortName), case folding (FoldKey), and the
//     OEM code pages short names are stored in (437, 850).
//   - FAT timestamps (local time, 2 s and 10 ms resolution).
//   - The ownership pass (OwnershipCheck): every chain followed from the
//     root through a ReadAt callback, each cluster owned once; it finds
//     cross-links, cycles, chains into free, bad or out-of-range clusters,
//     size mismatches and lost clusters. The FSD runs it at a dirty mount;
//     a checker runs it to the end.
//   - The errors: every error wraps one of ErrNotFAT, ErrCorrupt,
//     ErrInvalidName, ErrNoSpace, ErrRange, so the FSD maps them to NT
//     status codes with errors.Is.
//
// Nothing here trusts its input: every parser is fuzzed (FuzzBootSector,
// FuzzDirEntries, FuzzFATChain, FuzzShortName, FuzzOwnership, seeded from
// testdata/fuzz) and checked against dosfstools, mtools and iconv.
//
// It imports only the standard library. It has no lock: a Table, a
// Scanner, a SlotMap or an OwnershipCheck belongs to one goroutine at a
// time, and the FSD guards its volume's under the volume lock; the code
// page tables and other package variables are never written.
package ondisk
