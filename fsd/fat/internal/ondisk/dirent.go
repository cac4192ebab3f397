package ondisk

import (
	"encoding/binary"
	"fmt"
	"iter"
	"time"
	"unicode/utf16"
)

// Directory limits.
const (
	// DirEntrySize is the size of one directory entry (a "slot").
	DirEntrySize = 32
	// MaxDirEntries is the most slots a directory may have (its size is at
	// most 2 MiB): Windows and the specification stop there, and the
	// FAT12/16 root directory has a fixed, smaller size (Geometry.RootEntries).
	MaxDirEntries = 65536
	// MaxDirBytes is the most bytes of a directory the FSD and the
	// ownership pass read: a longer chain (a corrupt volume) is not read
	// past MaxDirEntries slots.
	MaxDirBytes = MaxDirEntries * DirEntrySize
	// MaxFileSize is the largest file: the size field is 32 bits.
	MaxFileSize = 1<<32 - 1
	// maxLFNSlots is the most long-name entries one name can need (255/13
	// rounded up).
	maxLFNSlots = (MaxLongNameLen + lfnUnits - 1) / lfnUnits
	lfnUnits    = 13 // UTF-16 units per long-name entry
)

// First-byte markers of a slot.
const (
	endMarker     = 0x00 // this slot and all after it are free
	deletedMarker = 0xE5 // this slot is free
	kanjiEscape   = 0x05 // stored for a real leading 0xE5
	lfnLastFlag   = 0x40 // in the sequence byte of the first (physically) LFN slot
	lfnSeqMask    = 0x1F
)

// Attr is the attribute byte of a directory entry.
type Attr uint8

// Attribute bits. AttrLongName (all four low bits) marks a long-name entry.
const (
	AttrReadOnly  Attr = 0x01
	AttrHidden    Attr = 0x02
	AttrSystem    Attr = 0x04
	AttrVolumeID  Attr = 0x08
	AttrDirectory Attr = 0x10
	AttrArchive   Attr = 0x20
	AttrLongName  Attr = AttrReadOnly | AttrHidden | AttrSystem | AttrVolumeID
	attrLongMask  Attr = 0x3F
)

// CaseFlags are the NT case bits in byte 12 of a short entry: the base name
// or the extension is displayed in lower case though stored in upper case.
type CaseFlags uint8

// The NT case bits.
const (
	CaseLowerBase CaseFlags = 0x08
	CaseLowerExt  CaseFlags = 0x10
)

// ShortEntry is a decoded 32-byte short directory entry, field for field.
// Times are raw FAT values; use the time methods to convert.
type ShortEntry struct {
	Name         ShortName // a stored leading 0x05 is given back as 0xE5
	Attr         Attr
	NTRes        uint8  // byte 12: CaseLowerBase, CaseLowerExt (other bits kept as found)
	CreateCS     uint8  // creation time's 10 ms units, 0..199
	CreateTime   uint16 // creation time
	CreateDate   uint16 // creation date
	AccessDate   uint16 // last access date
	FirstCluster uint32 // high word (bytes 20-21) << 16 | low word (bytes 26-27)
	WriteTime    uint16 // last write time
	WriteDate    uint16 // last write date
	Size         uint32 // file size in bytes; 0 for directories
}

// DecodeShortEntry decodes the first 32 bytes of b (which must have them).
func DecodeShortEntry(b []byte) ShortEntry {
	le := binary.LittleEndian
	b = b[:DirEntrySize]
	var e ShortEntry
	copy(e.Name[:], b[0:11])
	if e.Name[0] == kanjiEscape {
		e.Name[0] = deletedMarker
	}
	e.Attr = Attr(b[11])
	e.NTRes = b[12]
	e.CreateCS = b[13]
	e.CreateTime = le.Uint16(b[14:])
	e.CreateDate = le.Uint16(b[16:])
	e.AccessDate = le.Uint16(b[18:])
	e.FirstCluster = uint32(le.Uint16(b[20:]))<<16 | uint32(le.Uint16(b[26:]))
	e.WriteTime = le.Uint16(b[22:])
	e.WriteDate = le.Uint16(b[24:])
	e.Size = le.Uint32(b[28:])
	return e
}

// Encode writes the entry into the first 32 bytes of b (which must have
// them), storing a leading 0xE5 of the name as 0x05.
func (e *ShortEntry) Encode(b []byte) {
	le := binary.LittleEndian
	b = b[:DirEntrySize]
	name := e.Name.onDisk()
	copy(b[0:11], name[:])
	b[11] = byte(e.Attr)
	b[12] = e.NTRes
	b[13] = e.CreateCS
	le.PutUint16(b[14:], e.CreateTime)
	le.PutUint16(b[16:], e.CreateDate)
	le.PutUint16(b[18:], e.AccessDate)
	le.PutUint16(b[20:], uint16(e.FirstCluster>>16))
	le.PutUint16(b[22:], e.WriteTime)
	le.PutUint16(b[24:], e.WriteDate)
	le.PutUint16(b[26:], uint16(e.FirstCluster))
	le.PutUint32(b[28:], e.Size)
}

// Case is the entry's NT case flags.
func (e *ShortEntry) Case() CaseFlags {
	return CaseFlags(e.NTRes) & (CaseLowerBase | CaseLowerExt)
}

// SetCase replaces the NT case flags, keeping NTRes's other bits.
func (e *ShortEntry) SetCase(c CaseFlags) {
	e.NTRes = e.NTRes&^uint8(CaseLowerBase|CaseLowerExt) | uint8(c&(CaseLowerBase|CaseLowerExt))
}

// IsDir reports the directory attribute.
func (e *ShortEntry) IsDir() bool { return e.Attr&AttrDirectory != 0 }

// IsVolumeLabel reports a volume label entry (attribute VolumeID without
// being a long-name entry); lookups skip it.
func (e *ShortEntry) IsVolumeLabel() bool {
	return e.Attr&AttrVolumeID != 0 && e.Attr&attrLongMask != AttrLongName
}

// StartCluster is the entry's first cluster for a volume of type t: on
// FAT12/16 the high word is not part of it (OS/2 kept an EA handle there).
func (e *ShortEntry) StartCluster(t FATType) uint32 {
	if t != FAT32 {
		return e.FirstCluster & 0xFFFF
	}
	return e.FirstCluster & fat32Mask
}

// Created is the creation time in zone loc (nil: time.Local); zero if unset.
func (e *ShortEntry) Created(loc *time.Location) time.Time {
	return DecodeTime(e.CreateDate, e.CreateTime, e.CreateCS, loc)
}

// Modified is the last write time in zone loc (nil: time.Local).
func (e *ShortEntry) Modified(loc *time.Location) time.Time {
	return DecodeTime(e.WriteDate, e.WriteTime, 0, loc)
}

// Accessed is the last access date (midnight) in zone loc (nil: time.Local).
func (e *ShortEntry) Accessed(loc *time.Location) time.Time {
	return DecodeTime(e.AccessDate, 0, 0, loc)
}

// SetCreated stores t as the creation time (10 ms resolution).
func (e *ShortEntry) SetCreated(t time.Time, loc *time.Location) {
	e.CreateDate, e.CreateTime, e.CreateCS = EncodeTime(t, loc)
}

// SetModified stores t as the last write time (2 s resolution, rounded
// down).
func (e *ShortEntry) SetModified(t time.Time, loc *time.Location) {
	e.WriteDate, e.WriteTime, _ = EncodeTime(t, loc)
}

// SetAccessed stores t's date as the last access date.
func (e *ShortEntry) SetAccessed(t time.Time, loc *time.Location) {
	e.AccessDate, _, _ = EncodeTime(t, loc)
}

// DotEntries returns the "." and ".." entries of a new directory whose first
// cluster is self and whose parent directory starts at parent; parent must
// be 0 when the parent is the root directory, on FAT32 too. Both take their
// timestamps from stamp (usually the new directory's own entry).
func DotEntries(self, parent uint32, stamp *ShortEntry) (dot, dotdot ShortEntry) {
	dot = ShortEntry{Name: DotName, Attr: AttrDirectory, FirstCluster: self}
	if stamp != nil {
		dot.CreateCS, dot.CreateTime, dot.CreateDate = stamp.CreateCS, stamp.CreateTime, stamp.CreateDate
		dot.AccessDate, dot.WriteTime, dot.WriteDate = stamp.AccessDate, stamp.WriteTime, stamp.WriteDate
	}
	dotdot = dot
	dotdot.Name = DotDotName
	dotdot.FirstCluster = parent
	return dot, dotdot
}

// LongNameSlots is the number of long-name entries name needs (13 UTF-16
// units each), 0 for "".
func LongNameSlots(name string) int {
	return (LongNameUnits(name) + lfnUnits - 1) / lfnUnits
}

// Offsets of the 13 UTF-16 units in a long-name entry: 5 at 1, 6 at 14, 2 at
// 28.
var lfnOffsets = [lfnUnits]uint8{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30}

// AppendEntries appends the slots of one directory entry, in on-disk order,
// to dst: the long-name entries of long (none when long is ""), highest
// sequence number first with the 0x40 flag, each holding 13 UTF-16 units
// (the name, a 0x0000 terminator when it does not fill the last entry, then
// 0xFFFF padding) and the checksum of e.Name; then the short entry e. long
// must be valid (ValidateLongName); an invalid one gives ErrInvalidName and
// dst unchanged.
func AppendEntries(dst []byte, long string, e *ShortEntry) ([]byte, error) {
	if long != "" {
		if err := ValidateLongName(long); err != nil {
			return dst, err
		}
	}
	units := utf16.Encode([]rune(long))
	n := (len(units) + lfnUnits - 1) / lfnUnits
	sum := e.Name.Checksum()
	for seq := n; seq >= 1; seq-- {
		var s [DirEntrySize]byte
		s[0] = byte(seq)
		if seq == n {
			s[0] |= lfnLastFlag
		}
		s[11] = byte(AttrLongName)
		s[13] = sum
		for i, off := range lfnOffsets {
			k := (seq-1)*lfnUnits + i
			u := uint16(0xFFFF)
			switch {
			case k < len(units):
				u = units[k]
			case k == len(units):
				u = 0
			}
			binary.LittleEndian.PutUint16(s[off:], u)
		}
		dst = append(dst, s[:]...)
	}
	var s [DirEntrySize]byte
	e.Encode(s[:])
	return append(dst, s[:]...), nil
}

// DirEntry is one live entry of a directory as a Scanner finds it: the
// short entry, its long name if a valid one precedes it, and where it is.
type DirEntry struct {
	ShortEntry
	// LongName is the assembled long name, or "" when there is none or the
	// long-name entries were invalid (wrong checksum, broken sequence): then
	// the short name stands, as on Windows. Unpaired UTF-16 surrogates come
	// back as U+FFFD. It is not checked against ValidateLongName: a corrupt
	// or foreign volume can hold names with '/' or '\'.
	LongName string
	// Slot is the index of the short entry in the directory (32-byte slots
	// from 0); FirstSlot that of its first long-name entry, or Slot when it
	// has none. Deleting the entry frees slots FirstSlot..Slot.
	Slot, FirstSlot int
}

// DisplayName is the entry's name: the long name if it has one, else the
// short name decoded with cp (nil: DefaultCodePage), NT case flags applied.
func (e *DirEntry) DisplayName(cp *CodePage) string {
	if e.LongName != "" {
		return e.LongName
	}
	return e.ShortDisplayName(cp)
}

// ShortDisplayName is the short name decoded with cp (nil:
// DefaultCodePage), NT case flags applied; an all-spaces short name gives
// BlankName.
func (e *DirEntry) ShortDisplayName(cp *CodePage) string {
	return DisplayShortName(e.Name, e.Case(), e.Slot, cp)
}

// BlankName is the name an entry whose short name is all spaces goes by
// (no tool writes one; damaged volumes hold them, and fsck.fat renames
// them): it has no name to show, and an empty one would read as its
// directory's own path. The slot number makes it unique in the directory,
// and parentheses, a comma and spaces, which no short name holds, mark it
// as made up; it is a valid long name, so the entry can be opened, copied,
// renamed or deleted by it.
func BlankName(slot int) string { return fmt.Sprintf("(blank name, slot %d)", slot) }

// DisplayShortName is short name n decoded with cp (nil: DefaultCodePage),
// case flags c applied, or BlankName(slot) when n is all spaces: the name
// an entry without a long name goes by.
func DisplayShortName(n ShortName, c CaseFlags, slot int, cp *CodePage) string {
	if s := n.Format(cp, c); s != "" {
		return s
	}
	return BlankName(slot)
}

// Scanner decodes a directory's slots block by block (a cluster, or the
// whole FAT12/16 root directory), assembling long names across block
// boundaries. Feed it the blocks in chain order through Entries; it stops
// for good at the 0x00 end marker, as Windows does. The work per slot is
// constant: no input makes it loop or allocate more than one long name per
// entry.
//
// The long-name rules (those of Windows): entries with attribute 0x0F and a
// first byte other than 0xE5 are long-name slots; a run must start with the
// 0x40 flag and a sequence number 1..20, continue with each number one less
// and the same checksum, and end (number 1) right before a short entry that
// is not a volume label and whose checksum matches. Anything else discards
// the run, and the short entry keeps only its short name; orphaned slots
// are neither entries nor free.
type Scanner struct {
	// Free, if set, is called for each run of free slots (first slot, count)
	// in the blocks given: deleted entries, the end marker and every slot
	// after it. Runs are reported per block, not merged across blocks.
	Free func(first, n int)

	slot  int  // index of the next slot
	ended bool // the end marker was seen

	units  [maxLFNSlots * lfnUnits]uint16
	expect int  // sequence number the next LFN slot must have; 0: no run
	sum    byte // checksum of the run
	start  int  // slot of the run's first entry
	length int  // name length in units, from the first (last-numbered) entry
	valid  bool // the run so far is consistent
}

// Ended reports whether the end marker has been seen.
func (s *Scanner) Ended() bool { return s.ended }

// Slots is the number of slots fed so far.
func (s *Scanner) Slots() int { return s.slot }

// Entries yields the live entries of block (a whole number of 32-byte
// slots; a trailing partial slot is ignored) including volume labels, "."
// and "..", which the caller tells apart with IsVolumeLabel and Name.IsDot.
// Breaking out of the loop early leaves the Scanner in the middle of the
// block: don't feed it more after that.
func (s *Scanner) Entries(block []byte) iter.Seq[DirEntry] {
	return func(yield func(DirEntry) bool) {
		n := len(block) / DirEntrySize
		freeStart, freeRun := 0, 0
		flush := func() {
			if freeRun > 0 && s.Free != nil {
				s.Free(freeStart, freeRun)
			}
			freeRun = 0
		}
		for i := 0; i < n; i++ {
			slot := s.slot
			s.slot++
			b := block[i*DirEntrySize : (i+1)*DirEntrySize]
			if s.ended || b[0] == endMarker || b[0] == deletedMarker {
				if b[0] == endMarker {
					s.ended = true
				}
				s.expect = 0
				if freeRun == 0 {
					freeStart = slot
				}
				freeRun++
				continue
			}
			flush()
			if Attr(b[11])&attrLongMask == AttrLongName {
				s.longSlot(b, slot)
				continue
			}
			e := DirEntry{ShortEntry: DecodeShortEntry(b), Slot: slot, FirstSlot: slot}
			if s.expect == 1 && s.valid && !e.IsVolumeLabel() && !e.Name.IsDot() &&
				s.sum == e.Name.Checksum() {
				e.LongName = string(utf16.Decode(s.units[:s.length]))
				e.FirstSlot = s.start
			}
			s.expect = 0
			if !yield(e) {
				return
			}
		}
		flush()
	}
}

// longSlot takes one long-name slot into the run being assembled.
func (s *Scanner) longSlot(b []byte, slot int) {
	seq := int(b[0] & lfnSeqMask)
	if b[0]&lfnLastFlag != 0 {
		// A new run starts here, whatever came before.
		s.expect, s.valid, s.sum, s.start, s.length = seq, true, b[13], slot, -1
		if seq == 0 || seq > maxLFNSlots || b[0]&^(lfnLastFlag|lfnSeqMask) != 0 {
			s.valid = false
		}
	} else if s.expect == 0 || !s.valid || seq == 0 || seq != s.expect-1 || b[13] != s.sum || b[0]&^lfnSeqMask != 0 {
		// Out of sequence: discard the run; wait for a new 0x40 slot.
		s.expect, s.valid = 0, false
		return
	} else {
		s.expect = seq
	}
	if !s.valid {
		return
	}
	base := (seq - 1) * lfnUnits
	for i, off := range lfnOffsets {
		u := binary.LittleEndian.Uint16(b[off:])
		if s.length < 0 {
			// First slot of the run holds the end of the name.
			if u == 0 {
				s.length = base + i
				break
			}
			s.units[base+i] = u
			continue
		}
		if u == 0 {
			// A terminator before the last-numbered slot: broken.
			s.valid = false
			return
		}
		s.units[base+i] = u
	}
	if s.length < 0 {
		s.length = base + lfnUnits
	}
	if s.length == 0 || s.length > MaxLongNameLen {
		s.valid = false
	}
}

// DecodeDir yields the live entries of a directory held in one buffer (the
// FAT12/16 root directory, or a directory's clusters read in chain order
// and concatenated), with a fresh Scanner each time it is ranged over.
func DecodeDir(b []byte) iter.Seq[DirEntry] {
	return func(yield func(DirEntry) bool) {
		var s Scanner
		for e := range s.Entries(b) {
			if !yield(e) {
				return
			}
		}
	}
}
