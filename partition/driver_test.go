package partition_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/partition"
)

const testDiskSize = 16 << 20

// partitioned is a memory disk with a partition table, its disk device and
// the partition devices the partition driver created for it.
type partitioned struct {
	m     *iomgr.Manager
	disks *disk.Driver
	parts *partition.Driver
	store *disk.MemStore
	disk  *iomgr.Device
	table *partition.Table
	devs  []*iomgr.Device
}

var layouts = map[string]struct {
	kind  partition.Kind
	specs []partition.Spec
}{
	// Three primaries, then an extended partition with two logicals.
	"mbr": {partition.MBR, []partition.Spec{{Size: 2 << 20, Type: "linux"}, {Size: 2 << 20, Type: "raw"},
		{Size: 2 << 20, Type: "fat32"}, {Size: 2 << 20, Type: "linux"}, {Size: partition.Rest, Type: "linux"}}},
	"gpt": {partition.GPT, []partition.Spec{{Size: 2 << 20, Type: "esp", Label: "EFI"}, {Size: 4 << 20, Type: "linux", Label: "data"},
		{Size: partition.Rest, Type: "raw", Label: "rest"}}},
}

func newPartitioned(t *testing.T, layout string, workers int) *partitioned {
	t.Helper()
	l := layouts[layout]
	m := iomgr.NewManager()
	p := &partitioned{m: m, disks: disk.NewDriver(m, disk.Options{Workers: workers}), parts: partition.NewDriver(m)}
	t.Cleanup(func() {
		p.parts.RemovePartitions(p.disk)
		p.disks.Close()
	})
	var err error
	if p.store, err = disk.NewMemStore(testDiskSize); err != nil {
		t.Fatal(err)
	}
	tab, err := partition.New(l.kind, testDiskSize, 512, l.specs, &partition.Options{Rand: rand.NewChaCha8([32]byte{1})})
	if err != nil {
		t.Fatal(err)
	}
	if err := tab.Write(p.store); err != nil {
		t.Fatal(err)
	}
	// Every partition starts out full of its own pattern, so that a stray
	// write or zeroing anywhere shows.
	for i, part := range tab.Partitions {
		block := pattern(64<<10, byte(0x40+i))
		for off := part.Start; off < part.End(); off += int64(len(block)) {
			if _, err := p.store.WriteAt(block[:min(int64(len(block)), part.End()-off)], off); err != nil {
				t.Fatal(err)
			}
		}
	}
	if p.disk, err = p.disks.AddDisk(p.store, 512, false); err != nil {
		t.Fatal(err)
	}
	var warns []partition.Warning
	p.table, warns, p.devs, err = p.parts.Enumerate(p.disk, "test")
	if err != nil || len(warns) > 0 {
		t.Fatalf("enumerate: %v %q", err, warns)
	}
	if len(p.devs) != len(l.specs) || len(p.table.Partitions) != len(l.specs) {
		t.Fatalf("%d devices, %d partitions, want %d", len(p.devs), len(p.table.Partitions), len(l.specs))
	}
	return p
}

// snapshot returns the whole store.
func (p *partitioned) snapshot(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, testDiskSize)
	if _, err := p.store.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

// changedOutside fails the test if after differs from before anywhere outside [lo, hi).
func changedOutside(t *testing.T, what string, before, after []byte, lo, hi int64) {
	t.Helper()
	if !bytes.Equal(before[:lo], after[:lo]) || !bytes.Equal(before[hi:], after[hi:]) {
		for i := range before {
			if before[i] != after[i] && (int64(i) < lo || int64(i) >= hi) {
				t.Fatalf("%s: byte %d outside [%d, %d) changed", what, i, lo, hi)
			}
		}
	}
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i/512) ^ byte(i*7) ^ seed
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

func dataSet(dev *iomgr.Device, req disk.DataSetRequest, out any) iomgr.Status {
	return control(dev, disk.IOCTLStorageManageDataSetAttributes, &req, out)
}

func forEach(t *testing.T, f func(t *testing.T, layout string, workers int)) {
	for _, layout := range []string{"mbr", "gpt"} {
		for _, w := range []int{0, 4} {
			t.Run(fmt.Sprintf("%s/workers=%d", layout, w), func(t *testing.T) { f(t, layout, w) })
		}
	}
}

func TestPartitionDriverTranslatesOffsets(t *testing.T) {
	forEach(t, func(t *testing.T, layout string, workers int) {
		p := newPartitioned(t, layout, workers)
		for i, dev := range p.devs {
			part := p.table.Partitions[i]
			if ext := dev.Extension.(*partition.Extension); ext.Disk != p.disk || ext.Partition.Start != part.Start || ext.Partition.Size != part.Size {
				t.Fatalf("partition %d extension %+v, table %+v", i+1, ext, part)
			}
			before := p.snapshot(t)
			head, tail := pattern(8192, byte(0x10+i)), pattern(4096, byte(0x20+i))
			if ios := transfer(dev, iomgr.MajorWrite, head, 0); ios.Status != iomgr.StatusSuccess || ios.Information != 8192 {
				t.Fatalf("partition %d: write at 0: %v", i+1, ios)
			}
			if ios := transfer(dev, iomgr.MajorWrite, tail, part.Size-4096); ios.Status != iomgr.StatusSuccess {
				t.Fatalf("partition %d: write of the last 4 KiB: %v", i+1, ios)
			}
			after := p.snapshot(t)
			if !bytes.Equal(after[part.Start:part.Start+8192], head) || !bytes.Equal(after[part.End()-4096:part.End()], tail) {
				t.Fatalf("partition %d (start %d): data not at the partition's disk offsets", i+1, part.Start)
			}
			changedOutside(t, fmt.Sprintf("partition %d writes", i+1), before, after, part.Start, part.End())
			got := make([]byte, 8192)
			if ios := transfer(dev, iomgr.MajorRead, got, 0); ios.Status != iomgr.StatusSuccess || !bytes.Equal(got, head) {
				t.Fatalf("partition %d: read back at 0: %v", i+1, ios)
			}
			// A read in the middle sees the pattern written at the partition's disk offset.
			mid := make([]byte, 4096)
			if ios := transfer(dev, iomgr.MajorRead, mid, 1<<20); ios.Status != iomgr.StatusSuccess || !bytes.Equal(mid, before[part.Start+1<<20:part.Start+1<<20+4096]) {
				t.Fatalf("partition %d: read at 1 MiB: %v", i+1, ios)
			}
		}
	})
}

func TestPartitionDriverBounds(t *testing.T) {
	forEach(t, func(t *testing.T, layout string, workers int) {
		p := newPartitioned(t, layout, workers)
		before := p.snapshot(t)
		for i, dev := range p.devs {
			size := p.table.Partitions[i].Size
			for _, c := range []struct {
				name string
				off  int64
				n    int
			}{
				{"crossing the end", size - 512, 1024},
				{"at the end", size, 512},
				{"beyond the end", size + 1<<20, 4096},
				{"negative offset", -512, 512},
				{"misaligned", 100, 512},
			} {
				for _, major := range []iomgr.MajorFunction{iomgr.MajorRead, iomgr.MajorWrite} {
					if ios := transfer(dev, major, pattern(c.n, 0xee), c.off); ios.Status != iomgr.StatusInvalidParameter {
						t.Errorf("partition %d: %v %s (%d at %d): %v, want STATUS_INVALID_PARAMETER", i+1, major, c.name, c.n, c.off, ios)
					}
				}
			}
			for _, c := range []struct {
				name string
				req  disk.DataSetRequest
			}{
				{"trim crossing the end", disk.DataSetRequest{Action: disk.DataSetTrim, Offset: size - 4096, Length: 1 << 20}},
				{"zero crossing the end", disk.DataSetRequest{Action: disk.DataSetZero, Offset: size - 4096, Length: 8192}},
				{"zero beyond the end", disk.DataSetRequest{Action: disk.DataSetZero, Offset: size, Length: 512}},
				{"trim at a negative offset", disk.DataSetRequest{Action: disk.DataSetTrim, Offset: -4096, Length: 8192}},
				{"trim of a negative length", disk.DataSetRequest{Action: disk.DataSetTrim, Offset: 4096, Length: -1}},
				{"allocation crossing the end", disk.DataSetRequest{Action: disk.DataSetAllocation, Offset: 0, Length: size + 512}},
			} {
				if st := dataSet(dev, c.req, new([]disk.Extent)); st != iomgr.StatusInvalidParameter {
					t.Errorf("partition %d: %s: %v, want STATUS_INVALID_PARAMETER", i+1, c.name, st)
				}
			}
			// Exactly up to the end is fine (and reads what is there).
			got := make([]byte, 4096)
			if ios := transfer(dev, iomgr.MajorRead, got, size-4096); ios.Status != iomgr.StatusSuccess {
				t.Errorf("partition %d: read of the last 4 KiB: %v", i+1, ios)
			}
		}
		if !bytes.Equal(before, p.snapshot(t)) {
			t.Fatal("refused requests changed the disk")
		}
	})
}

func TestPartitionDriverDataSetAndAllocation(t *testing.T) {
	forEach(t, func(t *testing.T, layout string, workers int) {
		p := newPartitioned(t, layout, workers)
		const chunk = disk.MemChunkSize
		i := 1 // the second partition: neither at the start nor the end of the disk
		dev, part := p.devs[i], p.table.Partitions[i]
		before := p.snapshot(t)
		// Trim everything but [128K, 192K), then ask for the first 512K.
		if st := dataSet(dev, disk.DataSetRequest{Action: disk.DataSetTrim, Offset: 0, Length: 2 * chunk}, nil); st != iomgr.StatusSuccess {
			t.Fatalf("trim: %v", st)
		}
		if st := dataSet(dev, disk.DataSetRequest{Action: disk.DataSetZero, Offset: 3 * chunk, Length: part.Size - 3*chunk}, nil); st != iomgr.StatusSuccess {
			t.Fatalf("zero: %v", st)
		}
		after := p.snapshot(t)
		changedOutside(t, "trim and zero", before, after, part.Start, part.End())
		if !bytes.Equal(after[part.Start+2*chunk:part.Start+3*chunk], before[part.Start+2*chunk:part.Start+3*chunk]) {
			t.Fatal("the chunk between the trim and the zeroing changed")
		}
		if !bytes.Equal(after[part.Start:part.Start+2*chunk], make([]byte, 2*chunk)) || !bytes.Equal(after[part.Start+3*chunk:part.End()], make([]byte, part.Size-3*chunk)) {
			t.Fatal("trimmed or zeroed range does not read as zeros")
		}
		var ext []disk.Extent
		if st := dataSet(dev, disk.DataSetRequest{Action: disk.DataSetAllocation, Offset: 0, Length: 8 * chunk}, &ext); st != iomgr.StatusSuccess {
			t.Fatalf("allocation: %v", st)
		}
		want := []disk.Extent{{Offset: 0, Length: 2 * chunk, Hole: true, Zero: true}, {Offset: 2 * chunk, Length: chunk},
			{Offset: 3 * chunk, Length: 5 * chunk, Hole: true, Zero: true}}
		if fmt.Sprint(ext) != fmt.Sprint(want) {
			t.Fatalf("allocation (partition-relative):\n got %v\nwant %v", ext, want)
		}
		ext = nil
		if st := dataSet(dev, disk.DataSetRequest{Action: disk.DataSetAllocation, Offset: 2 * chunk, Length: part.Size - 2*chunk}, &ext); st != iomgr.StatusSuccess {
			t.Fatalf("allocation to the end: %v", st)
		}
		want = []disk.Extent{{Offset: 2 * chunk, Length: chunk}, {Offset: 3 * chunk, Length: part.Size - 3*chunk, Hole: true, Zero: true}}
		if fmt.Sprint(ext) != fmt.Sprint(want) {
			t.Fatalf("allocation to the end:\n got %v\nwant %v", ext, want)
		}
	})
}

func TestPartitionDriverIOCTLs(t *testing.T) {
	forEach(t, func(t *testing.T, layout string, workers int) {
		p := newPartitioned(t, layout, workers)
		for i, dev := range p.devs {
			part := p.table.Partitions[i]
			var pi disk.PartitionInfo
			if st := control(dev, disk.IOCTLDiskGetPartitionInfoEx, nil, &pi); st != iomgr.StatusSuccess {
				t.Fatalf("partition info: %v", st)
			}
			style := disk.StyleMBR
			if layout == "gpt" {
				style = disk.StyleGPT
			}
			if pi.Style != style || pi.StartingOffset != part.Start || pi.PartitionLength != part.Size || pi.PartitionNumber != part.Index ||
				pi.Type != part.Type.String() || pi.Name != part.Name || pi.MBRType != part.Type.MBR || pi.GPTType != part.Type.GPT {
				t.Errorf("partition %d info %+v, table %+v", i+1, pi, part)
			}
			var n int64
			if st := control(dev, disk.IOCTLDiskGetLengthInfo, nil, &n); st != iomgr.StatusSuccess || n != part.Size {
				t.Errorf("partition %d length: %v %d, want %d", i+1, st, n, part.Size)
			}
			if st := control(dev, disk.IOCTLDiskGetPartitionInfoEx, nil, &n); st != iomgr.StatusInvalidUserBuffer {
				t.Errorf("partition info into an int64: %v", st)
			}
			// Other controls go to the disk.
			var g disk.Geometry
			if st := control(dev, disk.IOCTLDiskGetDriveGeometry, nil, &g); st != iomgr.StatusSuccess || g.DiskSize != testDiskSize || g.BytesPerSector != 512 {
				t.Errorf("geometry through partition %d: %v %+v", i+1, st, g)
			}
			if st := control(dev, disk.IOCTLDiskIsWritable, nil, nil); st != iomgr.StatusSuccess {
				t.Errorf("is writable through partition %d: %v", i+1, st)
			}
			if st := control(dev, disk.IOCTLStorageManageDataSetAttributes, 42, nil); st != iomgr.StatusInvalidParameter {
				t.Errorf("data set with a bad input: %v", st)
			}
			if ios := transfer(dev, iomgr.MajorFlushBuffers, nil, 0); ios.Status != iomgr.StatusSuccess {
				t.Errorf("flush through partition %d: %v", i+1, ios)
			}
		}
	})
}

func TestPartitionDriverNamesAndRemove(t *testing.T) {
	p := newPartitioned(t, "mbr", 0)
	for i, dev := range p.devs {
		name := fmt.Sprintf(`\Device\Harddisk0\Partition%d`, i+1)
		got, rest, err := p.m.LookupDevice(name)
		if err != nil || got != dev || rest != "" {
			t.Errorf("lookup %s: %v %q %v", name, got, rest, err)
		}
		if dev.SectorSize != 512 || dev.StackSize != p.disk.StackSize+1 {
			t.Errorf("partition %d: sector size %d, stack size %d (disk's %d)", i+1, dev.SectorSize, dev.StackSize, p.disk.StackSize)
		}
	}
	if got := p.parts.Partitions(p.disk); len(got) != len(p.devs) {
		t.Fatalf("Partitions() = %v", got)
	}
	before := p.m.DeviceCount()
	p.parts.RemovePartitions(p.disk)
	if n := p.m.DeviceCount(); n != before-len(p.devs) {
		t.Errorf("%d devices after RemovePartitions, want %d", n, before-len(p.devs))
	}
	if _, _, err := p.m.LookupDevice(`\Device\Harddisk0\Partition1`); err == nil {
		t.Error("a removed partition still resolves")
	}
	if got := p.parts.Partitions(p.disk); len(got) != 0 {
		t.Errorf("Partitions() after removal = %v", got)
	}
	// Enumerating again recreates them.
	_, _, devs, err := p.parts.Enumerate(p.disk, "test")
	if err != nil || len(devs) != len(p.devs) {
		t.Fatalf("enumerate again: %v, %d devices", err, len(devs))
	}
}

// seen is one request a filter saw.
type seen struct {
	major      iomgr.MajorFunction
	offset     int64 // read/write byte offset or data-set offset
	associated bool  // the IRP is an associated IRP (iomgr.PassDown's short-stack path)
}

// countingFilter is a pass-through disk filter that records what passes.
type countingFilter struct {
	lower *iomgr.Device
	mu    sync.Mutex
	seen  []seen
}

func (f *countingFilter) take() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.seen
	f.seen = nil
	return s
}

func filterCompletion(_ *iomgr.Device, irp *iomgr.IRP, _ any) iomgr.Status {
	if irp.PendingReturned {
		irp.MarkPending()
	}
	return iomgr.StatusSuccess
}

// attachCountingFilter attaches a pass-through filter on top of target's
// stack, as a disk filter loaded after the partitions were enumerated.
func attachCountingFilter(t *testing.T, m *iomgr.Manager, target *iomgr.Device) *countingFilter {
	t.Helper()
	drv := m.CreateDriver(`\Driver\CountingFilter`)
	drv.SetDispatchAll(func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		f := dev.Extension.(*countingFilter)
		sl := irp.CurrentStackLocation()
		s := seen{major: sl.Major, associated: irp.Master() != nil}
		switch sl.Major {
		case iomgr.MajorRead:
			s.offset = sl.Parameters.Read.ByteOffset
		case iomgr.MajorWrite:
			s.offset = sl.Parameters.Write.ByteOffset
		case iomgr.MajorDeviceControl:
			if req, ok := sl.Parameters.DeviceIoControl.Input.(*disk.DataSetRequest); ok {
				s.offset = req.Offset
			}
		}
		f.mu.Lock()
		f.seen = append(f.seen, s)
		f.mu.Unlock()
		irp.CopyCurrentStackLocationToNext()
		irp.SetCompletionRoutine(filterCompletion, nil, true, true, true)
		return iomgr.CallDriver(f.lower, irp)
	})
	drv.FastIO = &iomgr.FastIODispatch{DetachDevice: func(source, target *iomgr.Device) {
		if err := m.DetachDevice(target); err != nil {
			panic(err)
		}
		m.DeleteDevice(source)
	}}
	dev, err := m.CreateDevice(drv, "", iomgr.DeviceDisk, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := &countingFilter{}
	dev.Extension = f
	if f.lower, err = m.AttachDeviceToDeviceStack(dev, target); err != nil {
		t.Fatal(err)
	}
	dev.ClearFlags(iomgr.DeviceInitializing)
	return f
}

// TestPartitionDriverFilterAttachedLater attaches a disk filter after the
// partition devices were made: their IRPs have one stack location too few
// for the deeper disk stack, so the partition driver forwards them in
// associated IRPs (iomgr.PassDownWith's short-stack path). The filter sees
// every request, translated, and allocation answers still come back
// partition-relative.
func TestPartitionDriverFilterAttachedLater(t *testing.T) {
	forEach(t, func(t *testing.T, layout string, workers int) {
		p := newPartitioned(t, layout, workers)
		f := attachCountingFilter(t, p.m, p.disk)
		i := len(p.devs) - 1 // the last partition (a logical one on MBR)
		dev, part := p.devs[i], p.table.Partitions[i]
		if dev.StackSize > iomgr.GetAttachedDevice(p.disk).StackSize {
			t.Fatalf("the partition's stack size %d already fits the filtered disk stack", dev.StackSize)
		}
		before := p.snapshot(t)

		want := pattern(8192, 0x99)
		if ios := transfer(dev, iomgr.MajorWrite, want, 1<<20); ios.Status != iomgr.StatusSuccess || ios.Information != 8192 {
			t.Fatalf("write: %v", ios)
		}
		got := make([]byte, 8192)
		if ios := transfer(dev, iomgr.MajorRead, got, 1<<20); ios.Status != iomgr.StatusSuccess || !bytes.Equal(got, want) {
			t.Fatalf("read: %v", ios)
		}
		if st := dataSet(dev, disk.DataSetRequest{Action: disk.DataSetTrim, Offset: 2 << 20, Length: 128 << 10}, nil); st != iomgr.StatusSuccess {
			t.Fatalf("trim: %v", st)
		}
		var ext []disk.Extent
		if st := dataSet(dev, disk.DataSetRequest{Action: disk.DataSetAllocation, Offset: 2 << 20, Length: 256 << 10}, &ext); st != iomgr.StatusSuccess {
			t.Fatalf("allocation: %v", st)
		}
		wantExt := []disk.Extent{{Offset: 2 << 20, Length: 128 << 10, Hole: true, Zero: true}, {Offset: 2<<20 + 128<<10, Length: 128 << 10}}
		if fmt.Sprint(ext) != fmt.Sprint(wantExt) {
			t.Errorf("allocation through the filter:\n got %v\nwant %v", ext, wantExt)
		}
		if ios := transfer(dev, iomgr.MajorFlushBuffers, nil, 0); ios.Status != iomgr.StatusSuccess {
			t.Fatalf("flush: %v", ios)
		}
		// Out of bounds is still refused, before the filter sees anything.
		if ios := transfer(dev, iomgr.MajorWrite, want, part.Size-4096); ios.Status != iomgr.StatusInvalidParameter {
			t.Fatalf("write across the end: %v", ios)
		}
		if st := dataSet(dev, disk.DataSetRequest{Action: disk.DataSetZero, Offset: part.Size - 4096, Length: 8192}, nil); st != iomgr.StatusInvalidParameter {
			t.Fatalf("zero across the end: %v", st)
		}
		after := p.snapshot(t)
		changedOutside(t, "requests through the filter", before, after, part.Start, part.End())
		if !bytes.Equal(after[part.Start+1<<20:part.Start+1<<20+8192], want) {
			t.Fatal("data not at the translated offset")
		}

		wantSeen := []seen{
			{iomgr.MajorWrite, part.Start + 1<<20, true},
			{iomgr.MajorRead, part.Start + 1<<20, true},
			{iomgr.MajorDeviceControl, part.Start + 2<<20, true},
			{iomgr.MajorDeviceControl, part.Start + 2<<20, true},
			{iomgr.MajorFlushBuffers, 0, true},
		}
		if got := f.take(); fmt.Sprint(got) != fmt.Sprint(wantSeen) {
			t.Fatalf("the filter saw\n %v\nwant\n %v", got, wantSeen)
		}

		// Partition devices made after the filter fit the deeper stack and
		// need no associated IRP.
		_, _, devs, err := p.parts.Enumerate(p.disk, "test")
		if err != nil {
			t.Fatal(err)
		}
		f.take() // the table reads
		if ios := transfer(devs[i], iomgr.MajorRead, got, 1<<20); ios.Status != iomgr.StatusSuccess || !bytes.Equal(got, want) {
			t.Fatalf("read through a new partition device: %v", ios)
		}
		if got := f.take(); fmt.Sprint(got) != fmt.Sprint([]seen{{iomgr.MajorRead, part.Start + 1<<20, false}}) {
			t.Fatalf("the filter saw %v for a partition device made after it", got)
		}
	})
}

// TestPartitionDriverFilterConcurrent sends many requests at once through a
// late filter with four disk workers: the associated-IRP path must complete
// each exactly once, with the right data.
func TestPartitionDriverFilterConcurrent(t *testing.T) {
	p := newPartitioned(t, "gpt", 4)
	f := attachCountingFilter(t, p.m, p.disk)
	dev := p.devs[1]
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := pattern(4096, byte(i+1))
			if ios := transfer(dev, iomgr.MajorWrite, want, int64(i)*4096); ios.Status != iomgr.StatusSuccess {
				errs <- fmt.Sprintf("write %d: %v", i, ios)
				return
			}
			got := make([]byte, 4096)
			if ios := transfer(dev, iomgr.MajorRead, got, int64(i)*4096); ios.Status != iomgr.StatusSuccess || !bytes.Equal(got, want) {
				errs <- fmt.Sprintf("read %d: %v", i, ios)
			}
		}()
	}
	wg.Wait()
	close(errs)
	var msgs []string
	for m := range errs {
		msgs = append(msgs, m)
	}
	if len(msgs) > 0 {
		t.Fatal(strings.Join(msgs, "\n"))
	}
	if n := len(f.take()); n != 64 {
		t.Fatalf("the filter saw %d requests, want 64", n)
	}
}
