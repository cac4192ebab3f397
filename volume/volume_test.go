package volume_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/partition"
	"github.com/vdisk-dev/vdisk/volume"
)

const diskSize = 8 << 20

type stack struct {
	m       *iomgr.Manager
	disks   *disk.Driver
	parts   *partition.Driver
	volumes *volume.Driver
	store   *disk.MemStore
	disk    *iomgr.Device
}

func newStack(t *testing.T, workers int, readOnly bool) *stack {
	t.Helper()
	m := iomgr.NewManager()
	s := &stack{m: m, disks: disk.NewDriver(m, disk.Options{Workers: workers}), parts: partition.NewDriver(m), volumes: volume.NewDriver(m)}
	var err error
	if s.store, err = disk.NewMemStore(diskSize); err != nil {
		t.Fatal(err)
	}
	if s.disk, err = s.disks.AddDisk(s.store, 512, readOnly); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, v := range s.volumes.Volumes() {
			s.volumes.RemoveVolume(v)
		}
		s.parts.RemovePartitions(s.disk)
		s.disks.Close()
	})
	return s
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*13) ^ seed
		if b[i] == 0 {
			b[i] = seed
		}
	}
	return b
}

// transfer sends a read, write or flush to the top of dev's stack.
func transfer(dev *iomgr.Device, major iomgr.MajorFunction, buf []byte, off int64) iomgr.IOStatusBlock {
	ios, _ := (&iomgr.BlockIO{Device: dev}).Send(iomgr.BlockRequest{Major: major, Buffer: buf, Offset: off})
	return ios
}

// control sends a device control to the top of dev's stack.
func control(dev *iomgr.Device, code uint32, input, output any) iomgr.Status {
	return iomgr.StatusOf((&iomgr.BlockIO{Device: dev}).Control(code, input, output))
}

func TestVolumeDeviceVPBAndLinks(t *testing.T) {
	s := newStack(t, 0, false)
	before := s.m.DeviceCount()
	v1, err := s.volumes.AddVolume(s.disk, diskSize, `\DosDevices\disk`, `\GLOBAL??\Volume{1}`)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := s.volumes.AddVolume(s.disk, diskSize/2, `\DosDevices\disk@1`)
	if err != nil {
		t.Fatal(err)
	}
	if s.m.DeviceCount() != before+2 {
		t.Fatalf("%d devices, want %d", s.m.DeviceCount(), before+2)
	}
	for i, v := range []*iomgr.Device{v1, v2} {
		vpb := v.VPB()
		if vpb == nil {
			t.Fatalf("volume %d has no VPB", i+1)
		}
		if vpb.RealDevice() != v || vpb.Mounted() || vpb.ReferenceCount() != 0 {
			t.Errorf("volume %d VPB: real device %v, mounted %v, references %d", i+1, vpb.RealDevice(), vpb.Mounted(), vpb.ReferenceCount())
		}
		if d, ok := vpb.Device(); ok || d != nil {
			t.Errorf("volume %d: an unmounted VPB names file system device %v", i+1, d)
		}
		ext := v.Extension.(*volume.Extension)
		if ext.Number != i+1 || ext.Target != s.disk {
			t.Errorf("volume %d extension %+v", i+1, ext)
		}
		if v.SectorSize != 512 || v.StackSize != s.disk.StackSize+1 || v.Flags()&iomgr.DeviceInitializing != 0 {
			t.Errorf("volume %d: sector size %d, stack size %d, flags %v", i+1, v.SectorSize, v.StackSize, v.Flags())
		}
	}
	if got := s.volumes.Volumes(); len(got) != 2 || got[0] != v1 || got[1] != v2 {
		t.Fatalf("Volumes() = %v", got)
	}
	for _, c := range []struct {
		path string
		dev  *iomgr.Device
		rest string
	}{
		{`\Device\HarddiskVolume1`, v1, ""},
		{`\Device\HarddiskVolume2`, v2, ""},
		{`\DosDevices\disk`, v1, ""},
		{`\GLOBAL??\Volume{1}`, v1, ""},
		{`\DosDevices\disk@1`, v2, ""},
		{`\DosDevices\disk@1\EFI\BOOT\BOOTX64.EFI`, v2, `\EFI\BOOT\BOOTX64.EFI`},
		{`\dosdevices\DISK`, v1, ""}, // the namespace is case-insensitive
	} {
		dev, rest, err := s.m.LookupDevice(c.path)
		if err != nil || dev != c.dev || rest != c.rest {
			t.Errorf("lookup %s: %v %q %v, want %v %q", c.path, dev, rest, err, c.dev, c.rest)
		}
	}

	// A link name already taken fails the volume and leaves nothing behind.
	n := s.m.DeviceCount()
	if _, err := s.volumes.AddVolume(s.disk, diskSize, `\DosDevices\fresh`, `\DosDevices\disk`); err == nil {
		t.Fatal("a volume with a duplicate link was created")
	}
	if s.m.DeviceCount() != n || len(s.volumes.Volumes()) != 2 {
		t.Errorf("a failed AddVolume left a device: %d devices (was %d), volumes %v", s.m.DeviceCount(), n, s.volumes.Volumes())
	}
	if _, _, err := s.m.LookupDevice(`\DosDevices\fresh`); err == nil {
		t.Error("a failed AddVolume left its first link")
	}

	s.volumes.RemoveVolume(v1)
	if s.m.DeviceCount() != n-1 || len(s.volumes.Volumes()) != 1 {
		t.Errorf("after RemoveVolume: %d devices, volumes %v", s.m.DeviceCount(), s.volumes.Volumes())
	}
	for _, p := range []string{`\DosDevices\disk`, `\GLOBAL??\Volume{1}`, `\Device\HarddiskVolume1`} {
		if _, _, err := s.m.LookupDevice(p); err == nil {
			t.Errorf("%s still resolves after RemoveVolume", p)
		}
	}
}

func TestVolumeReadOnlyCharacteristics(t *testing.T) {
	s := newStack(t, 0, true)
	v, err := s.volumes.AddVolume(s.disk, diskSize)
	if err != nil {
		t.Fatal(err)
	}
	if v.Characteristics&iomgr.ReadOnlyDevice == 0 {
		t.Errorf("a volume over a read-only disk has characteristics %v", v.Characteristics)
	}
	if ios := transfer(v, iomgr.MajorWrite, pattern(512, 1), 0); ios.Status != iomgr.StatusMediaWriteProtected {
		t.Errorf("write to a read-only volume: %v", ios)
	}
}

func TestVolumeBounds(t *testing.T) {
	for _, workers := range []int{0, 4} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			s := newStack(t, workers, false)
			// A volume smaller than its target: the volume's own bound is what refuses.
			const size = diskSize / 2
			v, err := s.volumes.AddVolume(s.disk, size)
			if err != nil {
				t.Fatal(err)
			}
			want := pattern(8192, 3)
			if ios := transfer(v, iomgr.MajorWrite, want, size-8192); ios.Status != iomgr.StatusSuccess || ios.Information != 8192 {
				t.Fatalf("write of the volume's last 8 KiB: %v", ios)
			}
			got := make([]byte, 8192)
			if _, err := s.store.ReadAt(got, size-8192); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("volume data not at the same disk offset: %v", err)
			}
			clear(got)
			if ios := transfer(v, iomgr.MajorRead, got, size-8192); ios.Status != iomgr.StatusSuccess || !bytes.Equal(got, want) {
				t.Fatalf("read back: %v", ios)
			}
			for _, c := range []struct {
				name string
				off  int64
				n    int
			}{
				{"crossing the end", size - 512, 1024},
				{"at the end", size, 512},
				{"beyond the end", size + 1<<20, 512},
				{"negative offset", -512, 512},
			} {
				for _, major := range []iomgr.MajorFunction{iomgr.MajorRead, iomgr.MajorWrite} {
					if ios := transfer(v, major, pattern(c.n, 9), c.off); ios.Status != iomgr.StatusInvalidParameter {
						t.Errorf("%v %s: %v, want STATUS_INVALID_PARAMETER", major, c.name, ios)
					}
				}
			}
			tail := make([]byte, diskSize-size)
			if _, err := s.store.ReadAt(tail, size); err != nil || !bytes.Equal(tail, make([]byte, len(tail))) {
				t.Fatal("a refused write reached the disk beyond the volume")
			}
			// Other requests pass to the disk.
			var g disk.Geometry
			if st := control(v, disk.IOCTLDiskGetDriveGeometry, nil, &g); st != iomgr.StatusSuccess || g.DiskSize != diskSize {
				t.Errorf("geometry through the volume: %v %+v", st, g)
			}
			if ios := transfer(v, iomgr.MajorFlushBuffers, nil, 0); ios.Status != iomgr.StatusSuccess {
				t.Errorf("flush through the volume: %v", ios)
			}
		})
	}
}

// TestVolumeOverPartition checks a volume over a partition device, and over
// a disk stack that grew a filter after the volume was made.
func TestVolumeOverPartition(t *testing.T) {
	for _, workers := range []int{0, 4} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			s := newStack(t, workers, false)
			tab, err := partition.New(partition.GPT, diskSize, 512, []partition.Spec{{Size: 2 << 20, Type: "linux"}, {Size: partition.Rest, Type: "raw"}},
				&partition.Options{Rand: rand.NewChaCha8([32]byte{7})})
			if err != nil {
				t.Fatal(err)
			}
			if err := tab.Write(s.store); err != nil {
				t.Fatal(err)
			}
			_, _, parts, err := s.parts.Enumerate(s.disk, "test")
			if err != nil || len(parts) != 2 {
				t.Fatalf("enumerate: %v %v", err, parts)
			}
			p2 := tab.Partitions[1]
			v, err := s.volumes.AddVolume(parts[1], p2.Size, `\DosDevices\disk@2`)
			if err != nil {
				t.Fatal(err)
			}
			if v.StackSize != parts[1].StackSize+1 {
				t.Errorf("volume stack size %d over a partition of %d", v.StackSize, parts[1].StackSize)
			}
			check := func(what string, off int64, seed byte) {
				t.Helper()
				want := pattern(4096, seed)
				if ios := transfer(v, iomgr.MajorWrite, want, off); ios.Status != iomgr.StatusSuccess {
					t.Fatalf("%s: write: %v", what, ios)
				}
				got := make([]byte, 4096)
				if _, err := s.store.ReadAt(got, p2.Start+off); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s: volume offset %d is not at disk offset %d", what, off, p2.Start+off)
				}
				if ios := transfer(v, iomgr.MajorWrite, want, p2.Size-2048); ios.Status != iomgr.StatusInvalidParameter {
					t.Fatalf("%s: write across the volume's end: %v", what, ios)
				}
				var ext []disk.Extent
				req := disk.DataSetRequest{Action: disk.DataSetAllocation, Offset: off, Length: 4096}
				if st := control(v, disk.IOCTLStorageManageDataSetAttributes, &req, &ext); st != iomgr.StatusSuccess ||
					len(ext) != 1 || ext[0].Offset != off || ext[0].Hole {
					t.Fatalf("%s: allocation through the volume: %v %v", what, st, ext)
				}
			}
			check("plain stack", 1<<20, 1)

			// A filter attached to the disk now: the volume's and the
			// partition's IRPs are a location short, and still get through.
			fdrv := s.m.CreateDriver(`\Driver\PassThrough`)
			var seen atomic.Int32
			fdrv.SetDispatchAll(func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
				seen.Add(1)
				irp.SkipCurrentStackLocation()
				return iomgr.CallDriver(dev.Extension.(*iomgr.Device), irp)
			})
			fdrv.FastIO = &iomgr.FastIODispatch{DetachDevice: func(source, target *iomgr.Device) {
				if err := s.m.DetachDevice(target); err != nil {
					panic(err)
				}
				s.m.DeleteDevice(source)
			}}
			fdev, err := s.m.CreateDevice(fdrv, "", iomgr.DeviceDisk, 0)
			if err != nil {
				t.Fatal(err)
			}
			lower, err := s.m.AttachDeviceToDeviceStack(fdev, s.disk)
			if err != nil {
				t.Fatal(err)
			}
			fdev.Extension = lower
			fdev.ClearFlags(iomgr.DeviceInitializing)
			check("filtered stack", 2<<20, 2)
			if seen.Load() != 2 { // the write and the allocation query; the refused write never left the volume
				t.Errorf("the late filter saw %d requests, want 2", seen.Load())
			}
		})
	}
}

func TestVolumeExportMountExclusivity(t *testing.T) {
	s := newStack(t, 0, false)
	v, err := s.volumes.AddVolume(s.disk, diskSize)
	if err != nil {
		t.Fatal(err)
	}
	ext := v.Extension.(*volume.Extension)

	// Exported writable (twice): no mount until both exports end.
	for i := 0; i < 2; i++ {
		if err := ext.AcquireExportWrite(); err != nil {
			t.Fatalf("export %d: %v", i+1, err)
		}
	}
	if err := ext.AcquireMount(); !errors.Is(err, volume.ErrExportedWritable) {
		t.Fatalf("mount while exported: %v, want ErrExportedWritable", err)
	}
	ext.ReleaseExportWrite()
	if err := ext.AcquireMount(); !errors.Is(err, volume.ErrExportedWritable) {
		t.Fatalf("mount while still exported once: %v, want ErrExportedWritable", err)
	}
	ext.ReleaseExportWrite()
	// Mounted (twice, e.g. a mount in progress and a mount): no writable export.
	for i := 0; i < 2; i++ {
		if err := ext.AcquireMount(); err != nil {
			t.Fatalf("mount %d after the exports ended: %v", i+1, err)
		}
	}
	if err := ext.AcquireExportWrite(); !errors.Is(err, volume.ErrMounted) {
		t.Fatalf("export while mounted: %v, want ErrMounted", err)
	}
	ext.ReleaseMount()
	if err := ext.AcquireExportWrite(); !errors.Is(err, volume.ErrMounted) {
		t.Fatalf("export while still mounted once: %v, want ErrMounted", err)
	}
	ext.ReleaseMount()
	if err := ext.AcquireExportWrite(); err != nil {
		t.Fatalf("export after dismount: %v", err)
	}
	ext.ReleaseExportWrite()
	if errors.Is(volume.ErrMounted, volume.ErrExportedWritable) {
		t.Fatal("the two sentinels are not distinct")
	}
}

// TestVolumeExclusivityConcurrent races exporters and mounters: a writable
// export and a mount are never held at the same time.
func TestVolumeExclusivityConcurrent(t *testing.T) {
	s := newStack(t, 0, false)
	v, err := s.volumes.AddVolume(s.disk, diskSize)
	if err != nil {
		t.Fatal(err)
	}
	ext := v.Extension.(*volume.Extension)
	var exports, mounts, violations, exportsOK, mountsOK atomic.Int32
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				if (g+i)%2 == 0 {
					if ext.AcquireExportWrite() == nil {
						exportsOK.Add(1)
						exports.Add(1)
						if mounts.Load() > 0 {
							violations.Add(1)
						}
						exports.Add(-1)
						ext.ReleaseExportWrite()
					}
				} else if ext.AcquireMount() == nil {
					mountsOK.Add(1)
					mounts.Add(1)
					if exports.Load() > 0 {
						violations.Add(1)
					}
					mounts.Add(-1)
					ext.ReleaseMount()
				}
			}
		}()
	}
	wg.Wait()
	if violations.Load() != 0 {
		t.Fatalf("%d times a writable export and a mount were held together", violations.Load())
	}
	if exportsOK.Load() == 0 || mountsOK.Load() == 0 {
		t.Fatalf("exports %d, mounts %d succeeded: the race was one-sided", exportsOK.Load(), mountsOK.Load())
	}
	// Everything was released: both kinds work again.
	if err := ext.AcquireMount(); err != nil {
		t.Fatal(err)
	}
	ext.ReleaseMount()
	if err := ext.AcquireExportWrite(); err != nil {
		t.Fatal(err)
	}
	ext.ReleaseExportWrite()
}
