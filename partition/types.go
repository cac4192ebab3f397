package partition

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind says which on-disk scheme a Table uses; the layers above need it to
// choose a numbering and what a "type" means.
type Kind int

// The kinds of partition table. None is a disk without a table (a
// "superfloppy"): the whole disk is one volume.
const (
	None Kind = iota
	MBR
	GPT
)

// String gives the names the CLI's --table flag uses.
func (k Kind) String() string {
	switch k {
	case None:
		return "none"
	case MBR:
		return "mbr"
	case GPT:
		return "gpt"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// ParseKind reads the --table flag; "dos" is accepted because sfdisk and
// fdisk call MBR that.
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(s) {
	case "none":
		return None, nil
	case "mbr", "dos", "msdos":
		return MBR, nil
	case "gpt":
		return GPT, nil
	}
	return None, fmt.Errorf("%w: unknown table kind %q (want gpt, mbr or none)", ErrInvalid, s)
}

// Type is a partition's type as stored: an MBR system-ID byte or a GPT type
// GUID. Exactly one is set, according to the table's Kind, so a type read
// from disk is never lost by mapping it to a name.
type Type struct {
	MBR byte // MBR system ID; 0 in a GPT partition
	GPT GUID // GPT partition type GUID; zero in an MBR partition
}

// String prints the type as sfdisk does ("c", "83" for MBR; the GUID for
// GPT), so scripts can compare the two.
func (t Type) String() string {
	if !t.GPT.IsZero() {
		return t.GPT.String()
	}
	return fmt.Sprintf("%x", t.MBR)
}

// Description names well-known types for people reading `vdisk info`; it is
// empty for types this package does not know.
func (t Type) Description() string {
	if !t.GPT.IsZero() {
		return gptNames[t.GPT]
	}
	return mbrNames[t.MBR]
}

// MBR system IDs this package gives meaning to.
const (
	mbrFAT12       = 0x01
	mbrFAT16Small  = 0x04
	mbrExtended    = 0x05
	mbrFAT16       = 0x06
	mbrFAT32       = 0x0b
	mbrFAT32LBA    = 0x0c
	mbrFAT16LBA    = 0x0e
	mbrExtendedLBA = 0x0f
	mbrLinuxExt    = 0x85
	mbrLinux       = 0x83
	mbrNonFS       = 0xda
	mbrGPT         = 0xee
	mbrESP         = 0xef
)

// isExtended reports the system IDs that Linux treats as an extended
// (EBR chain) container.
func isExtended(b byte) bool {
	return b == mbrExtended || b == mbrExtendedLBA || b == mbrLinuxExt
}

// GPT partition attribute bits: the three the UEFI specification defines
// for every partition, and the ones the Discoverable Partitions
// Specification (and Microsoft, for basic data) define for Linux and data
// partitions, which genimage's read-only, hidden and no-automount set.
const (
	AttrRequired           uint64 = 1 << 0
	AttrNoBlockIO          uint64 = 1 << 1
	AttrLegacyBIOSBootable uint64 = 1 << 2
	AttrReadOnly           uint64 = 1 << 60
	AttrHidden             uint64 = 1 << 62
	AttrNoAutomount        uint64 = 1 << 63
)

// AttributeNames prints GPT attribute bits as sfdisk -d does: the three
// UEFI bits by name, the others as GUID:N[,N...] ("" for none).
func AttributeNames(a uint64) string {
	var names []string
	for _, b := range []struct {
		bit  uint64
		name string
	}{{AttrRequired, "RequiredPartition"}, {AttrNoBlockIO, "NoBlockIOProtocol"}, {AttrLegacyBIOSBootable, "LegacyBIOSBootable"}} {
		if a&b.bit != 0 {
			names = append(names, b.name)
		}
	}
	var bits []string
	for i := 3; i < 64; i++ {
		if a&(1<<i) != 0 {
			bits = append(bits, strconv.Itoa(i))
		}
	}
	if len(bits) > 0 {
		names = append(names, "GUID:"+strings.Join(bits, ","))
	}
	return strings.Join(names, " ")
}

// GPT type GUIDs this package gives meaning to.
var (
	// GUIDESP is the EFI System Partition.
	GUIDESP = mustGUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
	// GUIDBasicData is Microsoft basic data, what Windows, macOS and Linux
	// expect for FAT volumes that are not an ESP.
	GUIDBasicData = mustGUID("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7")
	// GUIDLinux is Linux filesystem data.
	GUIDLinux = mustGUID("0FC63DAF-8483-4772-8E79-3D69D8477DE4")
	// GUIDLinuxReserved is what "raw" maps to on GPT: no standard GUID
	// means "non-file-system data", and this one is distinct from Linux
	// data so nothing probes or auto-mounts it.
	GUIDLinuxReserved = mustGUID("8DA63339-0007-60C0-C436-083AC8230908")
)

// gptNames and gptByName index gptTypes: description by GUID, GUID by
// lower-cased name.
var gptNames, gptByName = func() (map[GUID]string, map[string]GUID) {
	names, byName := map[GUID]string{}, map[string]GUID{}
	for _, t := range gptTypes {
		g := mustGUID(t.guid)
		names[g] = t.description
		for _, n := range t.names {
			byName[strings.ToLower(n)] = g
		}
	}
	return names, byName
}()

// GPTTypeByName resolves a name genimage accepts as a partition-type-uuid
// ("L", "esp", "root-x86-64", ...; see typenames.go), ignoring case as
// genimage does.
func GPTTypeByName(name string) (GUID, bool) {
	g, ok := gptByName[strings.ToLower(name)]
	return g, ok
}

// TypeFor maps the CLI's type names to what kind k stores. On MBR, fat16 is
// 0x06 (what fdisk and mkfs.fat users know as "FAT16"; Linux ignores the CHS
// versus LBA distinction) and fat32 is 0x0C (LBA), since partitions are
// placed by LBA. On GPT every FAT name maps to Microsoft basic data except
// esp.
func TypeFor(k Kind, name string) (Type, error) {
	var t Type
	switch k {
	case MBR:
		switch name {
		case "fat12":
			t.MBR = mbrFAT12
		case "fat16":
			t.MBR = mbrFAT16
		case "fat32":
			t.MBR = mbrFAT32LBA
		case "esp":
			t.MBR = mbrESP
		case "linux":
			t.MBR = mbrLinux
		case "raw":
			t.MBR = mbrNonFS
		}
	case GPT:
		switch name {
		case "fat12", "fat16", "fat32":
			t.GPT = GUIDBasicData
		case "esp":
			t.GPT = GUIDESP
		case "linux":
			t.GPT = GUIDLinux
		case "raw":
			t.GPT = GUIDLinuxReserved
		}
	default:
		return t, fmt.Errorf("%w: a %v disk has no partition types", ErrInvalid, k)
	}
	if t == (Type{}) {
		return t, fmt.Errorf("%w: unknown partition type %q (want fat12, fat16, fat32, esp, linux or raw)", ErrInvalid, name)
	}
	return t, nil
}
