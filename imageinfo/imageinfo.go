// Package imageinfo describes a disk image, as `vdisk info` shows it: its
// size, sectors and partition table, each partition, and the file system on
// each volume, which it mounts to ask (Describe). ImageInfo is the stable
// JSON of `vdisk info --json`. It holds no lock of its own.
package imageinfo

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/partition"
	"github.com/vdisk-dev/vdisk/vpb"
)

// ImageInfo describes an image for `vdisk info`; its JSON field names are stable.
type ImageInfo struct {
	Path       string `json:"path"`
	Size       int64  `json:"size"`
	SectorSize uint32 `json:"sector_size"`
	Table      string `json:"table"`
	// DiskGUID is a GPT's disk GUID; DiskSignature the MBR's disk
	// signature (also a GPT's protective or hybrid MBR's, when not 0), as
	// "0x12345678".
	DiskGUID      string `json:"disk_guid,omitempty"`
	DiskSignature string `json:"disk_signature,omitempty"`
	// HybridMBR is set on a GPT disk whose MBR lists partitions too.
	HybridMBR  bool            `json:"hybrid_mbr,omitempty"`
	Partitions []PartitionInfo `json:"partitions"`
	// FileSystem is what is on a disk without a partition table.
	FileSystem *FileSystemInfo `json:"file_system,omitempty"`
	Warnings   []string        `json:"warnings,omitempty"`
}

// PartitionInfo describes one partition in ImageInfo.
type PartitionInfo struct {
	Number   int    `json:"number"`
	Start    int64  `json:"start"`
	Size     int64  `json:"size"`
	Type     string `json:"type"`
	TypeName string `json:"type_name"`
	Name     string `json:"name,omitempty"`
	// UUID is a GPT partition's GUID. PartUUID is what Linux calls the
	// partition (root=PARTUUID=...): the GUID in lower case, or on an MBR
	// disk the disk signature and the partition number ("12345678-01").
	UUID     string `json:"uuid,omitempty"`
	PartUUID string `json:"partuuid"`
	// Attributes are a GPT partition's attribute bits in hex
	// ("0x1000000000000004": 64 bits do not fit a JSON number), and
	// AttributeNames the same as sfdisk prints them ("LegacyBIOSBootable
	// GUID:60"); both omitted when none is set.
	Attributes     string `json:"attributes,omitempty"`
	AttributeNames string `json:"attribute_names,omitempty"`
	// Bootable is the MBR active flag, or a GPT partition's legacy BIOS
	// bootable attribute.
	Bootable bool `json:"bootable"`
	// MBRType is the type byte of a GPT partition a hybrid MBR lists.
	MBRType string `json:"mbr_type,omitempty"`
	Export  string `json:"export"`
	// What is on the partition, when a file system recognises it.
	FileSystem *FileSystemInfo `json:"file_system"`
}

// FileSystemInfo describes the file system on a volume.
type FileSystemInfo struct {
	Type        string `json:"type"` // FAT12, FAT16, FAT32, or RAW when nothing recognises it
	Label       string `json:"label,omitempty"`
	Serial      string `json:"serial,omitempty"`
	ClusterSize int64  `json:"cluster_size,omitempty"`
	Size        int64  `json:"size,omitempty"`
	Used        int64  `json:"used,omitempty"`
	Free        int64  `json:"free,omitempty"`
	Error       string `json:"error,omitempty"`
}

// mountedFS is FileSystemInfo as JSON when a file system answered: every
// field is present, so a script reads "used": 0 or "label": "" rather
// than a missing key.
type mountedFS struct {
	Type        string `json:"type"`
	Label       string `json:"label"`
	Serial      string `json:"serial"`
	ClusterSize int64  `json:"cluster_size"`
	Size        int64  `json:"size"`
	Used        int64  `json:"used"`
	Free        int64  `json:"free"`
}

// MarshalJSON writes every field for a mounted file system, and only
// type (RAW) or error otherwise, where the sizes would mean nothing.
func (f FileSystemInfo) MarshalJSON() ([]byte, error) {
	if f.Error != "" || f.Type == "" || f.Type == "RAW" {
		type plain FileSystemInfo // without the method, to not recurse
		return json.Marshal(plain(f))
	}
	return json.Marshal(mountedFS{Type: f.Type, Label: f.Label, Serial: f.Serial, ClusterSize: f.ClusterSize,
		Size: f.Size, Used: f.Used, Free: f.Free})
}

// Describe summarises an image of sys: its disk, partitions and the file
// systems on them (mounting each volume to ask it).
func Describe(sys *vdisk.System, img *vdisk.Image) ImageInfo {
	dk := img.Disk.Extension.(*disk.Disk)
	info := ImageInfo{Path: img.Path, Size: dk.Size, SectorSize: dk.SectorSize, Table: img.Table.Kind.String(),
		Partitions: []PartitionInfo{}}
	for _, w := range img.Warnings {
		info.Warnings = append(info.Warnings, string(w))
	}
	t := img.Table
	if t.Kind == partition.GPT {
		info.DiskGUID, info.HybridMBR = t.DiskGUID.String(), t.HybridMBR
	}
	if t.Kind == partition.MBR || t.Kind == partition.GPT && t.DiskID != 0 {
		info.DiskSignature = fmt.Sprintf("0x%08x", t.DiskID)
	}
	for _, p := range t.Partitions {
		name := p.Type.Description()
		if name == "" {
			name = p.Type.String()
		}
		pi := PartitionInfo{Number: p.Index, Start: p.Start, Size: p.Size,
			Type: p.Type.String(), TypeName: name, Name: p.Name, Export: img.Name + "@" + strconv.Itoa(p.Index),
			Bootable: p.Bootable, FileSystem: describeFS(sys, img, p.Index)}
		if t.Kind == partition.GPT {
			pi.UUID, pi.PartUUID = p.GUID.String(), strings.ToLower(p.GUID.String())
			if p.Attributes != 0 {
				pi.Attributes, pi.AttributeNames = fmt.Sprintf("%#016x", p.Attributes), partition.AttributeNames(p.Attributes)
			}
			pi.Bootable = p.Attributes&partition.AttrLegacyBIOSBootable != 0
			if p.MBRType != 0 {
				pi.MBRType = fmt.Sprintf("%x", p.MBRType)
			}
		} else {
			// Linux numbers an MBR's partitions by slot (sdaN), as Number does.
			pi.PartUUID = fmt.Sprintf("%08x-%02x", t.DiskID, p.Number)
		}
		info.Partitions = append(info.Partitions, pi)
	}
	if len(img.Partitions) == 0 {
		info.FileSystem = describeFS(sys, img, 0)
	}
	return info
}

// describeFS mounts volume n of img (vdisk.System.Volume) and asks its file
// system.
func describeFS(sys *vdisk.System, img *vdisk.Image, n int) *FileSystemInfo {
	v, err := sys.Volume(img, n)
	if err != nil {
		return &FileSystemInfo{Error: err.Error()}
	}
	vi, err := v.Info()
	if err != nil {
		if vp := v.Device.VPB(); vp != nil && vp.Flags()&vpb.RawMount != 0 {
			return &FileSystemInfo{Type: "RAW"}
		}
		return &FileSystemInfo{Error: err.Error()}
	}
	typ := vi.FileSystem
	if typ == "FAT" && vi.ClusterSize > 0 {
		// NT names FAT12 and FAT16 alike; the cluster count tells them apart.
		typ = "FAT16"
		if vi.TotalBytes/vi.ClusterSize < 4085 {
			typ = "FAT12"
		}
	}
	return &FileSystemInfo{Type: typ, Label: vi.Label, Serial: fmt.Sprintf("%04X-%04X", vi.Serial>>16, vi.Serial&0xFFFF),
		ClusterSize: vi.ClusterSize, Size: vi.TotalBytes, Used: vi.TotalBytes - vi.FreeBytes, Free: vi.FreeBytes}
}
