package ondisk

import (
	"encoding/binary"
	"fmt"
)

// FATType is the width of a FAT entry: FAT12, FAT16 or FAT32.
type FATType uint8

// The three FAT types. The numeric value is the entry width in bits (FAT32
// entries use only the low 28 of their 32 bits).
const (
	FAT12 FATType = 12
	FAT16 FATType = 16
	FAT32 FATType = 32
)

// String is "FAT12", "FAT16" or "FAT32".
func (t FATType) String() string {
	switch t {
	case FAT12, FAT16, FAT32:
		return fmt.Sprintf("FAT%d", uint8(t))
	}
	return fmt.Sprintf("FATType(%d)", uint8(t))
}

// Cluster-count limits that decide the FAT type (Microsoft's FAT
// specification; mkfs.fat, Linux and fsck.fat use the same numbers): fewer
// than MinClustersFAT16 data clusters is FAT12, fewer than MinClustersFAT32
// is FAT16, anything else FAT32.
const (
	MinClustersFAT16 = 4085
	MinClustersFAT32 = 65525
	// MaxClustersFAT32 is the largest cluster count a FAT32 volume can have:
	// cluster numbers run from 2 to 0x0FFFFFF6 (0x0FFFFFF7 marks a bad
	// cluster).
	MaxClustersFAT32 = 0x0FFFFFF5
)

// Boot sector layout: the BIOS parameter block common to all types, then the
// extended BPB at offset 36 (FAT12/16) or after the FAT32 fields at 64.
const (
	bootSectorSize  = 512
	extOffFAT16     = 36 // drive number; NT flags at +1, signature at +2
	extOffFAT32     = 64
	ntFlagsDirty    = 0x01 // "reserved" byte after the drive number, bit 0
	BootSigExtended = 0x29 // volume ID, label and type string follow
	bootSigVolumeID = 0x28 // only the volume ID follows (DOS 3.4)
)

// BootSector holds the fields of a FAT boot sector (BPB and extended BPB),
// as stored. The layout (FAT12/16 or FAT32) is FAT32 exactly when FATSize16
// is zero; the FAT32-only fields are zero in a FAT12/16 layout. Parse with
// ParseBootSector, derive the volume layout with Geometry, write back with
// Encode.
type BootSector struct {
	Jump              [3]byte // x86 jump: EB xx 90 or E9 xx xx
	OEMName           [8]byte // e.g. "MSWIN4.1", "mkfs.fat"
	BytesPerSector    uint16  // 512, 1024, 2048 or 4096
	SectorsPerCluster uint8   // power of two, 1..128
	ReservedSectors   uint16  // sectors before the first FAT (boot sector included)
	NumFATs           uint8   // copies of the FAT, usually 2
	RootEntries       uint16  // FAT12/16 fixed root directory entries; 0 on FAT32
	TotalSectors16    uint16  // total sectors if < 65536, else 0
	Media             uint8   // media descriptor: 0xF0 or 0xF8..0xFF
	FATSize16         uint16  // sectors per FAT on FAT12/16; 0 on FAT32
	SectorsPerTrack   uint16  // CHS geometry, informational
	NumHeads          uint16  // CHS geometry, informational
	HiddenSectors     uint32  // sectors before the volume on its disk
	TotalSectors32    uint32  // total sectors when TotalSectors16 is 0

	// FAT32 layout only (zero otherwise).
	FATSize32        uint32 // sectors per FAT
	ExtFlags         uint16 // bit 7: mirroring off; bits 0-3: the active FAT then
	FSVersion        uint16 // must be 0
	RootCluster      uint32 // first cluster of the root directory
	FSInfoSector     uint16 // sector of the FSInfo structure in the reserved area
	BackupBootSector uint16 // sector of the boot sector's copy (usually 6)

	// Extended BPB, both layouts (at offset 36 or 64).
	DriveNumber   uint8    // BIOS drive: 0x00 floppy, 0x80 hard disk
	NTFlags       uint8    // Windows NT's flags byte; bit 0 = volume dirty
	BootSignature uint8    // 0x29: the three fields below are present; 0x28: only VolumeID
	VolumeID      uint32   // serial number (zero unless BootSignature is 0x28 or 0x29)
	VolumeLabel   [11]byte // label, space padded (zero unless BootSignature is 0x29)
	FSTypeLabel   [8]byte  // "FAT12   " etc.; informational only (zero unless 0x29)
}

// IsFAT32Layout reports whether the boot sector uses the FAT32 BPB layout
// (FATSize16 is zero).
func (bs *BootSector) IsFAT32Layout() bool { return bs.FATSize16 == 0 }

// Dirty reports the NT "volume dirty" bit of the boot sector (NTFlags bit 0).
func (bs *BootSector) Dirty() bool { return bs.NTFlags&ntFlagsDirty != 0 }

// ParseBootSector decodes a boot sector (at least its first 512 bytes) and
// runs the recognition checks of Geometry. Any failure wraps ErrNotFAT.
func ParseBootSector(b []byte) (*BootSector, error) {
	bs, err := decodeBootSector(b)
	if err != nil {
		return nil, err
	}
	if _, err := bs.Geometry(); err != nil {
		return nil, err
	}
	return bs, nil
}

// decodeBootSector reads the fields without judging them.
func decodeBootSector(b []byte) (*BootSector, error) {
	if len(b) < bootSectorSize {
		return nil, notFAT("boot sector is %d bytes, need %d", len(b), bootSectorSize)
	}
	le := binary.LittleEndian
	bs := &BootSector{
		BytesPerSector:    le.Uint16(b[11:]),
		SectorsPerCluster: b[13],
		ReservedSectors:   le.Uint16(b[14:]),
		NumFATs:           b[16],
		RootEntries:       le.Uint16(b[17:]),
		TotalSectors16:    le.Uint16(b[19:]),
		Media:             b[21],
		FATSize16:         le.Uint16(b[22:]),
		SectorsPerTrack:   le.Uint16(b[24:]),
		NumHeads:          le.Uint16(b[26:]),
		HiddenSectors:     le.Uint32(b[28:]),
		TotalSectors32:    le.Uint32(b[32:]),
	}
	copy(bs.Jump[:], b[0:3])
	copy(bs.OEMName[:], b[3:11])
	ext := extOffFAT16
	if bs.IsFAT32Layout() {
		bs.FATSize32 = le.Uint32(b[36:])
		bs.ExtFlags = le.Uint16(b[40:])
		bs.FSVersion = le.Uint16(b[42:])
		bs.RootCluster = le.Uint32(b[44:])
		bs.FSInfoSector = le.Uint16(b[48:])
		bs.BackupBootSector = le.Uint16(b[50:])
		ext = extOffFAT32
	}
	bs.DriveNumber = b[ext]
	bs.NTFlags = b[ext+1]
	bs.BootSignature = b[ext+2]
	if bs.BootSignature == BootSigExtended || bs.BootSignature == bootSigVolumeID {
		bs.VolumeID = le.Uint32(b[ext+3:])
	}
	if bs.BootSignature == BootSigExtended {
		copy(bs.VolumeLabel[:], b[ext+7:ext+18])
		copy(bs.FSTypeLabel[:], b[ext+18:ext+26])
	}
	return bs, nil
}

// Encode writes the fields into b (at least 512 bytes), in the layout
// IsFAT32Layout selects, and the 0x55 0xAA signature at offsets 510-511.
// Bytes that are not fields (boot code, reserved bytes) are left as they
// are, so a sector read, parsed, changed and encoded keeps its boot code.
// VolumeID is written only when BootSignature is 0x28 or 0x29, the label and
// type string only when it is 0x29. Encode does not validate: call Geometry
// first when the fields come from elsewhere.
func (bs *BootSector) Encode(b []byte) error {
	if len(b) < bootSectorSize {
		return outOfRange("boot sector buffer is %d bytes, need %d", len(b), bootSectorSize)
	}
	le := binary.LittleEndian
	copy(b[0:3], bs.Jump[:])
	copy(b[3:11], bs.OEMName[:])
	le.PutUint16(b[11:], bs.BytesPerSector)
	b[13] = bs.SectorsPerCluster
	le.PutUint16(b[14:], bs.ReservedSectors)
	b[16] = bs.NumFATs
	le.PutUint16(b[17:], bs.RootEntries)
	le.PutUint16(b[19:], bs.TotalSectors16)
	b[21] = bs.Media
	le.PutUint16(b[22:], bs.FATSize16)
	le.PutUint16(b[24:], bs.SectorsPerTrack)
	le.PutUint16(b[26:], bs.NumHeads)
	le.PutUint32(b[28:], bs.HiddenSectors)
	le.PutUint32(b[32:], bs.TotalSectors32)
	ext := extOffFAT16
	if bs.IsFAT32Layout() {
		le.PutUint32(b[36:], bs.FATSize32)
		le.PutUint16(b[40:], bs.ExtFlags)
		le.PutUint16(b[42:], bs.FSVersion)
		le.PutUint32(b[44:], bs.RootCluster)
		le.PutUint16(b[48:], bs.FSInfoSector)
		le.PutUint16(b[50:], bs.BackupBootSector)
		ext = extOffFAT32
	}
	b[ext] = bs.DriveNumber
	b[ext+1] = bs.NTFlags
	b[ext+2] = bs.BootSignature
	if bs.BootSignature == BootSigExtended || bs.BootSignature == bootSigVolumeID {
		le.PutUint32(b[ext+3:], bs.VolumeID)
	}
	if bs.BootSignature == BootSigExtended {
		copy(b[ext+7:ext+18], bs.VolumeLabel[:])
		copy(b[ext+18:ext+26], bs.FSTypeLabel[:])
	}
	b[510], b[511] = 0x55, 0xAA
	return nil
}

// dirtyOffset is the offset of the NT flags byte in a raw boot sector.
func dirtyOffset(b []byte) (int, bool) {
	if len(b) < bootSectorSize {
		return 0, false
	}
	if binary.LittleEndian.Uint16(b[22:]) == 0 {
		return extOffFAT32 + 1, true
	}
	return extOffFAT16 + 1, true
}

// BootSectorDirty reports the NT dirty bit (bit 0 of byte 0x25 on FAT12/16,
// of byte 0x41 on FAT32) of a raw boot sector. A buffer shorter than 512
// bytes reports false.
func BootSectorDirty(b []byte) bool {
	off, ok := dirtyOffset(b)
	return ok && b[off]&ntFlagsDirty != 0
}

// SetBootSectorDirty sets or clears the NT dirty bit in a raw boot sector,
// leaving the other bits of that byte alone. It reports whether the byte
// changed (so the caller knows whether to write the sector back); a buffer
// shorter than 512 bytes is left alone.
func SetBootSectorDirty(b []byte, dirty bool) (changed bool) {
	off, ok := dirtyOffset(b)
	if !ok {
		return false
	}
	old := b[off]
	if dirty {
		b[off] |= ntFlagsDirty
	} else {
		b[off] &^= ntFlagsDirty
	}
	return b[off] != old
}

// Geometry is the layout of a FAT volume derived from its boot sector.
// Sector numbers count from the first sector of the volume; byte offsets
// come from the Offset methods.
type Geometry struct {
	Type              FATType
	BytesPerSector    uint32
	SectorsPerCluster uint32
	ClusterSize       uint32 // bytes per cluster
	ReservedSectors   uint32 // = first sector of FAT 0
	NumFATs           uint32
	FATSectors        uint32 // sectors per FAT copy
	TotalSectors      uint32
	RootEntries       uint32 // FAT12/16: fixed root directory size in entries; 0 on FAT32
	RootDirSector     uint32 // FAT12/16: first sector of the root directory
	RootDirSectors    uint32 // FAT12/16: sectors of the root directory
	RootCluster       uint32 // FAT32: first cluster of the root directory; 0 otherwise
	FirstDataSector   uint32 // sector of cluster 2
	// ClusterCount is the number of data clusters, (sectors after the root
	// directory) / SectorsPerCluster: the number that decides the type.
	ClusterCount uint32
	// MaxCluster is the highest usable cluster number: ClusterCount+1, or
	// less when the FAT is too short to describe every data cluster (then the
	// clusters it cannot describe are not used, as Linux does).
	MaxCluster uint32
	// Mirrored is true when every FAT copy is written (FAT32 ExtFlags bit 7
	// clear, and always on FAT12/16); ActiveFAT is the copy to read (0 unless
	// mirroring is off).
	Mirrored  bool
	ActiveFAT uint32
	// FSInfoSector and BackupBootSector are 0 when the volume has none
	// (always on FAT12/16).
	FSInfoSector     uint32
	BackupBootSector uint32
	// NonStandard is set for a FAT32-layout volume with fewer than
	// MinClustersFAT32 clusters (mkfs.fat -F 32 makes those on small
	// volumes): recognised as FAT32, as FastFAT, Linux and fsck.fat do.
	NonStandard bool
}

// Geometry validates the boot sector the way FastFAT recognises a volume
// and derives the layout. The checks: jump EB xx 90 or E9; bytes per sector
// a power of two in 512..4096; sectors per cluster a power of two up to 128;
// reserved sectors and FAT count non-zero; media 0xF0 or 0xF8..0xFF; a total
// sector count and FAT size; metadata smaller than the volume; on FAT12/16
// a non-empty root directory; on FAT32 no fixed root directory, version 0,
// root cluster and FSInfo/backup boot sectors in range, a valid active FAT.
// The type is decided by the cluster count (< 4085 FAT12, < 65525 FAT16,
// else FAT32); a FAT16-layout BPB with 65525 or more clusters is refused; a
// FAT32-layout BPB is FAT32 whatever its count (see NonStandard). Errors wrap
// ErrNotFAT.
func (bs *BootSector) Geometry() (Geometry, error) {
	var g Geometry
	if !(bs.Jump[0] == 0xE9 || (bs.Jump[0] == 0xEB && bs.Jump[2] == 0x90)) {
		return g, notFAT("boot sector starts % x, not a jump (EB xx 90 or E9 xx xx)", bs.Jump[:])
	}
	switch bs.BytesPerSector {
	case 512, 1024, 2048, 4096:
	default:
		return g, notFAT("%d bytes per sector, want 512, 1024, 2048 or 4096", bs.BytesPerSector)
	}
	spc := bs.SectorsPerCluster
	if spc == 0 || spc&(spc-1) != 0 || spc > 128 {
		return g, notFAT("%d sectors per cluster, want a power of two up to 128", spc)
	}
	if bs.ReservedSectors == 0 {
		return g, notFAT("no reserved sectors")
	}
	if bs.NumFATs == 0 {
		return g, notFAT("no FATs")
	}
	if bs.Media != 0xF0 && bs.Media < 0xF8 {
		return g, notFAT("media byte %#02x, want 0xF0 or 0xF8..0xFF", bs.Media)
	}
	total := uint32(bs.TotalSectors16)
	if total == 0 {
		total = bs.TotalSectors32
	}
	if total == 0 {
		return g, notFAT("total sector count is zero")
	}
	g = Geometry{
		BytesPerSector:    uint32(bs.BytesPerSector),
		SectorsPerCluster: uint32(spc),
		ClusterSize:       uint32(bs.BytesPerSector) * uint32(spc),
		ReservedSectors:   uint32(bs.ReservedSectors),
		NumFATs:           uint32(bs.NumFATs),
		TotalSectors:      total,
		Mirrored:          true,
	}
	fat32 := bs.IsFAT32Layout()
	if fat32 {
		if bs.FATSize32 == 0 {
			return g, notFAT("FAT size is zero")
		}
		if bs.RootEntries != 0 {
			return g, notFAT("FAT32 layout with %d fixed root directory entries", bs.RootEntries)
		}
		if bs.FSVersion != 0 {
			return g, notFAT("FAT32 version %#04x, want 0", bs.FSVersion)
		}
		g.FATSectors = bs.FATSize32
	} else {
		if bs.RootEntries == 0 {
			return g, notFAT("FAT12/16 layout without root directory entries")
		}
		g.FATSectors = uint32(bs.FATSize16)
		g.RootEntries = uint32(bs.RootEntries)
		g.RootDirSectors = (g.RootEntries*DirEntrySize + g.BytesPerSector - 1) / g.BytesPerSector
	}
	meta := uint64(g.ReservedSectors) + uint64(g.NumFATs)*uint64(g.FATSectors) + uint64(g.RootDirSectors)
	if meta >= uint64(total) {
		return g, notFAT("metadata (%d sectors) fills the whole volume (%d sectors)", meta, total)
	}
	g.RootDirSector = g.ReservedSectors + g.NumFATs*g.FATSectors
	if fat32 {
		g.RootDirSector = 0
	}
	g.FirstDataSector = uint32(meta)
	g.ClusterCount = (total - g.FirstDataSector) / g.SectorsPerCluster
	if g.ClusterCount == 0 {
		return g, notFAT("no data clusters")
	}
	switch {
	case fat32:
		g.Type = FAT32
		g.NonStandard = g.ClusterCount < MinClustersFAT32
		if g.ClusterCount > MaxClustersFAT32 {
			return g, notFAT("%d clusters, more than FAT32 can address", g.ClusterCount)
		}
	case g.ClusterCount < MinClustersFAT16:
		g.Type = FAT12
	case g.ClusterCount < MinClustersFAT32:
		g.Type = FAT16
	default:
		return g, notFAT("%d clusters need FAT32, but the boot sector has the FAT12/16 layout", g.ClusterCount)
	}
	// Entries the FAT can hold: the first two are reserved.
	fatBytes := uint64(g.FATSectors) * uint64(g.BytesPerSector)
	var entries uint64
	switch g.Type {
	case FAT12:
		entries = fatBytes * 2 / 3
	case FAT16:
		entries = fatBytes / 2
	default:
		entries = fatBytes / 4
	}
	if entries < 3 {
		return g, notFAT("FAT of %d bytes holds no cluster", fatBytes)
	}
	g.MaxCluster = g.ClusterCount + 1
	if uint64(g.MaxCluster) > entries-1 {
		g.MaxCluster = uint32(entries - 1)
	}
	if fat32 {
		if bs.RootCluster < 2 || bs.RootCluster > g.MaxCluster {
			return g, notFAT("root directory cluster %d outside 2..%d", bs.RootCluster, g.MaxCluster)
		}
		g.RootCluster = bs.RootCluster
		if bs.ExtFlags&0x80 != 0 {
			g.Mirrored = false
			g.ActiveFAT = uint32(bs.ExtFlags & 0x0F)
			if g.ActiveFAT >= g.NumFATs {
				return g, notFAT("active FAT %d of %d", g.ActiveFAT, g.NumFATs)
			}
		}
		if s := bs.FSInfoSector; s != 0 && s != 0xFFFF {
			if uint32(s) >= g.ReservedSectors {
				return g, notFAT("FSInfo sector %d outside the %d reserved sectors", s, g.ReservedSectors)
			}
			g.FSInfoSector = uint32(s)
		}
		if s := bs.BackupBootSector; s != 0 && s != 0xFFFF {
			if uint32(s) >= g.ReservedSectors {
				return g, notFAT("backup boot sector %d outside the %d reserved sectors", s, g.ReservedSectors)
			}
			g.BackupBootSector = uint32(s)
		}
	}
	return g, nil
}

// FATOffset is the byte offset of FAT copy i (0-based) in the volume.
func (g *Geometry) FATOffset(i uint32) int64 {
	return (int64(g.ReservedSectors) + int64(i)*int64(g.FATSectors)) * int64(g.BytesPerSector)
}

// FATBytes is the size of one FAT copy in bytes.
func (g *Geometry) FATBytes() int64 { return int64(g.FATSectors) * int64(g.BytesPerSector) }

// RootDirOffset is the byte offset of the fixed FAT12/16 root directory
// (0 on FAT32, whose root directory is the cluster chain at RootCluster).
func (g *Geometry) RootDirOffset() int64 {
	return int64(g.RootDirSector) * int64(g.BytesPerSector)
}

// RootDirBytes is the size of the fixed FAT12/16 root directory in bytes.
func (g *Geometry) RootDirBytes() int64 { return int64(g.RootEntries) * DirEntrySize }

// DataOffset is the byte offset of cluster 2, the first data cluster.
func (g *Geometry) DataOffset() int64 {
	return int64(g.FirstDataSector) * int64(g.BytesPerSector)
}

// ClusterOffset is the byte offset of cluster c (2..MaxCluster).
func (g *Geometry) ClusterOffset(c uint32) int64 {
	return g.DataOffset() + int64(c-2)*int64(g.ClusterSize)
}

// VolumeBytes is the size of the volume as the boot sector states it; the
// FSD should refuse a volume larger than its device.
func (g *Geometry) VolumeBytes() int64 { return int64(g.TotalSectors) * int64(g.BytesPerSector) }

// FSInfo sector layout and signatures.
const (
	fsInfoLeadSig   = 0x41615252 // "RRaA" at offset 0
	fsInfoStructSig = 0x61417272 // "rrAa" at offset 484
	fsInfoTrailSig  = 0xAA550000 // at offset 508
	// FSInfoUnknown in FreeCount or NextFree means "not known; compute it".
	FSInfoUnknown = 0xFFFFFFFF
)

// FSInfo is the FAT32 FSInfo sector's free-cluster count and next-free
// hint. Either may be FSInfoUnknown. They are hints: the FSD counts free
// clusters itself when it loads the FAT (see Table.FreeCount) and writes the
// exact figures back.
type FSInfo struct {
	FreeCount uint32
	NextFree  uint32
}

// ParseFSInfo decodes an FSInfo sector (at least 512 bytes). Missing
// signatures wrap ErrCorrupt; the volume is still usable (Windows then
// ignores the sector).
func ParseFSInfo(b []byte) (FSInfo, error) {
	if len(b) < bootSectorSize {
		return FSInfo{}, corrupt("FSInfo sector is %d bytes, need 512", len(b))
	}
	le := binary.LittleEndian
	if le.Uint32(b[0:]) != fsInfoLeadSig || le.Uint32(b[484:]) != fsInfoStructSig || le.Uint32(b[508:]) != fsInfoTrailSig {
		return FSInfo{}, corrupt("FSInfo sector has bad signatures (%#08x %#08x %#08x)",
			le.Uint32(b[0:]), le.Uint32(b[484:]), le.Uint32(b[508:]))
	}
	return FSInfo{FreeCount: le.Uint32(b[488:]), NextFree: le.Uint32(b[492:])}, nil
}

// Sanitized returns fi with values impossible for geometry g replaced by
// FSInfoUnknown: a free count above the cluster count, a next-free hint
// outside 2..MaxCluster.
func (fi FSInfo) Sanitized(g *Geometry) FSInfo {
	if fi.FreeCount != FSInfoUnknown && fi.FreeCount > g.MaxCluster-1 {
		fi.FreeCount = FSInfoUnknown
	}
	if fi.NextFree != FSInfoUnknown && (fi.NextFree < 2 || fi.NextFree > g.MaxCluster) {
		fi.NextFree = FSInfoUnknown
	}
	return fi
}

// Encode writes the three signatures and both fields into an FSInfo sector
// (at least 512 bytes), leaving the reserved bytes as they are.
func (fi FSInfo) Encode(b []byte) error {
	if len(b) < bootSectorSize {
		return outOfRange("FSInfo buffer is %d bytes, need 512", len(b))
	}
	le := binary.LittleEndian
	le.PutUint32(b[0:], fsInfoLeadSig)
	le.PutUint32(b[484:], fsInfoStructSig)
	le.PutUint32(b[488:], fi.FreeCount)
	le.PutUint32(b[492:], fi.NextFree)
	le.PutUint32(b[508:], fsInfoTrailSig)
	return nil
}
