package partition

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sort"
	"unicode/utf16"
	"unicode/utf8"
)

// Sentinel errors, so callers can tell a bad image from a bad request.
var (
	// ErrCorrupt wraps every complaint about a table read from disk.
	ErrCorrupt = errors.New("partition: corrupt partition table")
	// ErrInvalid wraps complaints about a Table or Spec handed to this
	// package: it would not be written, or would not read back the same.
	ErrInvalid = errors.New("partition: invalid partition table")
	// ErrNoSpace means the requested partitions do not fit on the disk.
	ErrNoSpace = errors.New("partition: not enough space")
)

// Warning reports damage that Read worked around (a bad primary GPT, a
// broken EBR chain); the table returned is still usable, but the user
// should hear about it and a Write would repair it.
type Warning string

// Limits that keep hostile tables from costing time or memory.
const (
	maxEntries    = 16384   // GPT entries a header may declare
	maxEntryArray = 2 << 20 // bytes in one GPT entry array
	maxEBRs       = 256     // EBRs followed in one chain
	max32         = 1<<32 - 1
)

// Table is the neutral model of a partition table. Fields that only one Kind
// can store are rejected by Validate when set for the other, so nothing is
// dropped silently on Write.
type Table struct {
	Kind       Kind
	SectorSize int   // logical sector size in bytes: 512, 1024, 2048 or 4096
	DiskSize   int64 // bytes; a GPT's backup lives in its last whole sector

	// DiskID is the MBR disk signature (what Linux shows as the PARTUUID
	// prefix); on a GPT disk, the signature in its protective or hybrid
	// MBR, usually 0.
	DiskID   uint32
	DiskGUID GUID // GPT disk GUID

	// BootCode is written at the start of sector 0 (at most 440 bytes,
	// the rest up to the disk signature stays zero) by Write on an MBR or
	// GPT disk: a boot loader's first bytes, which the table must not
	// overwrite. Read leaves it nil.
	BootCode []byte

	// Extended is the MBR extended partition that holds the logical
	// partitions; it is not a volume, so it is kept out of Partitions.
	Extended *Partition

	// GPT header geometry, kept so a table read from disk is written back
	// with the same layout; New uses the usual 128 entries of 128 bytes.
	FirstUsableLBA int64
	LastUsableLBA  int64
	EntryCount     int
	EntrySize      int
	// EntryLBA is where the primary entry array starts; 0 means LBA 2,
	// right after the header. Boards whose boot ROM reads a boot loader
	// from the first sectors move it out of the way (genimage's
	// gpt-location). It must end before FirstUsableLBA.
	EntryLBA int64
	// NoBackup makes Write leave out the backup header and entry array
	// (the primary header then names LBA 1 as its backup, as genimage's
	// gpt-no-backup does), for media whose end is not where the table's
	// disk ends. Read leaves it false.
	NoBackup bool
	// HybridMBR makes Write put the partitions with an MBRType into the
	// protective MBR as well (at most three, in table order, then the GPT
	// entry covering the header and the primary entry array), for firmware
	// that reads only an MBR, such as the Raspberry Pi's. Read sets it
	// when sector 0 holds such entries.
	HybridMBR bool

	// Partitions in table order: MBR primaries by slot then logicals in
	// chain order; GPT entries by entry index. Empty slots are left out.
	Partitions []Partition
}

// Partition is one volume-bearing partition. Offsets are bytes so the layers
// above never deal in sectors of unknown size.
type Partition struct {
	// Index is the 1-based position in Table.Partitions: the N of the CLI's
	// IMAGE@N and of the NBD export disk@N. Write ignores it.
	Index int
	// Number is what Linux calls the partition (sdaN, nbd0pN): MBR slot 1-4
	// for primaries, 5, 6, ... for logicals in chain order, GPT entry index
	// plus one. It chooses the slot or entry Write uses.
	Number int

	Start int64 // byte offset from the start of the disk
	Size  int64 // bytes
	Type  Type

	Name       string // GPT partition name (at most 36 UTF-16 units)
	GUID       GUID   // GPT unique partition GUID
	Attributes uint64 // GPT attribute bits (bit 0 required, bit 2 legacy BIOS bootable)

	Bootable bool // MBR active flag (0x80)
	// MBRType is a GPT partition's system ID in a hybrid MBR (0: not
	// there); the entry is active when Attributes has bit 2 (legacy BIOS
	// bootable) set.
	MBRType byte
	Logical bool  // MBR logical partition, inside Table.Extended
	EBR     int64 // byte offset of a logical's EBR; 0 lets Write choose
}

// End is the byte offset just past the partition.
func (p *Partition) End() int64 { return p.Start + p.Size }

// Read detects and decodes the partition table of a disk of diskSize bytes.
// A GPT is looked for with 512- then 4096-byte sectors; an MBR without a
// GPT is assumed to use 512-byte sectors (use ReadSectorSize when the device
// knows better). A disk with neither, or whose first sector is a file
// system's boot sector, gives a Table of Kind None.
func Read(r io.ReaderAt, diskSize int64) (*Table, []Warning, error) {
	return ReadSectorSize(r, diskSize, 0)
}

// ReadSectorSize is Read with the logical sector size fixed; 0 means detect.
func ReadSectorSize(r io.ReaderAt, diskSize int64, sectorSize int) (*Table, []Warning, error) {
	if diskSize < 0 {
		return nil, nil, fmt.Errorf("%w: negative disk size %d", ErrInvalid, diskSize)
	}
	sizes := []int{512, 4096}
	if sectorSize != 0 {
		if !validSectorSize(sectorSize) {
			return nil, nil, fmt.Errorf("%w: sector size %d (want 512, 1024, 2048 or 4096)", ErrInvalid, sectorSize)
		}
		sizes = []int{sectorSize}
	}
	none := &Table{Kind: None, SectorSize: sizes[0], DiskSize: diskSize}
	if diskSize < int64(sizes[0]) {
		return none, nil, nil
	}
	sec := make([]byte, 512)
	if _, err := r.ReadAt(sec, 0); err != nil {
		return nil, nil, fmt.Errorf("partition: reading sector 0: %w", err)
	}
	state, warns := classifyMBR(sec)
	switch state {
	case mbrPlain:
		t, w, err := readMBR(r, diskSize, sizes[0], sec)
		return t, append(warns, w...), err
	case mbrProtective:
		var first error
		for _, ss := range sizes {
			t, w, seen, err := readGPT(r, diskSize, ss)
			if t != nil {
				return t, append(append(warns, w...), t.readHybrid(sec)...), nil
			}
			if err != nil && !errors.Is(err, ErrCorrupt) {
				return nil, nil, err
			}
			if seen && first == nil {
				first = err
			}
		}
		if first == nil {
			first = fmt.Errorf("%w: protective MBR but no GPT header", ErrCorrupt)
		}
		return nil, nil, first
	}
	// No usable MBR: a GPT whose protective MBR was lost still counts.
	var damaged error
	for _, ss := range sizes {
		t, w, seen, err := readGPT(r, diskSize, ss)
		if t != nil {
			return t, append(append(warns, "GPT found but sector 0 holds no protective MBR"), w...), nil
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			return nil, nil, err
		}
		if seen && damaged == nil {
			damaged = err
		}
	}
	if damaged != nil {
		warns = append(warns, Warning(fmt.Sprintf("ignoring a damaged GPT without protective MBR: %v", damaged)))
	}
	return none, warns, nil
}

// Write stores the table: for MBR the MBR and EBR sectors; for GPT the
// protective MBR, both headers and both entry arrays. It writes nothing for
// None, because a superfloppy's first sector belongs to its file system.
// Sector 0 is written whole (boot code zeroed): Write creates tables, it does
// not edit them. When w can also read, GPT headers left over from an earlier
// table are erased on an MBR disk, where they would confuse other tools.
func (t *Table) Write(w io.WriterAt) error {
	if err := t.Validate(); err != nil {
		return err
	}
	switch t.Kind {
	case MBR:
		return t.writeMBR(w)
	case GPT:
		return t.writeGPT(w)
	}
	return nil
}

// Validate checks that Write can store the table and that Read would return
// it unchanged; errors wrap ErrInvalid.
func (t *Table) Validate() error {
	if err := t.validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

func validSectorSize(ss int) bool {
	return ss == 512 || ss == 1024 || ss == 2048 || ss == 4096
}

func (t *Table) validate() error {
	if !validSectorSize(t.SectorSize) {
		return fmt.Errorf("sector size %d (want 512, 1024, 2048 or 4096)", t.SectorSize)
	}
	if t.DiskSize < 0 || t.Kind != None && t.DiskSize < int64(t.SectorSize) {
		return fmt.Errorf("disk size %d is less than a sector", t.DiskSize)
	}
	if len(t.BootCode) > mbrDiskIDOff {
		return fmt.Errorf("boot code of %d bytes: sector 0 has room for %d before the disk signature", len(t.BootCode), mbrDiskIDOff)
	}
	if t.Kind != GPT && (t.EntryLBA != 0 || t.NoBackup || t.HybridMBR) {
		return fmt.Errorf("entry array location, no-backup and hybrid MBR need a GPT")
	}
	switch t.Kind {
	case None:
		if len(t.Partitions) > 0 || t.Extended != nil || t.BootCode != nil {
			return errors.New("a disk without a table has no partitions and no boot code")
		}
		return nil
	case MBR:
		return t.validateMBR()
	case GPT:
		return t.validateGPT()
	}
	return fmt.Errorf("unknown table kind %d", int(t.Kind))
}

// extent is a byte range named for error messages.
type extent struct {
	start, end int64
	what       string
}

// checkOverlap reports the first two extents that share a byte.
func checkOverlap(xs []extent) error {
	sort.Slice(xs, func(i, j int) bool { return xs[i].start < xs[j].start })
	for i := 1; i < len(xs); i++ {
		if xs[i].start < xs[i-1].end {
			return fmt.Errorf("%s overlaps %s", xs[i].what, xs[i-1].what)
		}
	}
	return nil
}

// checkName enforces what a GPT name can hold and give back unchanged.
func checkName(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("name %q is not valid UTF-8", s)
	}
	for _, r := range s {
		if r == 0 {
			return fmt.Errorf("name %q contains NUL", s)
		}
	}
	if n := len(utf16.Encode([]rune(s))); n > 36 {
		return fmt.Errorf("name %q is %d UTF-16 units long; GPT holds 36", s, n)
	}
	return nil
}

// Rest as a Spec's Size asks for the space left once every other partition
// is placed.
const Rest int64 = -1

// Spec is one partition requested from New, as the CLI's --part
// SIZE:TYPE[:LABEL] gives it; the caller parses SIZE.
type Spec struct {
	Size  int64  // bytes (rounded up to whole sectors), or Rest
	Type  string // fat12, fat16, fat32, esp, linux or raw (see TypeFor)
	Label string // GPT partition name; MBR has nowhere to keep it
}

// Options tune New.
type Options struct {
	// Rand supplies the bytes of GUIDs and the MBR disk signature; nil means
	// crypto/rand. A seeded source (for example math/rand/v2's ChaCha8)
	// makes New deterministic, for reproducible images and tests.
	Rand io.Reader
	// Align is the partition alignment in bytes; 0 means 1 MiB, what sfdisk
	// and parted use. It must be a multiple of the sector size.
	Align int64
	// Seeded, when set, gives the identities instead of Rand: the disk
	// GUID and signature of "disk", and each partition the GUID of
	// "partition N LABEL", so that a partition keeps its GUID when others
	// are added after it.
	Seeded *Seeded
}

// New lays out a fresh table: partitions in order, each starting on an
// Align boundary (the first at 1 MiB by default). One Spec may be Rest; it
// gets the free space, rounded down to the alignment, wherever it sits in
// the list. On MBR, more than four specs make the fourth slot an extended
// partition (type 0x05) holding the fourth and later specs as logicals,
// each preceded by its EBR one alignment unit before it, as sfdisk does.
func New(kind Kind, diskSize int64, sectorSize int, specs []Spec, opts *Options) (*Table, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Align == 0 {
		o.Align = 1 << 20
	}
	ss := int64(sectorSize)
	switch {
	case !validSectorSize(sectorSize):
		return nil, fmt.Errorf("%w: sector size %d (want 512, 1024, 2048 or 4096)", ErrInvalid, sectorSize)
	case o.Align < 0 || o.Align%ss != 0:
		return nil, fmt.Errorf("%w: alignment %d is not a multiple of the %d-byte sector", ErrInvalid, o.Align, ss)
	case diskSize <= 0:
		return nil, fmt.Errorf("%w: disk size %d", ErrInvalid, diskSize)
	}
	t := &Table{Kind: kind, SectorSize: sectorSize, DiskSize: diskSize}
	var lo, hi int64 // usable bytes
	switch kind {
	case None:
		if len(specs) > 0 {
			return nil, fmt.Errorf("%w: a disk without a table cannot hold partitions", ErrInvalid)
		}
		return t, nil
	case MBR:
		var b [4]byte
		if err := readRand(o.Rand, b[:]); err != nil {
			return nil, err
		}
		t.DiskID = uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
		if o.Seeded != nil {
			t.DiskID = o.Seeded.Uint32("disk")
		}
		lo, hi = ss, min(diskSize/ss, max32)*ss
	case GPT:
		t.EntryCount, t.EntrySize = 128, 128
		arr := (int64(t.EntryCount*t.EntrySize) + ss - 1) / ss
		t.FirstUsableLBA = 2 + arr
		t.LastUsableLBA = diskSize/ss - 2 - arr
		if t.LastUsableLBA < t.FirstUsableLBA {
			return nil, fmt.Errorf("%w: a %d-byte disk is too small for a GPT", ErrNoSpace, diskSize)
		}
		g, err := NewGUID(o.Rand)
		if err != nil {
			return nil, err
		}
		if o.Seeded != nil {
			g = o.Seeded.GUID("disk")
		}
		t.DiskGUID = g
		lo, hi = t.FirstUsableLBA*ss, (t.LastUsableLBA+1)*ss
	default:
		return nil, fmt.Errorf("%w: unknown table kind %d", ErrInvalid, int(kind))
	}

	types := make([]Type, len(specs))
	sizes := make([]int64, len(specs))
	rest := -1
	for i, s := range specs {
		ty, err := TypeFor(kind, s.Type)
		if err != nil {
			return nil, fmt.Errorf("partition %d: %w", i+1, err)
		}
		types[i] = ty
		switch {
		case s.Size == Rest:
			if rest >= 0 {
				return nil, fmt.Errorf("%w: partitions %d and %d both ask for the rest of the disk", ErrInvalid, rest+1, i+1)
			}
			rest = i
		case s.Size <= 0:
			return nil, fmt.Errorf("%w: partition %d: size %d", ErrInvalid, i+1, s.Size)
		case s.Size > diskSize:
			return nil, fmt.Errorf("%w: partition %d (%s %s) is larger than the %s disk", ErrNoSpace, i+1, iec(s.Size), s.Type, iec(diskSize))
		default:
			sizes[i] = (s.Size + ss - 1) / ss * ss
		}
		if kind == GPT {
			if err := checkName(s.Label); err != nil {
				return nil, fmt.Errorf("%w: partition %d: %v", ErrInvalid, i+1, err)
			}
		}
	}
	parts, ext, end, err := layout(kind, specs, sizes, lo, hi, ss, o.Align)
	if err != nil {
		return nil, err
	}
	if rest >= 0 {
		sizes[rest] = (hi - end) / o.Align * o.Align
		if sizes[rest] <= 0 {
			return nil, fmt.Errorf("%w: partition %d (rest): no space left (%s free after the others, alignment %s)",
				ErrNoSpace, rest+1, iec(max(hi-end, 0)), iec(o.Align))
		}
		if parts, ext, _, err = layout(kind, specs, sizes, lo, hi, ss, o.Align); err != nil {
			return nil, err
		}
	}
	for i := range parts {
		p := &parts[i]
		p.Type = types[i]
		if kind == GPT {
			p.Name = specs[i].Label
			if p.GUID, err = NewGUID(o.Rand); err != nil {
				return nil, err
			}
			if o.Seeded != nil {
				p.GUID = o.Seeded.GUID(fmt.Sprintf("partition %d %s", i+1, specs[i].Label))
			}
		}
	}
	if len(parts) > 0 {
		t.Partitions = parts
	}
	t.Extended = ext
	if err := t.Validate(); err != nil {
		return nil, err // a bug in layout, not in the request
	}
	return t, nil
}

// layout places the partitions for New with the given sizes and returns the
// end of the last one.
func layout(kind Kind, specs []Spec, sizes []int64, lo, hi, ss, align int64) ([]Partition, *Partition, int64, error) {
	up := func(x int64) int64 { return (x + align - 1) / align * align }
	logicals := kind == MBR && len(specs) > 4
	parts := make([]Partition, len(specs))
	var ext *Partition
	pos := lo
	for i, s := range specs {
		p := &parts[i]
		p.Index, p.Number = i+1, i+1
		if logicals && i >= 3 {
			if i == 3 {
				ext = &Partition{Number: 4, Start: up(pos), Type: Type{MBR: mbrExtended}}
			}
			p.Logical, p.Number = true, 5+i-3
			p.EBR = up(pos)
			p.Start = up(p.EBR + ss)
		} else {
			p.Start = up(pos)
		}
		p.Size = sizes[i]
		if p.End() > hi {
			what := iec(s.Size)
			if s.Size == Rest {
				what = "rest"
			}
			return nil, nil, 0, fmt.Errorf("%w: partition %d (%s %s) does not fit: %s left at offset %s",
				ErrNoSpace, i+1, what, s.Type, iec(max(hi-p.Start, 0)), iec(p.Start))
		}
		pos = p.End()
	}
	if ext != nil {
		ext.Size = pos - ext.Start
	}
	return parts, ext, pos, nil
}

func readRand(r io.Reader, b []byte) error {
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, b); err != nil {
		return fmt.Errorf("partition: reading random bytes: %w", err)
	}
	return nil
}

// iec prints a byte count the way the CLI prints sizes.
func iec(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i, v := 0, n
	for v >= 1024 && v%1024 == 0 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 && n >= 1024 {
		f, j := float64(n), 0
		for f >= 1024 && j < len(units)-1 {
			f /= 1024
			j++
		}
		return fmt.Sprintf("%.1f %s (%d bytes)", f, units[j], n)
	}
	return fmt.Sprintf("%d %s", v, units[i])
}
