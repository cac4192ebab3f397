package fat

// Format: a new FAT12/16/32 file system on a raw volume.
//
// The layout rules are Microsoft's FAT specification (fatgen103) where it
// leaves no choice, and mkfs.fat 4.2's observed behaviour where it does
// (cluster size, FAT type, alignment, geometry): vdisk is meant to replace
// mkfs.fat in CI, so the same request gives the same layout. The rules
// were derived by running mkfs.fat on sparse images of many sizes and
// reading back its boot sectors; format_oracle_test.go checks them against
// mkfs.fat again. The differences are listed on Format.

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/vdisk-dev/vdisk/fsd/fat/internal/ondisk"
)

// Errors of Format. Each error Format returns is a *FormatError wrapping
// one of these (and ErrInvalidName for a bad label), so callers can tell a
// bad request from a volume that cannot hold it.
var (
	// ErrFormatOption means an option is invalid by itself or with the
	// others: a sector or cluster size that is not a power of two in
	// range, a FAT count other than 1 or 2, root entries on FAT32, a label
	// FAT cannot store.
	ErrFormatOption = errors.New("fat: invalid format option")
	// ErrVolumeTooSmall means the volume cannot hold the requested layout:
	// no room for the metadata, or fewer clusters than the FAT type needs
	// (FAT16 needs 4085, FAT32 65525).
	ErrVolumeTooSmall = errors.New("fat: volume too small for the requested format")
	// ErrVolumeTooLarge means the volume has more clusters than the FAT type
	// can address at the largest allowed cluster size (FAT12 4084, FAT16
	// 65524).
	ErrVolumeTooLarge = errors.New("fat: volume too large for the requested format")
)

// FormatError is the error Format returns: what was asked and why it cannot
// be done. errors.Is matches its Kind (ErrFormatOption, ErrVolumeTooSmall or
// ErrVolumeTooLarge) and, for labels, ErrInvalidName.
type FormatError struct {
	Kind  error
	Msg   string
	cause error
}

func (e *FormatError) Error() string { return "fat: format: " + e.Msg }

// Unwrap returns the kind and the underlying cause, if any.
func (e *FormatError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.Kind, e.cause}
	}
	return []error{e.Kind}
}

func fmtErr(kind error, format string, args ...any) error {
	return &FormatError{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// FormatOptions are the choices of a format; the zero value of each field
// means "choose like mkfs.fat 4.2".
type FormatOptions struct {
	// FATType is 12, 16 or 32; 0 chooses: FAT32 for volumes of 512 MiB and
	// more, below that FAT12 when the volume has at most 4084 clusters of
	// the chosen size, else FAT16.
	FATType int
	// ClusterSize in bytes: a power of two, at least the sector size, at
	// most 128 sectors and 64 KiB. 0 chooses: for FAT32 by the
	// specification's table (1 sector per cluster up to 532480 sectors,
	// 8 up to 16 Mi sectors, 16 up to 32 Mi, 32 up to 64 Mi, 64 above: with
	// 512-byte sectors 512 bytes up to 260 MiB, 4 KiB up to 8 GiB, 8, 16,
	// 32 KiB; the thresholds count logical sectors, so with larger sectors
	// clusters grow with them, as in mkfs.fat); for FAT12/16 the smallest
	// of 4 sectors, 8, 16, ... that gives the type few enough clusters (the
	// standard floppy sizes have their own). Each FAT is then the smallest
	// that has an entry for every cluster (rounded up to whole clusters
	// where ReservedSectors is).
	ClusterSize int
	// SectorSize is the logical sector size: 512, 1024, 2048 or 4096;
	// 0 means 512. Pass the device's sector size.
	SectorSize int
	// Label is the volume label, at most 11 bytes in CodePage, without
	// control characters, any of *?.,;:/\|+=<>[]" or a leading space. Its
	// case is kept (as mkfs.fat 4.2 does; Windows would upper-case it).
	// "" (or "NO NAME") writes "NO NAME" in the boot sector and no label
	// entry in the root directory.
	Label string
	// CodePage encodes the label; nil means DefaultCodePage, the code page
	// the FSD reads labels with (mkfs.fat's default is 850).
	CodePage *ondisk.CodePage
	// VolumeID is the serial number when HasVolumeID is set; otherwise it is
	// derived from Time, the way DOS does (date and time words added).
	VolumeID    uint32
	HasVolumeID bool
	// ReservedSectors is the minimum number of reserved sectors (boot sector
	// included); 0 means 1 for FAT12/16 and 32 for FAT32. Like mkfs.fat,
	// the count is rounded up to a whole number of clusters on volumes of
	// more than 8192 sectors, so that the data area is cluster-aligned.
	ReservedSectors int
	// RootEntries is the minimum size of the FAT12/16 root directory in
	// entries; 0 means 512 (112 or 224 on the standard floppy sizes).
	// Rounded up to whole sectors, and to whole clusters where
	// ReservedSectors is. Refused with FATType 32; ignored when the
	// automatic choice is FAT32, as mkfs.fat does.
	RootEntries int
	// NumFATs is the number of FAT copies, 1 or 2; 0 means 2. (mkfs.fat
	// allows up to 4, but fsck.fat checks no more than 2.)
	NumFATs int
	// Media is the media descriptor, 0xF0 or 0xF8..0xFF; 0 means 0xF8
	// (fixed disk), or the floppy's descriptor on the standard floppy sizes
	// (0xF0 for 1.44 MB). The BIOS drive number is 0x80 with 0xF8, else 0.
	Media byte
	// HiddenSectors is the number of sectors before the volume on its disk:
	// the partition's first sector, 0 for a disk without partitions.
	HiddenSectors uint32
	// BackupBootSector is the FAT32 boot sector copy's sector (the FSInfo
	// copy follows it when the reserved area has room), 2 or more; 0 means
	// 6, or less when there are fewer than 7 reserved sectors, and none with
	// only 2 (fsck.fat wants a copy wherever one fits, so there is no way
	// to ask for none).
	BackupBootSector int
	// SectorsPerTrack and Heads are the CHS geometry recorded in the boot
	// sector (informational); 0 chooses like mkfs.fat from the volume's
	// sector count. The volume is used in whole tracks, as mkfs.fat does:
	// up to SectorsPerTrack-1 sectors at its end stay outside the file
	// system.
	SectorsPerTrack, Heads int
	// Time stamps the label entry and seeds the volume ID; the zero value
	// means now. Its location is the zone the timestamp is written in. With
	// the same Time and VolumeID, Format writes byte-identical volumes.
	Time time.Time
	// Progress, if set, is called after each write with the bytes written
	// so far and the total Format will write.
	Progress func(done, total int64)
}

// FormatResult describes the file system Format wrote.
type FormatResult struct {
	// BootSector is the boot sector as written.
	BootSector ondisk.BootSector
	// Geometry is its layout.
	Geometry ondisk.Geometry
	// FreeClusters is the number of free clusters: all of them but the
	// FAT32 root directory's.
	FreeClusters uint32
	// VolumeID is the serial number written; Label the label ("" for none).
	VolumeID uint32
	Label    string
	// Written is the number of bytes Format wrote (the metadata area).
	Written int64
}

// FreeBytes is the free space in bytes.
func (r *FormatResult) FreeBytes() int64 {
	return int64(r.FreeClusters) * int64(r.Geometry.ClusterSize)
}

// Cluster-count limits as mkfs.fat and the specification apply them when
// formatting.
const (
	fmtMaxClusters12  = ondisk.MinClustersFAT16 - 1 // 4084
	fmtMaxClusters16  = ondisk.MinClustersFAT32 - 1 // 65524
	fmtMaxClusterSize = 64 << 10                    // bytes; Windows mounts nothing larger
	fmtMaxSecPerClus  = 128
	fmtMaxNumFATs     = 2
	// fmtFAT32AutoBytes: from this size up, an automatic choice is FAT32.
	fmtFAT32AutoBytes = 512 << 20
	// fmtAlignAbove: volumes with more sectors than this get cluster-aligned
	// reserved area, FATs and root directory (mkfs.fat 4.2 does; smaller
	// ones are laid out tightly, floppy-style).
	fmtAlignAbove = 8192
	// fmtChunk is the largest single write Format issues.
	fmtChunk = 1 << 20
)

// fmtFloppy is a standard diskette format, recognised by the exact volume size.
type fmtFloppy struct {
	kib         int64
	secPerClus  uint32
	rootEntries uint32
	media       byte
	secPerTrack uint16
	heads       uint16
}

// The DOS floppy formats, with the parameters mkfs.fat uses for them (the
// 2.88 MB format gets 224 root entries there, where DOS used 240).
var fmtFloppies = []fmtFloppy{
	{360, 2, 112, 0xFD, 9, 2},
	{720, 2, 112, 0xF9, 9, 2},
	{1200, 1, 224, 0xF9, 15, 2},
	{1440, 1, 224, 0xF0, 18, 2},
	{2880, 2, 224, 0xF0, 36, 2},
}

// fmtCHS is the sectors per track and heads mkfs.fat records for a
// volume of n logical sectors when the device reports no geometry (as for
// image files): small "disks" first, then the LBA-assist translation (63
// sectors per track, heads doubled until the cylinders fit in 1024).
func fmtCHS(n uint64) (spt, heads uint16) {
	switch {
	case n <= 4096:
		return 16, 2
	case n <= 32768:
		return 32, 2
	case n <= 65536:
		return 32, 4
	case n <= 262144:
		return 32, 8
	case n <= 524288:
		return 32, 16
	}
	for _, h := range []uint64{16, 32, 64, 128} {
		if n <= 1024*63*h {
			return 63, uint16(h)
		}
	}
	return 63, 255
}

// fmtFAT32SecPerClus is the specification's FAT32 cluster size table, in
// sectors, for a volume of n sectors (mkfs.fat applies it to logical
// sectors of any size).
func fmtFAT32SecPerClus(n uint64) uint32 {
	switch {
	case n <= 532480: // 260 MiB
		return 1
	case n <= 16777216: // 8 GiB
		return 8
	case n <= 33554432: // 16 GiB
		return 16
	case n <= 67108864: // 32 GiB
		return 32
	}
	return 64
}

// fmtLayout is one candidate layout: the numbers of a boot sector.
type fmtLayout struct {
	typ         ondisk.FATType
	bps         uint32
	spc         uint32
	reserved    uint32
	rootEntries uint32
	rootSectors uint32
	numFATs     uint32
	fatSectors  uint32
	total       uint32
	clusters    uint32 // 0 when the metadata fills the volume
}

func fmtRoundUp(v, m uint32) uint32 { return (v + m - 1) / m * m }

// fmtComputeLayout computes the FAT size and cluster count for type typ with spc
// sectors per cluster. The FAT is the smallest that has an entry for every
// cluster (plus the two reserved entries); with align, the reserved area,
// the root directory and each FAT are rounded up to whole clusters so the
// data area starts on a cluster boundary.
func fmtComputeLayout(typ ondisk.FATType, total, bps, spc, reserved, rootEntries, numFATs uint32, align bool) fmtLayout {
	l := fmtLayout{typ: typ, bps: bps, spc: spc, reserved: reserved, numFATs: numFATs, total: total}
	if typ != ondisk.FAT32 {
		// Whole sectors: fsck.fat refuses a root directory that ends inside
		// one (mkfs.fat -r 100 writes such a count on small volumes).
		l.rootSectors = (rootEntries*ondisk.DirEntrySize + bps - 1) / bps
		l.rootEntries = l.rootSectors * bps / ondisk.DirEntrySize
	}
	if align {
		l.reserved = fmtRoundUp(l.reserved, spc)
		if typ != ondisk.FAT32 {
			l.rootSectors = fmtRoundUp(l.rootSectors, spc)
			l.rootEntries = l.rootSectors * bps / ondisk.DirEntrySize
		}
	}
	bits := uint64(typ)
	fixed := uint64(l.reserved) + uint64(l.rootSectors)
	clustersWith := func(f uint64) uint64 {
		used := fixed + uint64(numFATs)*f
		if used >= uint64(total) {
			return 0
		}
		return (uint64(total) - used) / uint64(spc)
	}
	fits := func(f uint64) bool { return f*uint64(bps)*8/bits >= clustersWith(f)+2 }
	// First guess from the continuous equation, then step to the smallest
	// size that fits.
	var f uint64 = 1
	if uint64(total) > fixed {
		f = ((uint64(total)-fixed)+2*uint64(spc))*bits/(uint64(spc)*uint64(bps)*8+uint64(numFATs)*bits) + 1
	}
	for f > 1 && fits(f-1) {
		f--
	}
	for !fits(f) {
		f++
	}
	if align {
		f = uint64(fmtRoundUp(uint32(f), spc))
	}
	l.fatSectors = uint32(f)
	l.clusters = uint32(clustersWith(f))
	return l
}

// fmtPlanned is everything Format decided before writing.
type fmtPlanned struct {
	bs         ondisk.BootSector
	g          ondisk.Geometry
	label      [11]byte
	hasLabel   bool
	fsInfoCopy uint32 // sector of the FSInfo copy, 0 for none
	stamp      time.Time
}

// fmtSize prints a size in binary units, exactly when it is a whole number
// of them.
func fmtSize(n int64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d %s", n>>u.shift, u.name)
		}
	}
	if n < 1024 {
		return fmt.Sprintf("%d bytes", n)
	}
	return humanize.IBytes(uint64(n))
}

// fmtCluster prints a cluster size the way the messages use it.
func fmtCluster(n uint32) string {
	if n < 1024 {
		return fmt.Sprintf("%d-byte", n)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// fmtPlan validates the options and chooses the layout.
func fmtPlan(size int64, o FormatOptions) (*fmtPlanned, error) {
	// Sector size.
	bps := uint32(512)
	switch o.SectorSize {
	case 0:
	case 512, 1024, 2048, 4096:
		bps = uint32(o.SectorSize)
	default:
		return nil, fmtErr(ErrFormatOption, "sector size %d: want 512, 1024, 2048 or 4096", o.SectorSize)
	}
	// FAT type.
	var want ondisk.FATType
	switch o.FATType {
	case 0:
	case 12, 16, 32:
		want = ondisk.FATType(o.FATType)
	default:
		return nil, fmtErr(ErrFormatOption, "FAT type %d: want 12, 16 or 32", o.FATType)
	}
	// Cluster size.
	var spc uint32
	if o.ClusterSize != 0 {
		cs := o.ClusterSize
		switch {
		case cs < 0 || cs&(cs-1) != 0:
			return nil, fmtErr(ErrFormatOption, "cluster size %d is not a power of two", cs)
		case cs < int(bps):
			return nil, fmtErr(ErrFormatOption, "cluster size %d is smaller than the %d-byte sector", cs, bps)
		case cs > fmtMaxClusterSize:
			return nil, fmtErr(ErrFormatOption, "cluster size %s is larger than 64 KiB (Windows mounts no larger cluster)", fmtSize(int64(cs)))
		case cs/int(bps) > fmtMaxSecPerClus:
			return nil, fmtErr(ErrFormatOption, "cluster size %s is more than %d sectors", fmtSize(int64(cs)), fmtMaxSecPerClus)
		}
		spc = uint32(cs) / bps
	}
	// FAT count.
	numFATs := uint32(2)
	if o.NumFATs != 0 {
		if o.NumFATs < 1 || o.NumFATs > fmtMaxNumFATs {
			return nil, fmtErr(ErrFormatOption, "%d FATs: want 1 or 2", o.NumFATs)
		}
		numFATs = uint32(o.NumFATs)
	}
	if o.ReservedSectors < 0 || o.ReservedSectors > 0xFFFF {
		return nil, fmtErr(ErrFormatOption, "%d reserved sectors: want 1 to 65535", o.ReservedSectors)
	}
	if o.RootEntries < 0 || o.RootEntries > 0xFFFF {
		return nil, fmtErr(ErrFormatOption, "%d root directory entries: want 1 to 65535", o.RootEntries)
	}
	if want == ondisk.FAT32 && o.RootEntries != 0 {
		return nil, fmtErr(ErrFormatOption, "FAT32 has no fixed root directory: root entries cannot be set")
	}
	if want == ondisk.FAT32 && o.ReservedSectors == 1 {
		return nil, fmtErr(ErrFormatOption, "FAT32 needs at least 2 reserved sectors (boot sector and FSInfo)")
	}
	if o.Media != 0 && o.Media != 0xF0 && o.Media < 0xF8 {
		return nil, fmtErr(ErrFormatOption, "media descriptor %#02x: want 0xF0 or 0xF8..0xFF", o.Media)
	}
	if o.SectorsPerTrack < 0 || o.SectorsPerTrack > 0xFFFF || o.Heads < 0 || o.Heads > 0xFFFF {
		return nil, fmtErr(ErrFormatOption, "geometry %d heads, %d sectors per track: want 1 to 65535", o.Heads, o.SectorsPerTrack)
	}
	if o.BackupBootSector < 0 || o.BackupBootSector == 1 || o.BackupBootSector > 0xFFFE {
		what := "want 2 or more, or 0 for the default"
		if o.BackupBootSector == 1 {
			what = "sector 1 holds FSInfo"
		}
		return nil, fmtErr(ErrFormatOption, "backup boot sector %d: %s", o.BackupBootSector, what)
	}
	if want != 0 && want != ondisk.FAT32 && o.BackupBootSector > 0 {
		return nil, fmtErr(ErrFormatOption, "%v has no backup boot sector", want)
	}
	p := &fmtPlanned{}
	var err error
	p.label, p.hasLabel, err = fmtEncodeLabel(o.Label, o.CodePage)
	if err != nil {
		return nil, err
	}

	// Size: whole sectors, at most 2^32-1 of them, in whole tracks.
	if size < 0 {
		return nil, fmtErr(ErrFormatOption, "negative volume size %d", size)
	}
	sectors := uint64(size) / uint64(bps)
	if sectors > 0xFFFFFFFF {
		sectors = 0xFFFFFFFF
	}
	var fl *fmtFloppy
	for i := range fmtFloppies {
		if size == fmtFloppies[i].kib<<10 {
			fl = &fmtFloppies[i]
		}
	}
	spt, heads := fmtCHS(sectors)
	if fl != nil {
		spt, heads = fl.secPerTrack, fl.heads
	}
	if o.SectorsPerTrack != 0 {
		spt = uint16(o.SectorsPerTrack)
	}
	if o.Heads != 0 {
		heads = uint16(o.Heads)
	}
	total := uint32(sectors - sectors%uint64(spt))
	align := total > fmtAlignAbove

	media := byte(0xF8)
	if fl != nil {
		media = fl.media
	}
	if o.Media != 0 {
		media = o.Media
	}

	reservedFor := func(t ondisk.FATType) uint32 {
		switch {
		case o.ReservedSectors != 0:
			return uint32(o.ReservedSectors)
		case t == ondisk.FAT32:
			return 32
		}
		return 1
	}
	rootFor := func(t ondisk.FATType) uint32 {
		switch {
		case t == ondisk.FAT32:
			return 0
		case o.RootEntries != 0:
			return uint32(o.RootEntries)
		case fl != nil:
			return fl.rootEntries
		}
		return 512
	}
	try := func(t ondisk.FATType, s uint32) fmtLayout {
		return fmtComputeLayout(t, total, bps, s, reservedFor(t), rootFor(t), numFATs, align)
	}
	// Cluster sizes an automatic FAT12/16 choice walks through.
	var steps []uint32
	if spc != 0 {
		steps = []uint32{spc}
	} else {
		s := uint32(4)
		if fl != nil {
			s = fl.secPerClus
		}
		for ; s <= fmtMaxSecPerClus && s*bps <= fmtMaxClusterSize; s *= 2 {
			steps = append(steps, s)
		}
	}
	volume := fmtSize(size)
	var l fmtLayout
	switch {
	case want == ondisk.FAT32 || (want == 0 && size >= fmtFAT32AutoBytes):
		s := spc
		if s == 0 {
			s = fmtFAT32SecPerClus(sectors)
			if fl != nil {
				s = 1
			}
			for s*bps > fmtMaxClusterSize {
				s /= 2
			}
		}
		l = try(ondisk.FAT32, s)
		if l.clusters < ondisk.MinClustersFAT32 {
			return nil, fmtTooSmall(volume, l, ondisk.MinClustersFAT32, fmtHintSmaller(l, try))
		}
		if l.clusters > ondisk.MaxClustersFAT32 {
			return nil, fmtErr(ErrVolumeTooLarge, "volume of %s is too large for FAT32 with %s clusters: it would have %d clusters, FAT32 allows at most %d",
				volume, fmtCluster(l.spc*bps), l.clusters, ondisk.MaxClustersFAT32)
		}
	case want == ondisk.FAT12:
		found := false
		for _, s := range steps {
			if l = try(ondisk.FAT12, s); l.clusters <= fmtMaxClusters12 {
				found = true
				break
			}
		}
		if !found {
			return nil, fmtTooLarge(volume, l, fmtMaxClusters12, spc != 0, try)
		}
	case want == ondisk.FAT16:
		found := false
		for _, s := range steps {
			if l = try(ondisk.FAT16, s); l.clusters <= fmtMaxClusters16 {
				found = true
				break
			}
		}
		if !found {
			return nil, fmtTooLarge(volume, l, fmtMaxClusters16, spc != 0, try)
		}
		if l.clusters < ondisk.MinClustersFAT16 {
			return nil, fmtTooSmall(volume, l, ondisk.MinClustersFAT16, fmtHintSmaller(l, try))
		}
	default: // automatic, below 512 MiB: FAT12 if it fits, else FAT16
		found := false
		for _, s := range steps {
			if l = try(ondisk.FAT12, s); l.clusters <= fmtMaxClusters12 {
				found = true
				break
			}
			if l = try(ondisk.FAT16, s); l.clusters >= ondisk.MinClustersFAT16 && l.clusters <= fmtMaxClusters16 {
				found = true
				break
			}
		}
		if !found {
			return nil, fmtTooLarge(volume, l, fmtMaxClusters16, spc != 0, try)
		}
	}
	if l.clusters == 0 {
		return nil, fmtErr(ErrVolumeTooSmall, "volume of %s is too small for %v: the metadata (%d sectors) leaves no room for a %s cluster",
			volume, l.typ, l.reserved+l.numFATs*l.fatSectors+l.rootSectors, fmtCluster(l.spc*bps))
	}
	if l.rootEntries > 0xFFFF {
		return nil, fmtErr(ErrFormatOption, "%d root directory entries (rounded up to whole clusters): at most 65535", l.rootEntries)
	}
	if l.reserved > 0xFFFF {
		return nil, fmtErr(ErrFormatOption, "%d reserved sectors (rounded up to whole clusters): at most 65535", l.reserved)
	}
	if l.typ == ondisk.FAT32 && (l.reserved < 2 || o.ReservedSectors == 1) {
		return nil, fmtErr(ErrFormatOption, "FAT32 needs at least 2 reserved sectors (boot sector and FSInfo)")
	}
	if l.typ != ondisk.FAT32 && o.BackupBootSector > 0 {
		return nil, fmtErr(ErrFormatOption, "%v has no backup boot sector", l.typ)
	}

	// The boot sector.
	bs := &p.bs
	bs.OEMName = [8]byte{'M', 'S', 'W', 'I', 'N', '4', '.', '1'}
	bs.BytesPerSector = uint16(bps)
	bs.SectorsPerCluster = uint8(l.spc)
	bs.ReservedSectors = uint16(l.reserved)
	bs.NumFATs = uint8(l.numFATs)
	bs.RootEntries = uint16(l.rootEntries)
	if total < 0x10000 {
		bs.TotalSectors16 = uint16(total)
	} else {
		bs.TotalSectors32 = total
	}
	bs.Media = media
	bs.SectorsPerTrack = spt
	bs.NumHeads = heads
	bs.HiddenSectors = o.HiddenSectors
	bs.DriveNumber = 0x00
	if media == 0xF8 {
		bs.DriveNumber = 0x80
	}
	bs.BootSignature = ondisk.BootSigExtended
	bs.VolumeLabel = p.label
	if !p.hasLabel {
		copy(bs.VolumeLabel[:], "NO NAME    ")
	}
	if l.typ == ondisk.FAT32 {
		bs.Jump = [3]byte{0xEB, 0x58, 0x90}
		bs.FATSize32 = l.fatSectors
		bs.RootCluster = 2
		bs.FSInfoSector = 1
		bk := uint32(0)
		switch {
		case o.BackupBootSector > 0:
			bk = uint32(o.BackupBootSector)
			if bk >= l.reserved {
				return nil, fmtErr(ErrFormatOption, "backup boot sector %d is outside the %d reserved sectors", bk, l.reserved)
			}
		case l.reserved >= 7:
			bk = 6
		case l.reserved >= 4:
			bk = l.reserved - 2
		case l.reserved == 3:
			bk = 2
		}
		bs.BackupBootSector = uint16(bk)
		if bk != 0 && bk+1 < l.reserved {
			p.fsInfoCopy = bk + 1
		}
		copy(bs.FSTypeLabel[:], "FAT32   ")
	} else {
		bs.Jump = [3]byte{0xEB, 0x3C, 0x90}
		bs.FATSize16 = uint16(l.fatSectors)
		copy(bs.FSTypeLabel[:], fmt.Sprintf("%-8v", l.typ))
	}

	p.stamp = o.Time
	if p.stamp.IsZero() {
		p.stamp = time.Now()
	}
	bs.VolumeID = o.VolumeID
	if !o.HasVolumeID {
		bs.VolumeID = fmtDOSSerial(p.stamp)
	}

	g, err := bs.Geometry()
	if err != nil {
		return nil, fmt.Errorf("fat: format: internal error: the chosen fmtComputeLayout does not validate: %w", err)
	}
	if g.Type != l.typ || g.ClusterCount != l.clusters || g.MaxCluster != l.clusters+1 {
		return nil, fmt.Errorf("fat: format: internal error: planned %v with %d clusters, boot sector gives %v with %d (max %d)",
			l.typ, l.clusters, g.Type, g.ClusterCount, g.MaxCluster)
	}
	p.g = g
	return p, nil
}

// fmtTooSmall is the error for a layout with fewer clusters than its type needs.
func fmtTooSmall(volume string, l fmtLayout, need uint32, hint string) error {
	return fmtErr(ErrVolumeTooSmall, "volume of %s is too small for %v with %s clusters: it would have %d clusters, %v needs at least %d%s",
		volume, l.typ, fmtCluster(l.spc*l.bps), l.clusters, l.typ, need, hint)
}

// fmtTooLarge is the error for a type that has too many clusters even at the
// largest cluster size tried.
func fmtTooLarge(volume string, l fmtLayout, most uint32, explicit bool, try func(ondisk.FATType, uint32) fmtLayout) error {
	even := "even with"
	hint := ""
	if explicit {
		even = "with"
		for s := l.spc * 2; s <= fmtMaxSecPerClus && s*l.bps <= fmtMaxClusterSize; s *= 2 {
			if m := try(l.typ, s); m.clusters <= most && (l.typ != ondisk.FAT16 || m.clusters >= ondisk.MinClustersFAT16) {
				hint = fmt.Sprintf("; %s clusters would do", fmtCluster(s*l.bps))
				break
			}
		}
	}
	return fmtErr(ErrVolumeTooLarge, "volume of %s is too large for %v %s %s clusters: it would have %d clusters, %v allows at most %d%s",
		volume, l.typ, even, fmtCluster(l.spc*l.bps), l.clusters, l.typ, most, hint)
}

// fmtHintSmaller suggests the largest smaller cluster size that gives the type
// enough clusters, if there is one.
func fmtHintSmaller(l fmtLayout, try func(ondisk.FATType, uint32) fmtLayout) string {
	need := uint32(ondisk.MinClustersFAT32)
	if l.typ == ondisk.FAT16 {
		need = ondisk.MinClustersFAT16
	}
	for s := l.spc / 2; s >= 1; s /= 2 {
		m := try(l.typ, s)
		if m.clusters >= need && (l.typ != ondisk.FAT16 || m.clusters <= fmtMaxClusters16) {
			return fmt.Sprintf("; %s clusters would do", fmtCluster(s*l.bps))
		}
	}
	return ""
}

// fmtEncodeLabel checks a label and converts it to its 11 stored bytes
// (EncodeVolumeLabel: its case kept); "" and "NO NAME" give no label, as
// with mkfs.fat.
func fmtEncodeLabel(label string, cp *ondisk.CodePage) (raw [11]byte, ok bool, err error) {
	raw, err = ondisk.EncodeVolumeLabel(label, cp)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), ondisk.ErrInvalidName.Error()+": ")
		return raw, false, &FormatError{Kind: ErrFormatOption, Msg: msg, cause: ondisk.ErrInvalidName}
	}
	if label == "" || string(raw[:]) == "NO NAME    " {
		return raw, false, nil
	}
	return raw, true, nil
}

// fmtDOSSerial derives a volume serial number from a time as DOS's FORMAT
// does: the high word is hours:minutes plus the year, the low word
// month:day plus seconds:hundredths, each pair packed as two bytes.
func fmtDOSSerial(t time.Time) uint32 {
	hi := uint16(t.Hour())<<8 | uint16(t.Minute())
	hi += uint16(t.Year())
	lo := uint16(t.Month())<<8 | uint16(t.Day())
	lo += uint16(t.Second())<<8 | uint16(t.Nanosecond()/10_000_000)
	return uint32(hi)<<16 | uint32(lo)
}

// fmtBootMessage is what the boot stub prints when the volume is booted.
const fmtBootMessage = "This volume has no operating system to start.\r\nPress any key to restart the computer.\r\n"

// fmtPutBootStub writes a minimal real-mode boot program at off (where the
// boot sector's jump lands): print fmtBootMessage through the BIOS teletype
// service, wait for a key, ask the BIOS to boot from the next device.
func fmtPutBootStub(sector []byte, off int) {
	msg := 0x7C00 + off + 30 // the boot sector is loaded at 0000:7C00
	code := []byte{
		0x31, 0xC0, // xor ax, ax
		0x8E, 0xD8, // mov ds, ax
		0xBE, byte(msg), byte(msg >> 8), // mov si, message
		0xFC,       // cld
		0xAC,       // next: lodsb
		0x84, 0xC0, // test al, al
		0x74, 0x09, // jz wait
		0xB4, 0x0E, // mov ah, 0x0E (teletype output)
		0xBB, 0x07, 0x00, // mov bx, 7 (page 0, grey)
		0xCD, 0x10, // int 0x10
		0xEB, 0xF2, // jmp next
		0x31, 0xC0, // wait: xor ax, ax
		0xCD, 0x16, // int 0x16 (read a key)
		0xCD, 0x19, // int 0x19 (bootstrap loader)
		0xEB, 0xFE, // jmp $
	}
	n := copy(sector[off:], code)
	n += copy(sector[off+n:510], fmtBootMessage)
	sector[off+n] = 0
}

// fmtPatch is bytes to place at an offset of the metadata area.
type fmtPatch struct {
	off  int64
	data []byte
}

// Format writes a new, empty FAT file system on the volume of size bytes
// that w accesses, and returns what it wrote. It writes only the metadata:
// the reserved area (boot sector, FAT32 FSInfo and backup copies, zeros
// elsewhere), every FAT copy, the FAT12/16 root directory and the FAT32
// root directory's cluster, in sector-aligned writes of up to 1 MiB; data
// clusters are left as they are (a sparse image stays sparse). The boot
// sector is written last, so an interrupted format leaves no volume that
// looks valid.
//
// size is rounded down to whole sectors and tracks (see
// SectorsPerTrack) and capped at 2^32-1 sectors, as mkfs.fat does;
// FormatResult.Geometry.VolumeBytes is the size the file system covers.
//
// The layout follows mkfs.fat 4.2 (see FormatOptions). Where vdisk differs:
//   - the OEM name is "MSWIN4.1" (the specification's recommendation),
//     not "mkfs.fat", and the boot code is vdisk's own stub;
//   - FAT32 with fewer than 65525 clusters is refused (mkfs.fat warns and
//     writes a volume that the specification's rule would call FAT16 and
//     that mtools cannot write to);
//   - clusters are at most 64 KiB, the most Windows mounts: with sectors
//     larger than 512 bytes mkfs.fat goes beyond (FAT12/16 up to 128
//     sectors, FAT32 above 64 GiB with 4 KiB sectors); vdisk refuses such
//     a FAT12/16 request and gives FAT32 64 KiB clusters;
//   - the FAT32 root directory's FAT entry is 0x0FFFFFFF, the end-of-chain
//     value Windows and Linux write (mkfs.fat writes 0x0FFFFFF8);
//   - the root directory always fills whole sectors (mkfs.fat -r 100 on a
//     small volume records 100 entries, which fsck.fat then refuses);
//   - at most 2 FATs (mkfs.fat allows 4; fsck.fat checks no more than 2);
//   - the label keeps its case like mkfs.fat, but is encoded with
//     DefaultCodePage (437) unless FormatOptions.CodePage says otherwise.
func Format(w io.WriterAt, size int64, opts FormatOptions) (*FormatResult, error) {
	p, err := fmtPlan(size, opts)
	if err != nil {
		return nil, err
	}
	g := &p.g
	bps := int64(g.BytesPerSector)

	boot := make([]byte, bps)
	if err := p.bs.Encode(boot); err != nil {
		return nil, fmt.Errorf("fat: format: %w", err)
	}
	if g.Type == ondisk.FAT32 {
		fmtPutBootStub(boot, 0x5A)
	} else {
		fmtPutBootStub(boot, 0x3E)
	}

	var patches []fmtPatch
	free := g.ClusterCount
	if g.Type == ondisk.FAT32 {
		free--
		fsi := make([]byte, bps)
		if err := (ondisk.FSInfo{FreeCount: free, NextFree: 2}).Encode(fsi); err != nil {
			return nil, fmt.Errorf("fat: format: %w", err)
		}
		patches = append(patches, fmtPatch{int64(g.FSInfoSector) * bps, fsi})
		if g.BackupBootSector != 0 {
			patches = append(patches, fmtPatch{int64(g.BackupBootSector) * bps, boot})
		}
		if p.fsInfoCopy != 0 {
			patches = append(patches, fmtPatch{int64(p.fsInfoCopy) * bps, fsi})
		}
	}

	// The first sector of each FAT: the reserved entries, and the FAT32 root
	// directory's end of chain.
	head := make([]byte, bps)
	hg := *g
	perSector := uint32(bps) * 8 / uint32(g.Type)
	hg.MaxCluster = min(g.MaxCluster, perSector-1)
	t, err := ondisk.NewTable(&hg, head)
	if err != nil {
		return nil, fmt.Errorf("fat: format: %w", err)
	}
	t.SetReservedEntries(p.bs.Media)
	if g.Type == ondisk.FAT32 {
		if err := t.Set(g.RootCluster, ondisk.EndOfChain); err != nil {
			return nil, fmt.Errorf("fat: format: %w", err)
		}
	}
	for i := range g.NumFATs {
		patches = append(patches, fmtPatch{g.FATOffset(i), head})
	}

	// The label entry, first in the root directory.
	end := g.DataOffset()
	root := g.RootDirOffset()
	if g.Type == ondisk.FAT32 {
		root = g.ClusterOffset(g.RootCluster)
		end = root + int64(g.ClusterSize)
	}
	if p.hasLabel {
		e := ondisk.ShortEntry{Name: ondisk.ShortName(p.label), Attr: ondisk.AttrVolumeID}
		date, tm, _ := ondisk.EncodeTime(p.stamp, p.stamp.Location())
		e.CreateDate, e.CreateTime = date, tm
		e.WriteDate, e.WriteTime = date, tm
		e.AccessDate = date
		ent := make([]byte, ondisk.DirEntrySize)
		e.Encode(ent)
		patches = append(patches, fmtPatch{root, ent})
	}

	// Write [0, end) in chunks, sector 0 zeroed; then the boot sector.
	chunk := min(int64(fmtChunk), end)
	buf := make([]byte, chunk)
	total := end + bps
	var done int64
	for off := int64(0); off < end; off += chunk {
		b := buf[:min(chunk, end-off)]
		clear(b)
		for _, pt := range patches {
			lo, hi := max(pt.off, off), min(pt.off+int64(len(pt.data)), off+int64(len(b)))
			if lo < hi {
				copy(b[lo-off:hi-off], pt.data[lo-pt.off:hi-pt.off])
			}
		}
		if _, err := w.WriteAt(b, off); err != nil {
			return nil, fmt.Errorf("fat: format: writing %d bytes at %d: %w", len(b), off, err)
		}
		done += int64(len(b))
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}
	if _, err := w.WriteAt(boot, 0); err != nil {
		return nil, fmt.Errorf("fat: format: writing the boot sector: %w", err)
	}
	done += bps
	if opts.Progress != nil {
		opts.Progress(done, total)
	}

	res := &FormatResult{
		BootSector:   p.bs,
		Geometry:     p.g,
		FreeClusters: free,
		VolumeID:     p.bs.VolumeID,
		Written:      done,
	}
	if p.hasLabel {
		res.Label = ondisk.FormatVolumeLabel(p.label, opts.CodePage)
	}
	return res, nil
}
