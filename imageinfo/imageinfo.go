// Package imageinfo describes a disk image, as `vdisk info` shows it: its
// size, sectors and partition table, each partition, and the file system on
// each volume, which it mounts to ask (Describe). ImageInfo is the stable
// JSON of `vdisk info --json`. It holds no lock of its own.
package imageinfo

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/vpb"
)

// ImageInfo describes an image for `vdisk info`; its JSON field names are stable.
type ImageInfo struct {
	Path       string          `json:"path"`
	Size       int64           `json:"size"`
	SectorSize uint32          `json:"sector_size"`
	Table      string          `json:"table"`
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
	Export   string `json:"export"`
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
	for _, p := range img.Table.Partitions {
		name := p.Type.Description()
		if name == "" {
			name = p.Type.String()
		}
		info.Partitions = append(info.Partitions, PartitionInfo{Number: p.Index, Start: p.Start, Size: p.Size,
			Type: p.Type.String(), TypeName: name, Name: p.Name, Export: img.Name + "@" + strconv.Itoa(p.Index),
			FileSystem: describeFS(sys, img, p.Index)})
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
