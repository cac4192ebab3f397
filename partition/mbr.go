package partition

import (
	"encoding/binary"
	"fmt"
	"io"
)

// MBR sector layout.
const (
	mbrDiskIDOff = 440
	mbrTableOff  = 446
	mbrSigOff    = 510
)

type mbrEntry struct {
	boot, typ   byte
	start, size uint32 // sectors
}

func (e mbrEntry) empty() bool { return e.typ == 0 || e.size == 0 }

func mbrEntries(sec []byte) [4]mbrEntry {
	var es [4]mbrEntry
	for i := range es {
		b := sec[mbrTableOff+16*i:]
		es[i] = mbrEntry{boot: b[0], typ: b[4],
			start: binary.LittleEndian.Uint32(b[8:]), size: binary.LittleEndian.Uint32(b[12:])}
	}
	return es
}

// putMBREntry fills slot i with CHS fields from the 255-head, 63-sector
// geometry every tool assumes for LBA disks, capped at 1023/254/63 (FE FF FF)
// where CHS cannot reach, as sfdisk writes them.
// The LBA field holds rel (relative to the EBR or extended partition in an
// EBR); the CHS fields are always absolute (abs).
func putMBREntry(sec []byte, i int, boot, typ byte, rel, abs, size int64) {
	b := sec[mbrTableOff+16*i : mbrTableOff+16*i+16]
	b[0], b[4] = boot, typ
	c := chs(abs)
	copy(b[1:4], c[:])
	c = chs(abs + size - 1)
	copy(b[5:8], c[:])
	binary.LittleEndian.PutUint32(b[8:], uint32(rel))
	binary.LittleEndian.PutUint32(b[12:], uint32(size))
}

func chs(lba int64) [3]byte {
	const heads, sectors = 255, 63
	c := lba / (heads * sectors)
	if c > 1023 {
		return [3]byte{0xfe, 0xff, 0xff}
	}
	h := lba / sectors % heads
	s := lba%sectors + 1
	return [3]byte{byte(h), byte(s) | byte(c>>8)<<6, byte(c)}
}

func hasSig(sec []byte) bool { return sec[mbrSigOff] == 0x55 && sec[mbrSigOff+1] == 0xaa }

type mbrState int

const (
	mbrAbsent     mbrState = iota // no table here (maybe a file system's boot sector)
	mbrPlain                      // a DOS partition table
	mbrProtective                 // a GPT's protective (or hybrid) MBR
)

// classifyMBR decides what sector 0 is. Like Linux, it refuses a table with
// boot indicators other than 0 and 0x80, and it takes a sector that carries
// a boot-sector jump and BPB but no partitions for a superfloppy's boot
// sector rather than an empty table. So is a boot sector whose only
// partition starts at sector 0: the volume itself, which mkfs.fat --mbr
// describes that way for firmware that wants a partition table (mtools and
// fsck.fat read such a disk as the volume it is).
func classifyMBR(sec []byte) (mbrState, []Warning) {
	if !hasSig(sec) {
		return mbrAbsent, nil
	}
	es := mbrEntries(sec)
	used, gpt, atZero := 0, false, false
	for _, e := range es {
		if e.boot != 0 && e.boot != 0x80 {
			return mbrAbsent, nil
		}
		if e.typ == mbrGPT {
			gpt = true
		} else if !e.empty() {
			used++
			atZero = atZero || e.start == 0 && !isExtended(e.typ)
		}
	}
	if gpt {
		return mbrProtective, nil
	}
	if (used == 0 || used == 1 && atZero) && looksLikeBootSector(sec) {
		return mbrAbsent, nil
	}
	return mbrPlain, nil
}

func looksLikeBootSector(b []byte) bool {
	if !(b[0] == 0xeb && b[2] == 0x90 || b[0] == 0xe9) {
		return false
	}
	if string(b[3:11]) == "EXFAT   " {
		return true
	}
	bps := binary.LittleEndian.Uint16(b[11:])
	spc := b[13]
	return validSectorSize(int(bps)) && spc != 0 && spc&(spc-1) == 0
}

func readMBR(r io.ReaderAt, diskSize int64, sectorSize int, sec []byte) (*Table, []Warning, error) {
	ss := int64(sectorSize)
	t := &Table{Kind: MBR, SectorSize: sectorSize, DiskSize: diskSize,
		DiskID: binary.LittleEndian.Uint32(sec[mbrDiskIDOff:])}
	for i, e := range mbrEntries(sec) {
		if e.empty() {
			continue
		}
		p := Partition{Number: i + 1, Start: int64(e.start) * ss, Size: int64(e.size) * ss,
			Type: Type{MBR: e.typ}, Bootable: e.boot == 0x80}
		if !isExtended(e.typ) {
			t.Partitions = append(t.Partitions, p)
			continue
		}
		if t.Extended != nil {
			return nil, nil, fmt.Errorf("%w: MBR slots %d and %d are both extended partitions", ErrCorrupt, t.Extended.Number, p.Number)
		}
		t.Extended = &p
	}
	var warns []Warning
	if t.Extended != nil {
		var err error
		if warns, err = t.readEBRs(r); err != nil {
			return nil, nil, err
		}
	}
	for i := range t.Partitions {
		t.Partitions[i].Index = i + 1
	}
	if err := t.validate(); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return t, warns, nil
}

// readEBRs follows the EBR chain of t.Extended. Each EBR's first entry is a
// logical partition relative to the EBR; its second links to the next EBR
// relative to the extended partition's start.
func (t *Table) readEBRs(r io.ReaderAt) ([]Warning, error) {
	ss := int64(t.SectorSize)
	ext := t.Extended
	if ext.End() > t.DiskSize {
		return nil, fmt.Errorf("%w: extended partition (bytes %d-%d) extends beyond the %d-byte disk", ErrCorrupt, ext.Start, ext.End(), t.DiskSize)
	}
	var warns []Warning
	seen := map[int64]bool{}
	sec := make([]byte, 512)
	for cur, n := ext.Start, 5; ; {
		if len(seen) == maxEBRs {
			return nil, fmt.Errorf("%w: EBR chain longer than %d", ErrCorrupt, maxEBRs)
		}
		if cur < ext.Start || cur+ss > ext.End() {
			return nil, fmt.Errorf("%w: EBR at byte %d lies outside the extended partition", ErrCorrupt, cur)
		}
		if seen[cur] {
			return nil, fmt.Errorf("%w: EBR chain loops back to byte %d", ErrCorrupt, cur)
		}
		seen[cur] = true
		if _, err := r.ReadAt(sec, cur); err != nil {
			return nil, fmt.Errorf("partition: reading EBR at byte %d: %w", cur, err)
		}
		if !hasSig(sec) {
			if cur != ext.Start || !allZero(sec) {
				warns = append(warns, Warning(fmt.Sprintf("EBR at byte %d has no signature; logical partitions end there", cur)))
			}
			return warns, nil
		}
		es := mbrEntries(sec)
		if d := es[0]; !d.empty() {
			if isExtended(d.typ) {
				return nil, fmt.Errorf("%w: EBR at byte %d describes a nested extended partition", ErrCorrupt, cur)
			}
			t.Partitions = append(t.Partitions, Partition{Number: n, Start: cur + int64(d.start)*ss,
				Size: int64(d.size) * ss, Type: Type{MBR: d.typ}, Bootable: d.boot == 0x80, Logical: true, EBR: cur})
			n++
		}
		l := es[1]
		if l.empty() {
			return warns, nil
		}
		if !isExtended(l.typ) {
			warns = append(warns, Warning(fmt.Sprintf("EBR at byte %d: second entry (type %x) is not a link; ignored", cur, l.typ)))
			return warns, nil
		}
		cur = ext.Start + int64(l.start)*ss
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// ebrs returns where Write puts each logical partition's EBR: its EBR field,
// or by default the extended start for the first and the sector before the
// partition for the others.
func (t *Table) ebrs() []int64 {
	var out []int64
	for i := range t.Partitions {
		p := &t.Partitions[i]
		if !p.Logical {
			continue
		}
		switch {
		case p.EBR != 0:
			out = append(out, p.EBR)
		case len(out) == 0 && t.Extended != nil:
			out = append(out, t.Extended.Start)
		default:
			out = append(out, p.Start-int64(t.SectorSize))
		}
	}
	return out
}

func (t *Table) validateMBR() error {
	ss := int64(t.SectorSize)
	end := t.DiskSize / ss * ss
	check := func(what string, p *Partition) error {
		switch {
		case p.Start%ss != 0 || p.Size%ss != 0:
			return fmt.Errorf("%s: start %d and size %d must be multiples of the %d-byte sector", what, p.Start, p.Size, ss)
		case p.Size <= 0:
			return fmt.Errorf("%s: size %d", what, p.Size)
		case p.Start < ss:
			return fmt.Errorf("%s: starts in the MBR sector", what)
		case p.Start/ss > max32 || p.Size/ss > max32:
			return fmt.Errorf("%s: beyond the 32-bit sector numbers of an MBR", what)
		case p.End() > end:
			return fmt.Errorf("%s: ends at byte %d, beyond the %d-byte disk", what, p.End(), t.DiskSize)
		case p.Name != "" || !p.GUID.IsZero() || p.Attributes != 0 || !p.Type.GPT.IsZero() || p.MBRType != 0:
			return fmt.Errorf("%s: names, GUIDs, attributes and hybrid MBR types need a GPT", what)
		}
		return nil
	}
	if !t.DiskGUID.IsZero() || t.EntryCount != 0 || t.EntrySize != 0 || t.FirstUsableLBA != 0 || t.LastUsableLBA != 0 {
		return fmt.Errorf("GPT header fields set on an MBR table")
	}
	var used [5]bool
	var prim []extent
	if e := t.Extended; e != nil {
		if !isExtended(e.Type.MBR) {
			return fmt.Errorf("extended partition has type %x, not 5, f or 85", e.Type.MBR)
		}
		if e.Number < 1 || e.Number > 4 {
			return fmt.Errorf("extended partition in MBR slot %d", e.Number)
		}
		if e.Logical || e.EBR != 0 {
			return fmt.Errorf("extended partition marked logical")
		}
		if err := check("extended partition", e); err != nil {
			return err
		}
		used[e.Number] = true
		prim = append(prim, extent{e.Start, e.End(), "extended partition"})
	}
	var inExt []extent
	last, nextLogical := 0, 5
	for i := range t.Partitions {
		p := &t.Partitions[i]
		what := fmt.Sprintf("partition %d", p.Number)
		if err := check(what, p); err != nil {
			return err
		}
		// Type EE is allowed: it is how a hybrid MBR is written by hand
		// (genimage's tests do). Read takes such a sector for a GPT's
		// protective MBR, so this is the one table Read does not give back.
		if p.Type.MBR == 0 || isExtended(p.Type.MBR) {
			return fmt.Errorf("%s: type %x cannot hold data", what, p.Type.MBR)
		}
		if !p.Logical {
			if nextLogical != 5 {
				return fmt.Errorf("%s: primary partitions must precede logical ones", what)
			}
			if p.Number < 1 || p.Number > 4 || used[p.Number] || p.Number < last {
				return fmt.Errorf("%s: primaries need distinct MBR slots 1-4, in slot order", what)
			}
			if p.EBR != 0 {
				return fmt.Errorf("%s: a primary partition has no EBR", what)
			}
			used[p.Number], last = true, p.Number
			prim = append(prim, extent{p.Start, p.End(), what})
			continue
		}
		if t.Extended == nil {
			return fmt.Errorf("%s: logical partition without an extended partition", what)
		}
		if p.Number != nextLogical {
			return fmt.Errorf("%s: logical partitions are numbered 5, 6, ... in chain order (want %d)", what, nextLogical)
		}
		nextLogical++
		inExt = append(inExt, extent{p.Start, p.End(), what})
	}
	if err := checkOverlap(prim); err != nil {
		return err
	}
	if t.Extended == nil {
		return nil
	}
	e := t.Extended
	if n := nextLogical - 5; n > maxEBRs-1 {
		return fmt.Errorf("%d logical partitions; at most %d", n, maxEBRs-1)
	}
	ebrs := t.ebrs()
	if len(ebrs) == 0 || ebrs[0] != e.Start {
		// Write puts an empty EBR at the head of the chain.
		inExt = append(inExt, extent{e.Start, e.Start + ss, "the first EBR"})
	}
	j := 0
	for i := range t.Partitions {
		p := &t.Partitions[i]
		if !p.Logical {
			continue
		}
		ebr := ebrs[j]
		j++
		if ebr%ss != 0 || ebr >= p.Start {
			return fmt.Errorf("partition %d: EBR at byte %d must be a sector before the partition (byte %d)", p.Number, ebr, p.Start)
		}
		inExt = append(inExt, extent{ebr, ebr + ss, fmt.Sprintf("the EBR of partition %d", p.Number)})
	}
	for _, x := range inExt {
		if x.start < e.Start || x.end > e.End() {
			return fmt.Errorf("%s lies outside the extended partition", x.what)
		}
	}
	return checkOverlap(inExt)
}

func (t *Table) writeMBR(w io.WriterAt) error {
	ss := int64(t.SectorSize)
	sec := make([]byte, ss)
	copy(sec, t.BootCode)
	binary.LittleEndian.PutUint32(sec[mbrDiskIDOff:], t.DiskID)
	put := func(sec []byte, slot int, p *Partition, base int64) {
		var boot byte
		if p.Bootable {
			boot = 0x80
		}
		putMBREntry(sec, slot, boot, p.Type.MBR, (p.Start-base)/ss, p.Start/ss, p.Size/ss)
	}
	var logicals []*Partition
	for i := range t.Partitions {
		if p := &t.Partitions[i]; p.Logical {
			logicals = append(logicals, p)
		} else {
			put(sec, p.Number-1, p, 0)
		}
	}
	if t.Extended != nil {
		put(sec, t.Extended.Number-1, t.Extended, 0)
	}
	sec[mbrSigOff], sec[mbrSigOff+1] = 0x55, 0xaa
	if _, err := w.WriteAt(sec, 0); err != nil {
		return fmt.Errorf("partition: writing MBR: %w", err)
	}
	if e := t.Extended; e != nil {
		ebrs := t.ebrs()
		link := func(sec []byte, i int) {
			if i < len(logicals) {
				// A link has the extended partition's own type: 05 as
				// sfdisk writes, or 0F as genimage writes.
				next := &Partition{Start: ebrs[i], Size: logicals[i].End() - ebrs[i], Type: Type{MBR: e.Type.MBR}}
				put(sec, 1, next, e.Start)
			}
		}
		writeEBR := func(off int64, fill func(sec []byte)) error {
			clear(sec)
			fill(sec)
			sec[mbrSigOff], sec[mbrSigOff+1] = 0x55, 0xaa
			if _, err := w.WriteAt(sec, off); err != nil {
				return fmt.Errorf("partition: writing EBR at byte %d: %w", off, err)
			}
			return nil
		}
		if len(ebrs) == 0 || ebrs[0] != e.Start {
			if err := writeEBR(e.Start, func(sec []byte) { link(sec, 0) }); err != nil {
				return err
			}
		}
		for i, p := range logicals {
			err := writeEBR(ebrs[i], func(sec []byte) {
				put(sec, 0, p, ebrs[i])
				link(sec, i+1)
			})
			if err != nil {
				return err
			}
		}
	}
	return t.wipeStaleGPT(w)
}

// wipeStaleGPT erases GPT headers an earlier table left where an MBR disk
// has free space, so blkid and friends do not see two tables. It needs to
// read, and only zeroes sectors that carry the GPT signature.
func (t *Table) wipeStaleGPT(w io.WriterAt) error {
	r, ok := w.(io.ReaderAt)
	if !ok {
		return nil
	}
	var used []extent
	for i := range t.Partitions {
		used = append(used, extent{t.Partitions[i].Start, t.Partitions[i].End(), ""})
	}
	if t.Extended != nil {
		used = append(used, extent{t.Extended.Start, t.Extended.End(), ""})
	}
	sig := make([]byte, 8)
	for _, off := range []int64{512, 4096, t.DiskSize/512*512 - 512, t.DiskSize/4096*4096 - 4096} {
		if off < int64(t.SectorSize) || off+512 > t.DiskSize {
			continue
		}
		free := true
		for _, x := range used {
			if off+512 > x.start && off < x.end {
				free = false
			}
		}
		if !free {
			continue
		}
		if _, err := r.ReadAt(sig, off); err != nil || string(sig) != gptSignature {
			continue
		}
		if _, err := w.WriteAt(make([]byte, 512), off); err != nil {
			return fmt.Errorf("partition: erasing old GPT header at byte %d: %w", off, err)
		}
	}
	return nil
}
