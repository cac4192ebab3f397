package partition

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"reflect"
	"unicode/utf16"
)

const (
	gptSignature  = "EFI PART"
	gptRevision   = 0x00010000
	gptHeaderSize = 92
	gptNameUnits  = 36
)

var le = binary.LittleEndian

// arraySectors is the size in sectors of an entry array.
func arraySectors(count, size int, ss int64) int64 {
	return (int64(count)*int64(size) + ss - 1) / ss
}

// readGPT reads the GPT of a disk with the given sector size. seen reports
// whether either header carried the GPT signature, which tells a damaged GPT
// from none. A damaged primary or backup is a warning as long as the other
// is intact.
func readGPT(r io.ReaderAt, diskSize int64, sectorSize int) (t *Table, warns []Warning, seen bool, err error) {
	ss := int64(sectorSize)
	lastLBA := diskSize/ss - 1
	if lastLBA < 2 {
		return nil, nil, false, nil
	}
	pt, alt, pseen, perr := readGPTHeader(r, diskSize, sectorSize, 1)
	if perr != nil && !errors.Is(perr, ErrCorrupt) {
		return nil, nil, false, perr
	}
	backup := lastLBA
	if perr == nil && alt != uint64(lastLBA) {
		if alt > uint64(pt.LastUsableLBA) && alt < uint64(lastLBA) {
			backup = int64(alt)
			warns = append(warns, Warning(fmt.Sprintf("backup GPT header at LBA %d, not at the disk's last LBA %d (was the disk grown?)", alt, lastLBA)))
		} else {
			warns = append(warns, Warning(fmt.Sprintf("primary GPT header puts its backup at LBA %d, not at the disk's last LBA %d", alt, lastLBA)))
		}
	}
	bt, _, bseen, berr := readGPTHeader(r, diskSize, sectorSize, backup)
	if berr != nil && !errors.Is(berr, ErrCorrupt) {
		return nil, nil, false, berr
	}
	seen = pseen || bseen
	switch {
	case perr == nil:
		same := *pt
		same.EntryLBA = 0 // the backup's array is elsewhere by design
		if berr != nil {
			warns = append(warns, Warning(fmt.Sprintf("backup GPT is damaged (%v); using the primary", berr)))
		} else if !reflect.DeepEqual(&same, bt) {
			warns = append(warns, "primary and backup GPT differ; using the primary")
		}
		return pt, warns, seen, nil
	case berr == nil:
		warns = append(warns, Warning(fmt.Sprintf("primary GPT is damaged (%v); using the backup", perr)))
		return bt, warns, seen, nil
	}
	return nil, nil, seen, fmt.Errorf("%w: GPT with %d-byte sectors: primary: %v; backup: %v",
		ErrCorrupt, sectorSize, perr, berr)
}

// corruptErr carries ErrCorrupt without repeating its text, so messages
// nest readably.
type corruptErr struct{ msg string }

func (e *corruptErr) Error() string { return e.msg }
func (e *corruptErr) Unwrap() error { return ErrCorrupt }

func corruptf(format string, args ...any) error {
	return &corruptErr{fmt.Sprintf(format, args...)}
}

// readGPTHeader reads and checks the header at lba, and its entry array.
// Bounds are checked in uint64 before anything is converted or allocated.
func readGPTHeader(r io.ReaderAt, diskSize int64, sectorSize int, lba int64) (t *Table, alt uint64, seen bool, err error) {
	ss := int64(sectorSize)
	lastLBA := uint64(diskSize/ss - 1)
	primary := lba == 1
	sec := make([]byte, ss)
	if _, err := r.ReadAt(sec, lba*ss); err != nil {
		return nil, 0, false, fmt.Errorf("partition: reading GPT header at LBA %d: %w", lba, err)
	}
	if string(sec[:8]) != gptSignature {
		return nil, 0, false, corruptf("no GPT signature at LBA %d", lba)
	}
	hsize := le.Uint32(sec[12:])
	if hsize < gptHeaderSize || int64(hsize) > ss {
		return nil, 0, true, corruptf("header size %d", hsize)
	}
	want := le.Uint32(sec[16:])
	le.PutUint32(sec[16:], 0)
	if got := crc32.ChecksumIEEE(sec[:hsize]); got != want {
		return nil, 0, true, corruptf("header CRC %08x, want %08x", want, got)
	}
	my, alt := le.Uint64(sec[24:]), le.Uint64(sec[32:])
	first, last := le.Uint64(sec[40:]), le.Uint64(sec[48:])
	entLBA, count, esize := le.Uint64(sec[72:]), le.Uint32(sec[80:]), le.Uint32(sec[84:])
	switch {
	case my != uint64(lba):
		return nil, 0, true, corruptf("header at LBA %d says it is at LBA %d", lba, my)
	case first > last || last >= lastLBA:
		return nil, 0, true, corruptf("usable LBAs %d-%d do not fit a disk of %d sectors", first, last, lastLBA+1)
	case esize < 128 || esize%8 != 0 || esize > maxEntryArray:
		return nil, 0, true, corruptf("entry size %d (want a multiple of 8, at least 128)", esize)
	case count > maxEntries || uint64(count)*uint64(esize) > maxEntryArray:
		return nil, 0, true, corruptf("%d entries of %d bytes: more than this package accepts", count, esize)
	}
	arrBytes := int64(count) * int64(esize)
	arr := uint64(arraySectors(int(count), int(esize), ss))
	if primary && (entLBA < 2 || entLBA > lastLBA || entLBA+arr > first) ||
		!primary && (entLBA <= last || entLBA > lastLBA || entLBA+arr > my) {
		return nil, 0, true, corruptf("entry array at LBA %d (%d sectors) overlaps the header or usable space", entLBA, arr)
	}
	ents := make([]byte, arrBytes)
	if _, err := r.ReadAt(ents, int64(entLBA)*ss); err != nil {
		return nil, 0, true, fmt.Errorf("partition: reading GPT entries at LBA %d: %w", entLBA, err)
	}
	if got, want := crc32.ChecksumIEEE(ents), le.Uint32(sec[88:]); got != want {
		return nil, 0, true, corruptf("entry array CRC %08x, want %08x", want, got)
	}
	t = &Table{Kind: GPT, SectorSize: sectorSize, DiskSize: diskSize, DiskGUID: getGUID(sec[56:]),
		FirstUsableLBA: int64(first), LastUsableLBA: int64(last), EntryCount: int(count), EntrySize: int(esize)}
	if primary && entLBA != 2 {
		t.EntryLBA = int64(entLBA)
	}
	for i := range int(count) {
		e := ents[i*int(esize):]
		typ := getGUID(e)
		if typ.IsZero() {
			continue
		}
		s, l := le.Uint64(e[32:]), le.Uint64(e[40:])
		if s < first || l > last || s > l {
			return nil, 0, true, corruptf("entry %d: LBAs %d-%d outside usable LBAs %d-%d", i+1, s, l, first, last)
		}
		t.Partitions = append(t.Partitions, Partition{Index: len(t.Partitions) + 1, Number: i + 1,
			Start: int64(s) * ss, Size: int64(l-s+1) * ss, Type: Type{GPT: typ}, GUID: getGUID(e[16:]),
			Attributes: le.Uint64(e[48:]), Name: getName(e[56:128])})
	}
	if err := t.validate(); err != nil {
		return nil, 0, true, corruptf("%v", err)
	}
	return t, alt, true, nil
}

func getName(b []byte) string {
	u := make([]uint16, 0, gptNameUnits)
	for i := 0; i < gptNameUnits; i++ {
		c := le.Uint16(b[2*i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

func (t *Table) validateGPT() error {
	ss := int64(t.SectorSize)
	lastLBA := t.DiskSize/ss - 1
	if t.Extended != nil {
		return errors.New("extended partition set on a GPT table")
	}
	if t.EntrySize < 128 || t.EntrySize%8 != 0 {
		return fmt.Errorf("entry size %d (want a multiple of 8, at least 128)", t.EntrySize)
	}
	if t.EntryCount < 0 || t.EntryCount > maxEntries || int64(t.EntryCount)*int64(t.EntrySize) > maxEntryArray {
		return fmt.Errorf("%d entries of %d bytes: more than this package accepts", t.EntryCount, t.EntrySize)
	}
	arr := arraySectors(t.EntryCount, t.EntrySize, ss)
	entLBA := t.entryLBA()
	switch {
	case entLBA < 2:
		return fmt.Errorf("entry array at LBA %d overlaps the protective MBR or the header", entLBA)
	case t.FirstUsableLBA < entLBA+arr:
		return fmt.Errorf("first usable LBA %d overlaps the primary entry array (LBAs %d-%d)", t.FirstUsableLBA, entLBA, entLBA+arr-1)
	case t.LastUsableLBA < t.FirstUsableLBA:
		return fmt.Errorf("last usable LBA %d is before the first, %d", t.LastUsableLBA, t.FirstUsableLBA)
	case t.LastUsableLBA > lastLBA-1-arr:
		return fmt.Errorf("last usable LBA %d overlaps the backup entry array of a disk of %d sectors", t.LastUsableLBA, lastLBA+1)
	}
	lo, hi := t.FirstUsableLBA*ss, (t.LastUsableLBA+1)*ss
	xs := make([]extent, 0, len(t.Partitions))
	last, hybrid := 0, 0
	for i := range t.Partitions {
		p := &t.Partitions[i]
		what := fmt.Sprintf("partition %d", p.Number)
		switch {
		case p.Number <= last || p.Number > t.EntryCount:
			return fmt.Errorf("%s: numbers must rise and lie within the %d entries", what, t.EntryCount)
		case p.Type.GPT.IsZero() || p.Type.MBR != 0:
			return fmt.Errorf("%s: a GPT partition needs a type GUID (and no MBR type)", what)
		case p.Start%ss != 0 || p.Size%ss != 0:
			return fmt.Errorf("%s: start %d and size %d must be multiples of the %d-byte sector", what, p.Start, p.Size, ss)
		case p.Size <= 0:
			return fmt.Errorf("%s: size %d", what, p.Size)
		case p.Start < lo || p.End() > hi:
			return fmt.Errorf("%s: bytes %d-%d lie outside the usable bytes %d-%d", what, p.Start, p.End(), lo, hi)
		case p.Logical || p.Bootable || p.EBR != 0:
			return fmt.Errorf("%s: logical partitions and the active flag need an MBR (use attribute bit 2)", what)
		}
		if err := checkName(p.Name); err != nil {
			return fmt.Errorf("%s: %v", what, err)
		}
		if p.MBRType != 0 {
			switch {
			case !t.HybridMBR:
				return fmt.Errorf("%s: an MBR type needs a hybrid MBR", what)
			case p.MBRType == mbrGPT || isExtended(p.MBRType):
				return fmt.Errorf("%s: type %x cannot be a hybrid MBR entry", what, p.MBRType)
			case p.Start/ss > max32 || p.Size/ss > max32:
				return fmt.Errorf("%s: beyond the 32-bit sector numbers of an MBR", what)
			}
			hybrid++
		}
		last = p.Number
		xs = append(xs, extent{p.Start, p.End(), what})
	}
	if hybrid > 3 {
		return fmt.Errorf("%d partitions in the hybrid MBR: it has room for 3 beside the GPT entry", hybrid)
	}
	if t.HybridMBR && hybrid == 0 {
		return errors.New("a hybrid MBR without partitions in it")
	}
	return checkOverlap(xs)
}

// entryLBA is where the primary entry array starts.
func (t *Table) entryLBA() int64 {
	if t.EntryLBA == 0 {
		return 2
	}
	return t.EntryLBA
}

// protectiveMBR is sector 0 of a GPT disk. A plain protective MBR has one
// entry, covering the whole disk after LBA 0 (or as much as 32 bits reach),
// whose ending CHS is FF FF FF when CHS cannot express it, as the UEFI
// specification asks. A hybrid MBR has the partitions with an MBRType in
// table order, then the GPT entry covering the header and the primary entry
// array, as genimage writes it.
func (t *Table) protectiveMBR() []byte {
	ss := int64(t.SectorSize)
	sec := make([]byte, ss)
	copy(sec, t.BootCode)
	le.PutUint32(sec[mbrDiskIDOff:], t.DiskID)
	if t.HybridMBR {
		slot := 0
		for i := range t.Partitions {
			p := &t.Partitions[i]
			if p.MBRType == 0 {
				continue
			}
			var boot byte
			if p.Attributes&AttrLegacyBIOSBootable != 0 {
				boot = 0x80
			}
			putMBREntry(sec, slot, boot, p.MBRType, p.Start/ss, p.Start/ss, p.Size/ss)
			slot++
		}
		end := t.entryLBA() + arraySectors(t.EntryCount, t.EntrySize, ss)
		putMBREntry(sec, slot, 0, mbrGPT, 1, 1, end-1)
	} else {
		size := min(t.DiskSize/ss-1, max32)
		putMBREntry(sec, 0, 0, mbrGPT, 1, 1, size)
		if c := chs(size); c == [3]byte{0xfe, 0xff, 0xff} {
			copy(sec[mbrTableOff+5:], []byte{0xff, 0xff, 0xff})
		}
	}
	sec[mbrSigOff], sec[mbrSigOff+1] = 0x55, 0xaa
	return sec
}

// readHybrid reads what a GPT disk's sector 0 adds to the table: its disk
// signature and, in a hybrid MBR, which GPT partitions it lists.
func (t *Table) readHybrid(sec []byte) []Warning {
	t.DiskID = le.Uint32(sec[mbrDiskIDOff:])
	var warns []Warning
	ss := int64(t.SectorSize)
	for i, e := range mbrEntries(sec) {
		if e.empty() || e.typ == mbrGPT {
			continue
		}
		found := false
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if p.MBRType == 0 && p.Start == int64(e.start)*ss && p.Size == int64(e.size)*ss && !isExtended(e.typ) {
				p.MBRType, t.HybridMBR, found = e.typ, true, true
				break
			}
		}
		if !found {
			warns = append(warns, Warning(fmt.Sprintf("hybrid MBR entry %d (type %x) matches no GPT partition; ignored", i+1, e.typ)))
		}
	}
	return warns
}

func (t *Table) writeGPT(w io.WriterAt) error {
	ss := int64(t.SectorSize)
	lastLBA := t.DiskSize/ss - 1
	arr := arraySectors(t.EntryCount, t.EntrySize, ss)
	ents := make([]byte, arr*ss)
	for i := range t.Partitions {
		p := &t.Partitions[i]
		e := ents[(p.Number-1)*t.EntrySize:]
		putGUID(e, p.Type.GPT)
		putGUID(e[16:], p.GUID)
		le.PutUint64(e[32:], uint64(p.Start/ss))
		le.PutUint64(e[40:], uint64(p.End()/ss-1))
		le.PutUint64(e[48:], p.Attributes)
		for j, c := range utf16.Encode([]rune(p.Name)) {
			le.PutUint16(e[56+2*j:], c)
		}
	}
	entCRC := crc32.ChecksumIEEE(ents[:t.EntryCount*t.EntrySize])
	header := func(my, alt, entLBA int64) []byte {
		h := make([]byte, ss)
		copy(h, gptSignature)
		le.PutUint32(h[8:], gptRevision)
		le.PutUint32(h[12:], gptHeaderSize)
		le.PutUint64(h[24:], uint64(my))
		le.PutUint64(h[32:], uint64(alt))
		le.PutUint64(h[40:], uint64(t.FirstUsableLBA))
		le.PutUint64(h[48:], uint64(t.LastUsableLBA))
		putGUID(h[56:], t.DiskGUID)
		le.PutUint64(h[72:], uint64(entLBA))
		le.PutUint32(h[80:], uint32(t.EntryCount))
		le.PutUint32(h[84:], uint32(t.EntrySize))
		le.PutUint32(h[88:], entCRC)
		le.PutUint32(h[16:], crc32.ChecksumIEEE(h[:gptHeaderSize]))
		return h
	}
	entLBA, backup := t.entryLBA(), lastLBA
	if t.NoBackup {
		backup = 1
	}
	writes := []struct {
		off  int64
		b    []byte
		what string
	}{
		{0, t.protectiveMBR(), "protective MBR"},
		{ss, header(1, backup, entLBA), "primary GPT header"},
		{entLBA * ss, ents, "primary GPT entries"},
		{(lastLBA - arr) * ss, ents, "backup GPT entries"},
		{lastLBA * ss, header(lastLBA, 1, lastLBA-arr), "backup GPT header"},
	}
	if t.NoBackup {
		writes = writes[:3]
	}
	for _, x := range writes {
		if _, err := w.WriteAt(x.b, x.off); err != nil {
			return fmt.Errorf("partition: writing %s: %w", x.what, err)
		}
	}
	return nil
}
