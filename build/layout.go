package build

import (
	"fmt"
	"strings"

	"github.com/vdisk-dev/vdisk/build/confuse"
	"github.com/vdisk-dev/vdisk/partition"
)

// The layout of an hdimage follows genimage's rules (its README's "For
// each partition, its final alignment, offset and size are determined as
// follows", and its test suite where the README is silent):
//
//   - a partition in the table without an offset goes after everything
//     placed before it (the partition table included), at its alignment,
//     which is the image's unless it has its own;
//   - a partition's size is its size option, else what autoresize leaves
//     (up to the image's end, less the backup GPT), else its image's size
//     rounded up to its alignment;
//   - an MBR with more than four partitions gets an extended partition
//     (type 0F) in slot 4, or in the slot extended-partition names; each
//     logical partition's EBR sits one alignment unit before it;
//   - nothing may overlap anything placed before it, the MBR and GPT
//     structures included, unless an image declares the range a hole.
//
// genimage keeps the table structures as pseudo-partitions in the same
// list ([MBR], [GPT header], [GPT array], [GPT backup], [Extended]), which
// is why its overlap checks and its first usable LBA come out as they do;
// this file does the same.

const (
	gptEntries    = 128
	gptEntrySize  = 128
	gptSectors    = 1 + gptEntries*gptEntrySize/512 // header and array: 33
	mbrTailOffset = 440                             // disk signature, entries, boot signature
)

// Placed is a partition, or a table structure, where the layout put it.
type Placed struct {
	// Partition is the configuration's partition; nil for a structure.
	Partition *Partition
	// Name is the partition's name, or [MBR], [GPT header], [GPT array],
	// [GPT backup] or [Extended].
	Name    string
	Offset  int64
	Size    int64
	Align   int64
	InTable bool
	Logical bool
	// Image is the image the partition is filled from, if any; DataSize
	// is how many of its bytes (from ImageOffset) it holds.
	Image    *Image
	DataSize int64

	TypeGUID partition.GUID // GPT type
	UUID     partition.GUID // GPT partition GUID

	firstLogical string // of [Extended]: the partition whose EBR starts it
}

func (p *Placed) end() int64 { return p.Offset + p.Size }

func (p *Placed) structure() bool { return p.Partition == nil }

// Layout is where everything of an hdimage goes.
type Layout struct {
	Image *Image
	// TableType is none, mbr, gpt or hybrid.
	TableType string
	// Size is the disk's size; FileSize is the output file's, which is
	// shorter when the image is neither filled nor has a backup GPT at
	// its end (genimage writes no more than the last data).
	Size     int64
	FileSize int64
	// Parts holds the partitions in the order of the configuration (with
	// [Extended] before the first logical partition), then the table
	// structures.
	Parts    []*Placed
	Extended *Placed

	Align         int64
	GPTLocation   int64
	DiskSignature uint32
	DiskUUID      partition.GUID
}

// layoutError is a ConfigError about one image.
func layoutError(img *Image, pos confuse.Pos, format string, args ...any) error {
	return configErrorf(pos, "image %q: %s", img.File, fmt.Sprintf(format, args...))
}

// sizeOf gives the size of the image a partition is filled from.
type sizeOf func(*Image) (int64, error)

// layoutHD places an hdimage's partitions; sizes gives the sizes of the
// images they hold, ids the identities the configuration leaves open.
func (c *Config) layoutHD(img *Image, size int64, sizes sizeOf, ids *idSource) (*Layout, error) {
	hd := img.HD
	l := &Layout{Image: img, TableType: hd.TableType, Size: size, Align: hd.Align, GPTLocation: hd.GPTLocation}
	mbr, gpt := hd.TableType == "mbr" || hd.TableType == "hybrid", hd.TableType == "gpt" || hd.TableType == "hybrid"
	if l.Align == 0 {
		l.Align = 512
		if hd.TableType == "none" {
			l.Align = 1
		}
	}
	if hd.TableType != "none" && l.Align%512 != 0 {
		return nil, layoutError(img, hd.Pos, "align %d is not a multiple of the 512-byte sector", l.Align)
	}
	for _, p := range img.Partitions {
		l.Parts = append(l.Parts, &Placed{Partition: p, Name: p.Name, Offset: p.Offset, Size: p.Size, Align: p.Align,
			InTable: p.InPartitionTable && hd.TableType != "none"})
	}
	if hd.TableType == "mbr" {
		if err := l.setupLogical(hd.ExtendedPartition); err != nil {
			return nil, err
		}
	}
	if err := c.setupIdentities(l, ids); err != nil {
		return nil, err
	}
	switch {
	case l.GPTLocation == 0:
		l.GPTLocation = 2 * 512
	case l.GPTLocation%512 != 0:
		return nil, layoutError(img, hd.GPTLocationPos, "gpt-location %d is not a multiple of the 512-byte sector", l.GPTLocation)
	}
	var now int64
	var backup *Placed
	if hd.TableType != "none" {
		structure := func(name string, off, size int64) *Placed {
			s := &Placed{Name: name, Offset: off, Size: size, Align: 1}
			l.Parts = append(l.Parts, s)
			return s
		}
		now = structure("[MBR]", mbrTailOffset, 512-mbrTailOffset).end()
		if gpt {
			structure("[GPT header]", 512, 512)
			now = structure("[GPT array]", l.GPTLocation, (gptSectors-1)*512).end()
			var off int64
			if size > 0 {
				off = size - gptSectors*512
			}
			backup = structure("[GPT backup]", off, gptSectors*512)
		}
		l.FileSize = now
	}
	resized, hybrid := false, 0
	for _, p := range l.Parts {
		cp := p.Partition
		if p.Align == 0 {
			if p.InTable || hd.TableType == "none" {
				p.Align = l.Align
			} else {
				p.Align = 1
			}
		}
		if p.InTable && p.Align%l.Align != 0 {
			return nil, layoutError(img, cp.Pos, "partition %q: align %d is not a multiple of the image's align %d", p.Name, p.Align, l.Align)
		}
		if cp != nil {
			if err := c.checkTableKeys(img, cp, mbr, gpt); err != nil {
				return nil, err
			}
			if gpt && p.InTable {
				var err error
				if p.TypeGUID, err = c.gptType(img, cp); err != nil {
					return nil, err
				}
				if cp.PartitionType != 0 {
					hybrid++
				}
			}
		}
		if p.Logical {
			now = roundUp(now+l.Align, p.Align) // room for the EBR
		}
		if p == backup && p.Offset == 0 {
			// The backup, and so the image, ends on a 4 KiB boundary.
			now += p.Size
			p.Offset = roundUp(now, 4096) - p.Size
		}
		if p.Offset == 0 && (p.InTable || hd.TableType == "none") {
			p.Offset = roundUp(now, p.Align)
		}
		where := img.Pos
		if cp != nil {
			where = cp.Pos
		}
		if p.Offset%p.Align != 0 {
			return nil, layoutError(img, where, "partition %q: offset %d is not a multiple of its alignment %d", p.Name, p.Offset, p.Align)
		}
		if cp != nil && cp.Autoresize {
			if err := l.autoresize(p, &resized, gpt); err != nil {
				return nil, err
			}
		}
		if cp != nil && cp.Image != "" {
			if err := l.setupImage(c, p, sizes); err != nil {
				return nil, err
			}
		}
		if p.Size == 0 && p != l.Extended {
			return nil, layoutError(img, where, "partition %q: size is zero (give a size or an image)", p.Name)
		}
		if !p.Logical {
			if err := l.checkOverlap(p); err != nil {
				return nil, err
			}
		} else if now > p.Offset {
			return nil, layoutError(img, where, "partition %q at offset %d overlaps what comes before it (up to %d, its EBR included)", p.Name, p.Offset, now)
		}
		if p.InTable && p.Size%512 != 0 {
			return nil, layoutError(img, where, "partition %q: size %d is not a multiple of the 512-byte sector", p.Name, p.Size)
		}
		now = max(now, p.end())
		if p.Logical {
			l.FileSize = max(l.FileSize, p.Offset-l.Align+512) // its EBR
			l.Extended.Size = now - l.Extended.Offset
		}
	}
	if hybrid > 3 {
		return nil, layoutError(img, hd.Pos, "%d partitions have a partition-type, but a hybrid MBR has room for 3", hybrid)
	}
	if hd.TableType == "hybrid" && hybrid == 0 {
		return nil, layoutError(img, hd.Pos, "a hybrid partition table, but no partition has a partition-type for its MBR")
	}
	if l.Size > 0 && now > l.Size {
		return nil, layoutError(img, img.Size.Pos, "the partitions need %d bytes, more than the image's size %d", now, l.Size)
	}
	if l.Size == 0 {
		l.Size = now
	}
	if hd.Fill || gpt && !hd.GPTNoBackup {
		l.FileSize = l.Size
	}
	return l, nil
}

// checkTableKeys refuses options the table type has no place for.
func (c *Config) checkTableKeys(img *Image, p *Partition, mbr, gpt bool) error {
	switch {
	case p.HasPartitionTypeUUID && !gpt:
		return layoutError(img, p.PartitionTypeUUIDPos, "partition %q: partition-type-uuid needs partition-table-type gpt or hybrid", p.Name)
	case p.PartitionUUID != "" && !gpt:
		return layoutError(img, p.PartitionUUIDPos, "partition %q: partition-uuid needs partition-table-type gpt or hybrid", p.Name)
	case p.PartitionType != 0 && !mbr:
		return layoutError(img, p.PartitionTypePos, "partition %q: partition-type needs partition-table-type mbr or hybrid", p.Name)
	}
	return nil
}

// setupLogical makes the extended partition of an MBR: automatically in
// slot 4 when more than four partitions are in the table, or in the slot
// extended-partition names. Partitions from that slot on are logical,
// except forced-primary ones, which must all come after the logical ones.
func (l *Layout) setupLogical(slot int) error {
	img := l.Image
	if slot == 0 {
		n := 0
		for _, p := range l.Parts {
			if p.InTable {
				n++
			}
		}
		if n > 4 {
			slot = 4
		}
	}
	if slot == 0 {
		return nil
	}
	inExt, found, count, entries := false, false, 0, 0
	var parts []*Placed
	for _, p := range l.Parts {
		if !p.InTable {
			parts = append(parts, p)
			continue
		}
		count++
		if count == slot {
			var off int64
			if p.Offset != 0 {
				off = p.Offset - l.Align
			}
			l.Extended = &Placed{Name: "[Extended]", Offset: off, Align: l.Align, InTable: true, firstLogical: p.Name}
			parts = append(parts, l.Extended)
			inExt, found = true, true
			entries++
		}
		parts = append(parts, p)
		forced := p.Partition.ForcedPrimary
		if forced && count == slot {
			return layoutError(img, p.Partition.Pos, "partition %q is forced-primary, but extended-partition = %d makes it the first logical partition (forced-primary is for partitions after the logical ones)", p.Name, slot)
		}
		if forced {
			inExt = false
		}
		if inExt {
			p.Logical = true
		} else {
			entries++
		}
		switch {
		case forced && !found:
			return layoutError(img, p.Partition.Pos, "partition %q: forced-primary is only for partitions after the extended partition (slot %d)", p.Name, slot)
		case !forced && !inExt && found:
			return layoutError(img, p.Partition.Pos, "partition %q: after a forced-primary partition, every partition must be forced-primary (it cannot be logical: the extended partition would enclose the primary one)", p.Name)
		}
		if entries > 4 {
			return layoutError(img, p.Partition.Pos, "partition %q: more than four entries in the MBR (the extended partition counts as one)", p.Name)
		}
	}
	l.Parts = parts
	return nil
}

// setupIdentities resolves the disk GUID, the disk signature and the
// partition GUIDs, drawing from ids in genimage's order: the disk GUID
// (even where no GPT uses it), the disk signature, then the partitions.
func (c *Config) setupIdentities(l *Layout, ids *idSource) error {
	img, hd := l.Image, l.Image.HD
	gpt := hd.TableType == "gpt" || hd.TableType == "hybrid"
	mbr := hd.TableType == "mbr" || hd.TableType == "hybrid"
	if hd.DiskUUID != "" {
		if !gpt {
			return layoutError(img, hd.DiskUUIDPos, "disk-uuid needs partition-table-type gpt or hybrid")
		}
		if !validUUID(hd.DiskUUID) {
			return layoutError(img, hd.DiskUUIDPos, "disk-uuid %q is not a UUID", hd.DiskUUID)
		}
		l.DiskUUID, _ = partition.ParseGUID(hd.DiskUUID)
	} else {
		l.DiskUUID = ids.diskUUID(img)
	}
	switch sig := hd.DiskSignature; {
	case sig == "":
	case sig == "random":
		l.DiskSignature = ids.diskSignature(img)
	case !mbr:
		return layoutError(img, hd.DiskSignaturePos, "disk-signature needs partition-table-type mbr or hybrid")
	default:
		v, rest, err := parseUint(sig)
		if err != nil || rest != "" || v > 0xffffffff {
			return layoutError(img, hd.DiskSignaturePos, "disk-signature %q: want a 32-bit number or random", sig)
		}
		l.DiskSignature = uint32(v)
	}
	for _, p := range l.Parts {
		cp := p.Partition
		if cp == nil || !gpt || !p.InTable {
			continue
		}
		if cp.PartitionUUID != "" {
			if !validUUID(cp.PartitionUUID) {
				return layoutError(img, cp.PartitionUUIDPos, "partition %q: partition-uuid %q is not a UUID", p.Name, cp.PartitionUUID)
			}
			p.UUID, _ = partition.ParseGUID(cp.PartitionUUID)
		} else {
			p.UUID = ids.partitionUUID(img, cp)
		}
	}
	return nil
}

// autoresize gives a partition the space left up to the image's end.
func (l *Layout) autoresize(p *Placed, resized *bool, gpt bool) error {
	img := l.Image
	switch {
	case *resized:
		return layoutError(img, p.Partition.Pos, "partition %q: autoresize is allowed for one partition only", p.Name)
	case l.Size == 0:
		return layoutError(img, p.Partition.Pos, "partition %q: autoresize needs the image's size", p.Name)
	}
	size := l.Size - p.Offset
	if gpt {
		size -= gptSectors * 512
	}
	size -= size % p.Align
	if size <= 0 {
		return layoutError(img, p.Partition.Pos, "partition %q: no space left for autoresize at offset %d of the %d-byte image", p.Name, p.Offset, l.Size)
	}
	if size < p.Size {
		return layoutError(img, p.Partition.Pos, "partition %q: autoresize leaves %d bytes, less than its size %d", p.Name, size, p.Size)
	}
	p.Size, *resized = size, true
	return nil
}

// setupImage sizes a partition from its image and checks the image fits.
func (l *Layout) setupImage(c *Config, p *Placed, sizes sizeOf) error {
	img, cp := l.Image, p.Partition
	child := c.Image(cp.Image)
	if child == nil {
		return layoutError(img, cp.ImagePos, "partition %q: no image %q", p.Name, cp.Image)
	}
	size, err := sizes(child)
	if err != nil {
		return err
	}
	p.Image = child
	if size > 0 {
		if cp.ImageOffset > size {
			return layoutError(img, cp.Pos, "partition %q: imageoffset %d is beyond the end of %s (%d bytes)", p.Name, cp.ImageOffset, child.File, size)
		}
		p.DataSize = size - cp.ImageOffset
	}
	if p.Size == 0 {
		if p.InTable {
			p.Size = roundUp(p.DataSize, p.Align)
		} else {
			p.Size = p.DataSize
		}
	}
	if p.DataSize > p.Size {
		return layoutError(img, cp.Pos, "partition %q: its size %d is too small for %s (%d bytes)", p.Name, p.Size, child.File, p.DataSize)
	}
	l.FileSize = max(l.FileSize, p.Offset+p.DataSize)
	if cp.Fill {
		// Every byte of the partition is written. (genimage leaves the
		// file at the image's data and then finds it longer than it
		// expected, unless the whole image is filled.)
		l.FileSize = max(l.FileSize, p.end())
	}
	return nil
}

// checkOverlap refuses a partition that overlaps anything placed before it,
// unless the earlier one's image declares the shared range a hole.
func (l *Layout) checkOverlap(p *Placed) error {
	for _, q := range l.Parts {
		if q == p {
			return nil
		}
		if p.Offset >= q.end() || q.Offset >= p.end() {
			continue
		}
		start, end := max(p.Offset, q.Offset), min(p.end(), q.end())
		if q.Image != nil && coveredByHole(q.Image.Holes, start-q.Offset, end-q.Offset) {
			continue
		}
		img := l.Image
		describe := func(x *Placed) string {
			if x == l.Extended {
				return fmt.Sprintf("the extended partition (with the EBR of partition %q at byte %d)", x.firstLogical, x.Offset)
			}
			return fmt.Sprintf("%s (bytes %d to %d)", x.describe(), x.Offset, x.end())
		}
		where := img.Pos
		switch {
		case q.Partition != nil:
			where = q.Partition.Pos
		case p.Partition != nil:
			where = p.Partition.Pos
		}
		hint := ""
		if p.structure() && !q.InTable && q.Partition != nil {
			hint = ": a boot loader that overlaps the partition table must declare the overlapping range a hole (holes = {\"(start; end)\"})"
		}
		return layoutError(img, where, "%s overlaps %s%s", describe(p), describe(q), hint)
	}
	return nil
}

func (p *Placed) describe() string {
	if p.structure() {
		return map[string]string{"[MBR]": "the MBR", "[GPT header]": "the GPT header", "[GPT array]": "the GPT entry array",
			"[GPT backup]": "the backup GPT", "[Extended]": "the extended partition"}[p.Name]
	}
	return fmt.Sprintf("partition %q", p.Name)
}

func coveredByHole(holes []Hole, start, end int64) bool {
	for _, h := range holes {
		if h.Start <= start && end <= h.End {
			return true
		}
	}
	return false
}

func roundUp(v, align int64) int64 {
	if align <= 1 {
		return v
	}
	return (v + align - 1) / align * align
}

// Table turns a layout into the partition table Write stores, with the
// boot code to keep in sector 0.
func (l *Layout) Table(bootCode []byte) (*partition.Table, error) {
	gpt := l.TableType == "gpt" || l.TableType == "hybrid"
	t := &partition.Table{SectorSize: 512, DiskSize: l.Size, DiskID: l.DiskSignature, BootCode: bootCode}
	switch l.TableType {
	case "none":
		t.Kind, t.BootCode = partition.None, nil
		return t, nil
	case "mbr":
		t.Kind = partition.MBR
	default:
		t.Kind = partition.GPT
		t.DiskGUID = l.DiskUUID
		t.EntryCount, t.EntrySize = gptEntries, gptEntrySize
		t.LastUsableLBA = l.Size/512 - 1 - gptSectors
		t.NoBackup = l.Image.HD.GPTNoBackup
		t.HybridMBR = l.TableType == "hybrid"
		if l.GPTLocation != 2*512 {
			t.EntryLBA = l.GPTLocation / 512
		}
	}
	// The first usable LBA is where the last thing outside the table ends,
	// of those before the first partition (genimage's rule: a boot loader
	// there stays outside the usable range).
	smallest := int64(-1)
	for _, p := range l.Parts {
		if p.InTable && p != l.Extended && (smallest < 0 || p.Offset < smallest) {
			smallest = p.Offset
		}
	}
	var firstUsable int64
	var primaries, logicals []partition.Partition
	slot := 0
	for _, p := range l.Parts {
		if !p.InTable && p.Name != "[GPT backup]" && (smallest < 0 || p.end() <= smallest) {
			firstUsable = max(firstUsable, p.end())
		}
		if !p.InTable {
			continue
		}
		cp := p.Partition
		switch {
		case gpt:
			slot++
			q := partition.Partition{Number: slot, Start: p.Offset, Size: p.Size, Type: partition.Type{GPT: p.TypeGUID},
				GUID: p.UUID, Name: p.Name}
			if cp.Bootable {
				q.Attributes |= partition.AttrLegacyBIOSBootable
			}
			if cp.ReadOnly {
				q.Attributes |= partition.AttrReadOnly
			}
			if cp.Hidden {
				q.Attributes |= partition.AttrHidden
			}
			if cp.NoAutomount {
				q.Attributes |= partition.AttrNoAutomount
			}
			if t.HybridMBR {
				q.MBRType = cp.PartitionType
			}
			primaries = append(primaries, q)
		case p == l.Extended:
			slot++
			t.Extended = &partition.Partition{Number: slot, Start: p.Offset, Size: p.Size, Type: partition.Type{MBR: 0x0f}}
		case p.Logical:
			logicals = append(logicals, partition.Partition{Number: 5 + len(logicals), Start: p.Offset, Size: p.Size,
				Type: partition.Type{MBR: cp.PartitionType}, Bootable: cp.Bootable, Logical: true, EBR: p.Offset - l.Align})
		default:
			slot++
			primaries = append(primaries, partition.Partition{Number: slot, Start: p.Offset, Size: p.Size,
				Type: partition.Type{MBR: cp.PartitionType}, Bootable: cp.Bootable})
		}
	}
	if gpt {
		t.FirstUsableLBA = (firstUsable + 511) / 512
	}
	t.Partitions = append(primaries, logicals...)
	for i := range t.Partitions {
		t.Partitions[i].Index = i + 1
	}
	if len(t.Partitions) == 0 {
		t.Partitions = nil
	}
	if err := t.Validate(); err != nil {
		return nil, layoutError(l.Image, l.Image.HD.Pos, "%v", strings.TrimPrefix(err.Error(), partition.ErrInvalid.Error()+": "))
	}
	return t, nil
}
