// Package testworld builds the worlds the tests run in, from the smallest
// to the whole: New, an I/O manager with a memory disk, one storage volume
// (\DosDevices\v) and a mount manager, for filter tests; the fixture
// images (GPT, MBR, FAT images made by mkfs.fat, the control tests'
// image) and qemu-img's map of a file; a System over
// images (System, FilterSystem, FATSystem); and that System served over
// NBD on loopback (Serve, ServeSystem) with the NBD oracles that judge it
// (nbdinfo, nbdsh, fio). It imports the packages it builds worlds from, so
// only tests in other packages (external test packages, or packages above
// the root) can use it; internal/testsupport, which imports nothing of
// vdisk, serves every package. It has no lock.
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
