package control

import (
	"time"
)

// ExportStatus describes an NBD export; the JSON field names are stable.
type ExportStatus struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Size        int64  `json:"size"`
	ReadOnly    bool   `json:"read_only"`
	// Volumes are the volumes beneath the export: a write claims them all.
	Volumes []string `json:"volumes"`
	// Writers is the number of connections that wrote and still hold the
	// claim, which keeps the volumes from being mounted.
	Writers int `json:"writers"`
}

// VolumeStatus describes a volume and its mount state; the JSON field names
// are stable.
type VolumeStatus struct {
	// Name is what mount and dismount take (`disk@1`).
	Name string `json:"name"`
	// Device is the storage volume device (`\Device\HarddiskVolume1`).
	Device string `json:"device"`
	Size   int64  `json:"size"`
	// Mounted is set while a file system has the volume mounted.
	Mounted bool `json:"mounted"`
	// FileSystem is the driver that mounted it (`\FileSystem\FAT`).
	FileSystem string `json:"file_system,omitempty"`
	Label      string `json:"label,omitempty"`
	Serial     string `json:"serial,omitempty"`
	// References counts the open file objects on the mounted volume.
	References int `json:"references"`
	// Locked is set while the control API holds FSCTL_LOCK_VOLUME on it.
	Locked bool `json:"locked"`
	// ExportWriters counts the NBD connections that wrote to an export
	// over the volume and are still connected: mounting waits for zero.
	ExportWriters int `json:"export_writers"`
}

// FileEntry describes a file in a directory listing or a written file.
type FileEntry struct {
	Name    string    `json:"name"`
	Size    int64     `json:"size"`
	Dir     bool      `json:"dir"`
	ModTime time.Time `json:"mod_time"`
}
