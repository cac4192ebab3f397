// Package testworld builds the smallest storage stack a filter or file
// system test runs on: an I/O manager, a memory disk with one storage
// volume (\DosDevices\v) and a mount manager, with or without the raw file
// system. It is test support (internal/testsupport holds the rest) and
// imports the layers it builds, so tests of those layers themselves cannot
// use it; it has no lock.
package testworld

import (
	"testing"

	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/mount"
	"github.com/vdisk-dev/vdisk/volume"
)

// VolumePath is the name of the world's volume.
const VolumePath = `\DosDevices\v`

// World is a 1 MiB memory disk with one volume, and the managers above it.
type World struct {
	IO     *iomgr.Manager
	Mounts *mount.Manager
	// Volume is the storage volume device (VolumePath).
	Volume *iomgr.Device
}

// New builds a world; the raw file system is registered when raw is set
// (otherwise the caller registers file systems, to test filters loaded
// before one).
func New(t testing.TB, raw bool) *World {
	t.Helper()
	io := iomgr.NewManager()
	dd := disk.NewDriver(io, disk.Options{})
	store, _ := disk.NewMemStore(1 << 20)
	d, err := dd.AddDisk(store, 512, false)
	if err != nil {
		t.Fatal(err)
	}
	vol, err := volume.NewDriver(io).AddVolume(d, 1<<20, VolumePath)
	if err != nil {
		t.Fatal(err)
	}
	w := &World{IO: io, Mounts: mount.New(io), Volume: vol}
	if raw {
		if _, err := mount.NewRawFileSystem(w.Mounts); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// Open opens the volume (mounting it on first use) as requestor "test".
func (w *World) Open(t testing.TB) *iomgr.FileObject {
	t.Helper()
	fo, _, err := w.Mounts.Open(VolumePath, mount.OpenOptions{Requestor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return fo
}
