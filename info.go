package vdisk

import (
	"strconv"

	"github.com/vdisk-dev/vdisk/disk"
)

// ImageInfo describes an image for `vdisk info`; its JSON field names are stable.
type ImageInfo struct {
	Path       string          `json:"path"`
	Size       int64           `json:"size"`
	SectorSize uint32          `json:"sector_size"`
	Table      string          `json:"table"`
	Partitions []PartitionInfo `json:"partitions"`
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
}

// Describe summarises an image's disk and partitions.
func Describe(img *Image) ImageInfo {
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
			Type: p.Type.String(), TypeName: name, Name: p.Name, Export: img.Name + "@" + strconv.Itoa(p.Index)})
	}
	return info
}
