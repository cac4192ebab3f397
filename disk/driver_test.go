package disk_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// probeStore is a MemStore that counts Sync calls and the transfers running
// at once, and can hold every transfer at a gate until the test opens it.
type probeStore struct {
	*disk.MemStore
	syncs       atomic.Int32
	inFlight    atomic.Int32
	maxInFlight atomic.Int32
	gate        chan struct{} // nil: transfers run at once
}

func (s *probeStore) enter() {
	n := s.inFlight.Add(1)
	for {
		m := s.maxInFlight.Load()
		if n <= m || s.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	if s.gate != nil {
		<-s.gate
	}
}

func (s *probeStore) ReadAt(p []byte, off int64) (int, error) {
	s.enter()
	defer s.inFlight.Add(-1)
	return s.MemStore.ReadAt(p, off)
}

func (s *probeStore) WriteAt(p []byte, off int64) (int, error) {
	s.enter()
	defer s.inFlight.Add(-1)
	return s.MemStore.WriteAt(p, off)
}

func (s *probeStore) Sync() error {
	s.syncs.Add(1)
	return s.MemStore.Sync()
}

const diskSize = 4 << 20

// newDisk loads a disk driver with the given workers and adds a 4 MiB
// memory disk of 512-byte sectors.
func newDisk(t *testing.T, workers int, readOnly bool) (*iomgr.Manager, *disk.Driver, *iomgr.Device, *probeStore) {
	t.Helper()
	m := iomgr.NewManager()
	drv := disk.NewDriver(m, disk.Options{Workers: workers})
	t.Cleanup(func() { drv.Close() })
	ms, err := disk.NewMemStore(diskSize)
	if err != nil {
		t.Fatal(err)
	}
	st := &probeStore{MemStore: ms}
	dev, err := drv.AddDisk(st, 512, readOnly)
	if err != nil {
		t.Fatal(err)
	}
	return m, drv, dev, st
}

// transfer sends one synchronous read, write, flush or shutdown IRP.
func transfer(dev *iomgr.Device, major iomgr.MajorFunction, buf []byte, off int64, slFlags uint8) iomgr.IOStatusBlock {
	irp := iomgr.BuildSynchronousFSDRequest(major, dev, buf, off)
	irp.NextStackLocation().Flags |= slFlags
	ios := iomgr.CallDriverAndWait(dev, irp)
	iomgr.FreeIRP(irp)
	return ios
}

// control sends one synchronous device I/O control request.
func control(dev *iomgr.Device, code uint32, input, output any) iomgr.Status {
	irp := iomgr.BuildDeviceIoControlRequest(code, dev, input, output, false)
	st := iomgr.CallDriverAndWait(dev, irp).Status
	iomgr.FreeIRP(irp)
	return st
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31) ^ seed
		if b[i] == 0 {
			b[i] = seed | 1
		}
	}
	return b
}

func storeBytes(t *testing.T, st *probeStore, off int64, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := st.MemStore.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

func forWorkers(t *testing.T, f func(t *testing.T, workers int)) {
	for _, w := range []int{0, 4} {
		t.Run(fmt.Sprintf("workers=%d", w), func(t *testing.T) { f(t, w) })
	}
}

func TestDiskDriverReadWriteRoundTrip(t *testing.T) {
	forWorkers(t, func(t *testing.T, workers int) {
		_, _, dev, st := newDisk(t, workers, false)
		cases := []struct {
			off int64
			n   int
		}{{0, 512}, {4096, 8192}, {1<<20 + 512, 3 * 512}, {diskSize - 512, 512}, {diskSize - 128<<10, 128 << 10}}
		for i, c := range cases {
			want := pattern(c.n, byte(i+1))
			if ios := transfer(dev, iomgr.MajorWrite, want, c.off, 0); ios.Status != iomgr.StatusSuccess || ios.Information != uint64(c.n) {
				t.Fatalf("write %d at %d: %v", c.n, c.off, ios)
			}
			if got := storeBytes(t, st, c.off, c.n); !bytes.Equal(got, want) {
				t.Fatalf("store after write %d at %d differs", c.n, c.off)
			}
			got := make([]byte, c.n)
			if ios := transfer(dev, iomgr.MajorRead, got, c.off, 0); ios.Status != iomgr.StatusSuccess || ios.Information != uint64(c.n) {
				t.Fatalf("read %d at %d: %v", c.n, c.off, ios)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("read back %d at %d differs", c.n, c.off)
			}
		}
		// A hole reads as zeros.
		got := pattern(512, 9)
		if ios := transfer(dev, iomgr.MajorRead, got, 2<<20, 0); ios.Status != iomgr.StatusSuccess || !bytes.Equal(got, make([]byte, 512)) {
			t.Fatalf("read of a hole: %v", ios)
		}
		if st.syncs.Load() != 0 {
			t.Fatalf("plain writes synced %d times", st.syncs.Load())
		}
	})
}

func TestDiskDriverRejectsBadTransfers(t *testing.T) {
	forWorkers(t, func(t *testing.T, workers int) {
		_, _, dev, st := newDisk(t, workers, false)
		cases := []struct {
			name string
			off  int64
			n    int
		}{
			{"misaligned offset", 100, 512},
			{"misaligned offset in the last sector", diskSize - 511, 511},
			{"misaligned length", 512, 100},
			{"misaligned length across sectors", 0, 1000},
			{"negative offset", -512, 512},
			{"offset at the end", diskSize, 512},
			{"crossing the end", diskSize - 512, 1024},
			{"far beyond the end", 1 << 40, 512},
		}
		for _, c := range cases {
			for _, major := range []iomgr.MajorFunction{iomgr.MajorRead, iomgr.MajorWrite} {
				buf := pattern(c.n, 7)
				ios := transfer(dev, major, buf, c.off, 0)
				if ios.Status != iomgr.StatusInvalidParameter || ios.Information != 0 {
					t.Errorf("%s: %v %d at %d: %v, want STATUS_INVALID_PARAMETER", c.name, major, c.n, c.off, ios)
				}
			}
		}
		// A length beyond the buffer is refused before the store is touched.
		irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorWrite, dev, pattern(512, 3), 0)
		irp.NextStackLocation().Parameters.Write.Length = 1024
		if ios := iomgr.CallDriverAndWait(dev, irp); ios.Status != iomgr.StatusInvalidUserBuffer {
			t.Errorf("write with length > buffer: %v, want STATUS_INVALID_USER_BUFFER", ios)
		}
		iomgr.FreeIRP(irp)
		if n := st.Allocated(); n != 0 {
			t.Fatalf("refused writes allocated %d bytes of the store", n)
		}
	})
}

func TestDiskDriverReadOnly(t *testing.T) {
	forWorkers(t, func(t *testing.T, workers int) {
		_, _, dev, st := newDisk(t, workers, true)
		if !dev.Extension.(*disk.Disk).ReadOnly || dev.Characteristics&iomgr.ReadOnlyDevice == 0 {
			t.Fatalf("read-only disk: extension %+v, characteristics %v", dev.Extension, dev.Characteristics)
		}
		if ios := transfer(dev, iomgr.MajorWrite, pattern(4096, 1), 0, 0); ios.Status != iomgr.StatusMediaWriteProtected {
			t.Errorf("write: %v, want STATUS_MEDIA_WRITE_PROTECTED", ios)
		}
		if ios := transfer(dev, iomgr.MajorWrite, pattern(512, 1), 512, iomgr.SLWriteThrough); ios.Status != iomgr.StatusMediaWriteProtected {
			t.Errorf("write-through: %v, want STATUS_MEDIA_WRITE_PROTECTED", ios)
		}
		if ios := transfer(dev, iomgr.MajorRead, make([]byte, 4096), 0, 0); ios.Status != iomgr.StatusSuccess {
			t.Errorf("read: %v", ios)
		}
		if ios := transfer(dev, iomgr.MajorFlushBuffers, nil, 0, 0); ios.Status != iomgr.StatusSuccess {
			t.Errorf("flush: %v", ios)
		}
		if st := control(dev, disk.IOCTLDiskIsWritable, nil, nil); st != iomgr.StatusMediaWriteProtected {
			t.Errorf("IOCTL_DISK_IS_WRITABLE: %v, want STATUS_MEDIA_WRITE_PROTECTED", st)
		}
		for _, a := range []disk.DataSetAction{disk.DataSetTrim, disk.DataSetZero} {
			if st := control(dev, disk.IOCTLStorageManageDataSetAttributes, &disk.DataSetRequest{Action: a, Offset: 0, Length: 4096}, nil); st != iomgr.StatusMediaWriteProtected {
				t.Errorf("data set %#x: %v, want STATUS_MEDIA_WRITE_PROTECTED", a, st)
			}
		}
		var ext []disk.Extent
		if st := control(dev, disk.IOCTLStorageManageDataSetAttributes, &disk.DataSetRequest{Action: disk.DataSetAllocation, Length: diskSize}, &ext); st != iomgr.StatusSuccess {
			t.Errorf("allocation on a read-only disk: %v", st)
		}
		if st.Allocated() != 0 || st.syncs.Load() != 0 {
			t.Fatalf("read-only disk: %d bytes allocated, %d syncs", st.Allocated(), st.syncs.Load())
		}
	})
}

func TestDiskDriverWriteThroughAndFlush(t *testing.T) {
	forWorkers(t, func(t *testing.T, workers int) {
		_, _, dev, st := newDisk(t, workers, false)
		if ios := transfer(dev, iomgr.MajorWrite, pattern(4096, 1), 0, 0); ios.Status != iomgr.StatusSuccess || st.syncs.Load() != 0 {
			t.Fatalf("plain write: %v, %d syncs", ios, st.syncs.Load())
		}
		want := pattern(4096, 2)
		if ios := transfer(dev, iomgr.MajorWrite, want, 8192, iomgr.SLWriteThrough); ios.Status != iomgr.StatusSuccess || ios.Information != 4096 {
			t.Fatalf("write-through: %v", ios)
		}
		if n := st.syncs.Load(); n != 1 {
			t.Fatalf("write-through (FUA) synced %d times, want 1", n)
		}
		if !bytes.Equal(storeBytes(t, st, 8192, 4096), want) {
			t.Fatal("write-through data not in the store")
		}
		if ios := transfer(dev, iomgr.MajorFlushBuffers, nil, 0, 0); ios.Status != iomgr.StatusSuccess || st.syncs.Load() != 2 {
			t.Fatalf("flush: %v, %d syncs", ios, st.syncs.Load())
		}
		if ios := transfer(dev, iomgr.MajorShutdown, nil, 0, 0); ios.Status != iomgr.StatusSuccess || st.syncs.Load() != 3 {
			t.Fatalf("shutdown: %v, %d syncs", ios, st.syncs.Load())
		}
		// A flush that the store cannot carry out fails.
		st.MemStore.Close()
		if ios := transfer(dev, iomgr.MajorFlushBuffers, nil, 0, 0); ios.Status.IsSuccess() {
			t.Fatalf("flush of a closed store: %v", ios)
		}
	})
}

func TestDiskDriverIOCTLs(t *testing.T) {
	forWorkers(t, func(t *testing.T, workers int) {
		_, _, dev, st := newDisk(t, workers, false)
		var g disk.Geometry
		if s := control(dev, disk.IOCTLDiskGetDriveGeometry, nil, &g); s != iomgr.StatusSuccess {
			t.Fatalf("geometry: %v", s)
		}
		wantG := disk.Geometry{Cylinders: diskSize / 512 / (255 * 63), MediaType: disk.FixedMedia, TracksPerCylinder: 255,
			SectorsPerTrack: 63, BytesPerSector: 512, DiskSize: diskSize}
		if g != wantG {
			t.Errorf("geometry %+v, want %+v", g, wantG)
		}
		var n int64
		if s := control(dev, disk.IOCTLDiskGetLengthInfo, nil, &n); s != iomgr.StatusSuccess || n != diskSize {
			t.Errorf("length: %v %d", s, n)
		}
		var pi disk.PartitionInfo
		if s := control(dev, disk.IOCTLDiskGetPartitionInfoEx, nil, &pi); s != iomgr.StatusSuccess ||
			pi.Style != disk.StyleRaw || pi.StartingOffset != 0 || pi.PartitionLength != diskSize || pi.PartitionNumber != 0 {
			t.Errorf("partition info: %v %+v", s, pi)
		}
		if s := control(dev, disk.IOCTLDiskIsWritable, nil, nil); s != iomgr.StatusSuccess {
			t.Errorf("is writable: %v", s)
		}
		// Wrong output buffers and unknown codes.
		for name, s := range map[string]iomgr.Status{
			"geometry into int64":       control(dev, disk.IOCTLDiskGetDriveGeometry, nil, &n),
			"length into nil":           control(dev, disk.IOCTLDiskGetLengthInfo, nil, nil),
			"partition info into int64": control(dev, disk.IOCTLDiskGetPartitionInfoEx, nil, &n),
		} {
			if s != iomgr.StatusInvalidUserBuffer {
				t.Errorf("%s: %v, want STATUS_INVALID_USER_BUFFER", name, s)
			}
		}
		if s := control(dev, 0x00071234, nil, nil); s != iomgr.StatusInvalidDeviceRequest {
			t.Errorf("unknown control code: %v, want STATUS_INVALID_DEVICE_REQUEST", s)
		}

		// Data set management: allocation, trim, zero.
		const chunk = disk.MemChunkSize
		dataSet := func(req disk.DataSetRequest, out any) iomgr.Status {
			return control(dev, disk.IOCTLStorageManageDataSetAttributes, &req, out)
		}
		alloc := func(off, length int64) string {
			t.Helper()
			var ext []disk.Extent
			if s := dataSet(disk.DataSetRequest{Action: disk.DataSetAllocation, Offset: off, Length: length}, &ext); s != iomgr.StatusSuccess {
				t.Fatalf("allocation %d+%d: %v", off, length, s)
			}
			return fmt.Sprint(ext)
		}
		for _, c := range []int64{0, 2, 3} {
			if ios := transfer(dev, iomgr.MajorWrite, pattern(chunk, byte(c+1)), c*chunk, 0); ios.Status != iomgr.StatusSuccess {
				t.Fatal(ios)
			}
		}
		ext := func(off, length int64, hole bool) disk.Extent {
			return disk.Extent{Offset: off, Length: length, Hole: hole, Zero: hole}
		}
		want := fmt.Sprint([]disk.Extent{ext(0, chunk, false), ext(chunk, chunk, true), ext(2*chunk, 2*chunk, false), ext(4*chunk, diskSize-4*chunk, true)})
		if got := alloc(0, diskSize); got != want {
			t.Errorf("allocation:\n got %s\nwant %s", got, want)
		}
		if got, want := alloc(chunk/2, 2*chunk), fmt.Sprint([]disk.Extent{ext(chunk/2, chunk/2, false), ext(chunk, chunk, true), ext(2*chunk, chunk/2, false)}); got != want {
			t.Errorf("allocation of a sub-range:\n got %s\nwant %s", got, want)
		}
		if s := dataSet(disk.DataSetRequest{Action: disk.DataSetTrim, Offset: 0, Length: chunk}, nil); s != iomgr.StatusSuccess {
			t.Fatalf("trim: %v", s)
		}
		if s := dataSet(disk.DataSetRequest{Action: disk.DataSetZero, Offset: 2 * chunk, Length: chunk}, nil); s != iomgr.StatusSuccess {
			t.Fatalf("zero: %v", s)
		}
		if s := dataSet(disk.DataSetRequest{Action: disk.DataSetZero, Offset: 3 * chunk, Length: chunk, Flags: disk.ZeroNoHole}, nil); s != iomgr.StatusSuccess {
			t.Fatalf("zero, no hole: %v", s)
		}
		if s := dataSet(disk.DataSetRequest{Action: disk.DataSetPrefetch, Offset: 0, Length: chunk}, nil); s != iomgr.StatusSuccess {
			t.Fatalf("prefetch: %v", s)
		}
		got := pattern(4*chunk, 5)
		if ios := transfer(dev, iomgr.MajorRead, got, 0, 0); ios.Status != iomgr.StatusSuccess || !bytes.Equal(got, make([]byte, 4*chunk)) {
			t.Fatalf("trimmed and zeroed range does not read as zeros: %v", ios)
		}
		want = fmt.Sprint([]disk.Extent{ext(0, 3*chunk, true), ext(3*chunk, chunk, false), ext(4*chunk, diskSize-4*chunk, true)})
		if got := alloc(0, diskSize); got != want {
			t.Errorf("allocation after trim and zero:\n got %s\nwant %s", got, want)
		}
		if st.Allocated() != chunk {
			t.Errorf("store holds %d bytes, want %d (the no-hole chunk)", st.Allocated(), chunk)
		}

		// Bad data-set requests.
		for _, c := range []struct {
			name string
			req  disk.DataSetRequest
			out  any
			want iomgr.Status
		}{
			{"trim past the end", disk.DataSetRequest{Action: disk.DataSetTrim, Offset: diskSize - 512, Length: 1024}, nil, iomgr.StatusInvalidParameter},
			{"zero at a negative offset", disk.DataSetRequest{Action: disk.DataSetZero, Offset: -512, Length: 512}, nil, iomgr.StatusInvalidParameter},
			{"allocation beyond the end", disk.DataSetRequest{Action: disk.DataSetAllocation, Offset: diskSize + 512, Length: 512}, new([]disk.Extent), iomgr.StatusInvalidParameter},
			{"negative length", disk.DataSetRequest{Action: disk.DataSetTrim, Offset: 0, Length: -1}, nil, iomgr.StatusInvalidParameter},
			{"unknown action", disk.DataSetRequest{Action: 0x77, Offset: 0, Length: 512}, nil, iomgr.StatusInvalidDeviceRequest},
			{"allocation without an output slice", disk.DataSetRequest{Action: disk.DataSetAllocation, Offset: 0, Length: 512}, &n, iomgr.StatusInvalidUserBuffer},
		} {
			if s := dataSet(c.req, c.out); s != c.want {
				t.Errorf("%s: %v, want %v", c.name, s, c.want)
			}
		}
		if s := control(dev, disk.IOCTLStorageManageDataSetAttributes, "not a request", nil); s != iomgr.StatusInvalidParameter {
			t.Errorf("data set with a bad input: %v, want STATUS_INVALID_PARAMETER", s)
		}
		if got := storeBytes(t, st, diskSize-1024, 1024); !bytes.Equal(got, make([]byte, 1024)) || st.Allocated() != chunk {
			t.Fatal("refused data-set requests changed the store")
		}
	})
}

// TestDiskDriverWorkersPend sends many requests at once to a disk with four
// workers: every CallDriver returns STATUS_PENDING, four transfers run at
// the same time (never more), and every request completes with its data.
func TestDiskDriverWorkersPend(t *testing.T) {
	const workers, requests, size = 4, 64, 4096
	_, _, dev, st := newDisk(t, workers, false)
	st.gate = make(chan struct{})

	// Open the gate once all four workers hold a transfer: proof that the
	// requests really are queued and executed concurrently.
	opened := make(chan bool, 1)
	go func() {
		deadline := time.Now().Add(10 * time.Second)
		for st.inFlight.Load() < workers && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		opened <- st.inFlight.Load() >= workers
		close(st.gate)
	}()

	var wg sync.WaitGroup
	errs := make(chan error, 2*requests+1)
	run := func(major iomgr.MajorFunction, buf []byte, off int64) {
		irp := iomgr.BuildSynchronousFSDRequest(major, dev, buf, off)
		defer iomgr.FreeIRP(irp)
		s := iomgr.CallDriver(dev, irp)
		if s != iomgr.StatusPending {
			errs <- fmt.Errorf("%v at %d: CallDriver returned %v, want STATUS_PENDING", major, off, s)
			return
		}
		irp.Wait()
		if !irp.PendingReturned || irp.IOStatus.Status != iomgr.StatusSuccess || irp.IOStatus.Information != uint64(len(buf)) {
			errs <- fmt.Errorf("%v at %d: pending returned %v, status %v", major, off, irp.PendingReturned, irp.IOStatus)
		}
	}
	for i := 0; i < requests; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(iomgr.MajorWrite, pattern(size, byte(i)), int64(i)*size)
		}()
	}
	// A data-set request is queued too.
	wg.Add(1)
	go func() {
		defer wg.Done()
		irp := iomgr.BuildDeviceIoControlRequest(disk.IOCTLStorageManageDataSetAttributes, dev,
			&disk.DataSetRequest{Action: disk.DataSetTrim, Offset: 2 << 20, Length: 1 << 20}, nil, false)
		defer iomgr.FreeIRP(irp)
		if s := iomgr.CallDriver(dev, irp); s != iomgr.StatusPending {
			errs <- fmt.Errorf("data set: CallDriver returned %v, want STATUS_PENDING", s)
			return
		}
		irp.Wait()
		if irp.IOStatus.Status != iomgr.StatusSuccess {
			errs <- fmt.Errorf("data set: %v", irp.IOStatus)
		}
	}()
	waitGroup(t, &wg, 20*time.Second)
	if !<-opened {
		t.Errorf("the %d workers never held %d transfers at once", workers, workers)
	}
	if m := st.maxInFlight.Load(); m > workers {
		t.Errorf("%d transfers ran at once with %d workers", m, workers)
	}
	for i := 0; i < requests; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, size)
			run(iomgr.MajorRead, buf, int64(i)*size)
			if !bytes.Equal(buf, pattern(size, byte(i))) {
				errs <- fmt.Errorf("read %d: wrong data", i)
			}
		}()
	}
	waitGroup(t, &wg, 20*time.Second)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func waitGroup(t *testing.T, wg *sync.WaitGroup, limit time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatalf("requests did not complete within %v", limit)
	}
}

// TestDiskDriverWithoutWorkersCompletesInline: with no workers every request
// completes in the caller's goroutine and is never pending.
func TestDiskDriverWithoutWorkersCompletesInline(t *testing.T) {
	_, _, dev, _ := newDisk(t, 0, false)
	for _, major := range []iomgr.MajorFunction{iomgr.MajorWrite, iomgr.MajorRead, iomgr.MajorFlushBuffers} {
		var buf []byte
		if major != iomgr.MajorFlushBuffers {
			buf = pattern(4096, 1)
		}
		irp := iomgr.BuildSynchronousFSDRequest(major, dev, buf, 0)
		if s := iomgr.CallDriver(dev, irp); s != iomgr.StatusSuccess || irp.PendingReturned {
			t.Errorf("%v: CallDriver returned %v (pending returned %v), want STATUS_SUCCESS", major, s, irp.PendingReturned)
		}
		iomgr.FreeIRP(irp)
	}
}

func TestDiskDriverAddAndRemove(t *testing.T) {
	m := iomgr.NewManager()
	drv := disk.NewDriver(m, disk.Options{})
	defer drv.Close()
	newStore := func(size int64) *disk.MemStore {
		s, err := disk.NewMemStore(size)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, ss := range []uint32{0, 256, 1000, 8192} {
		if _, err := drv.AddDisk(newStore(1<<20), ss, false); !errors.Is(err, iomgr.StatusInvalidParameter) {
			t.Errorf("sector size %d: %v, want STATUS_INVALID_PARAMETER", ss, err)
		}
	}
	if _, err := drv.AddDisk(newStore(4095), 4096, false); !errors.Is(err, iomgr.StatusInvalidParameter) {
		t.Errorf("store smaller than a sector: %v", err)
	}
	// A size that is not a whole number of sectors is rounded down.
	s0 := newStore(10*4096 + 512)
	d0, err := drv.AddDisk(s0, 4096, false)
	if err != nil {
		t.Fatal(err)
	}
	dk := d0.Extension.(*disk.Disk)
	if dk.Size != 10*4096 || dk.SectorSize != 4096 || d0.SectorSize != 4096 || dk.Number != 0 {
		t.Fatalf("disk 0: %+v, device sector size %d", dk, d0.SectorSize)
	}
	// 4096-byte sectors: 512-byte alignment is not enough; the tail past the last whole sector is out of range.
	if ios := transfer(d0, iomgr.MajorWrite, pattern(4096, 1), 512, 0); ios.Status != iomgr.StatusInvalidParameter {
		t.Errorf("512-aligned write on a 4096-byte-sector disk: %v", ios)
	}
	if ios := transfer(d0, iomgr.MajorRead, make([]byte, 4096), 10*4096, 0); ios.Status != iomgr.StatusInvalidParameter {
		t.Errorf("read of the partial last sector: %v", ios)
	}
	if ios := transfer(d0, iomgr.MajorWrite, pattern(4096, 1), 9*4096, 0); ios.Status != iomgr.StatusSuccess {
		t.Errorf("write of the last sector: %v", ios)
	}
	d1, err := drv.AddDisk(newStore(1<<20), 512, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		want *iomgr.Device
	}{
		{`\Device\Harddisk0\DR0`, d0}, {`\Device\Harddisk0\Partition0`, d0},
		{`\Device\Harddisk1\DR0`, d1}, {`\Device\Harddisk1\Partition0`, d1},
	} {
		dev, rest, err := m.LookupDevice(c.name)
		if err != nil || dev != c.want || rest != "" {
			t.Errorf("lookup %s: %v %q %v", c.name, dev, rest, err)
		}
	}
	if got := drv.Disks(); len(got) != 2 || got[0] != d0 || got[1] != d1 {
		t.Fatalf("Disks() = %v", got)
	}
	before := m.DeviceCount()
	if err := drv.RemoveDisk(d0); err != nil {
		t.Fatal(err)
	}
	if m.DeviceCount() != before-1 || len(drv.Disks()) != 1 {
		t.Errorf("after RemoveDisk: %d devices (was %d), disks %v", m.DeviceCount(), before, drv.Disks())
	}
	if _, _, err := m.LookupDevice(`\Device\Harddisk0\Partition0`); err == nil {
		t.Error("Partition0 link of a removed disk still resolves")
	}
	if _, err := s0.ReadAt(make([]byte, 512), 0); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("store of a removed disk: %v, want closed", err)
	}
}

// closeProbe is a probeStore that counts the reads done at or beyond
// markOff, and records that count when it is closed.
type closeProbe struct {
	*probeStore
	marked      atomic.Int32
	atClose     atomic.Int32
	closeCalled chan struct{}
	closeOnce   sync.Once
}

const markOff = 1 << 20

func (s *closeProbe) ReadAt(p []byte, off int64) (int, error) {
	n, err := s.probeStore.ReadAt(p, off)
	if off >= markOff && err == nil {
		s.marked.Add(1)
	}
	return n, err
}

func (s *closeProbe) Close() error {
	s.atClose.Store(s.marked.Load())
	s.closeOnce.Do(func() { close(s.closeCalled) })
	return s.probeStore.Close()
}

// TestDiskDriverCloseDrainsBeforeClosingStores: Close lets the requests
// already queued finish before it closes the stores (as its comment says),
// and requests sent while it runs neither race with it nor panic nor hang:
// they complete, successfully or with an error status. Run with -race.
func TestDiskDriverCloseDrainsBeforeClosingStores(t *testing.T) {
	const workers, queued = 1, 3
	m := iomgr.NewManager()
	drv := disk.NewDriver(m, disk.Options{Workers: workers})
	ms, err := disk.NewMemStore(diskSize)
	if err != nil {
		t.Fatal(err)
	}
	st := &closeProbe{probeStore: &probeStore{MemStore: ms, gate: make(chan struct{})}, closeCalled: make(chan struct{})}
	dev, err := drv.AddDisk(st, 512, false)
	if err != nil {
		t.Fatal(err)
	}

	// One request held by the worker at the gate, the others queued.
	var irps []*iomgr.IRP
	for i := 0; i < queued; i++ {
		irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorRead, dev, make([]byte, 512), markOff+int64(i)*512)
		if s := iomgr.CallDriver(dev, irp); s != iomgr.StatusPending {
			t.Fatalf("request %d: CallDriver returned %v, want STATUS_PENDING", i, s)
		}
		irps = append(irps, irp)
	}

	// More requests race with Close.
	stop := make(chan struct{})
	var racers sync.WaitGroup
	for g := 0; g < 4; g++ {
		racers.Add(1)
		go func() {
			defer racers.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Successful or STATUS_NO_SUCH_DEVICE, both fine here.
				transfer(dev, iomgr.MajorRead, make([]byte, 512), int64(i%64)*512, 0)
			}
		}()
	}
	closed := make(chan error, 1)
	go func() { closed <- drv.Close() }()
	// Give Close the chance to (wrongly) close the store while requests
	// are queued; then let the requests through.
	select {
	case <-st.closeCalled:
	case <-time.After(200 * time.Millisecond):
	}
	close(st.gate)
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not return")
	}
	close(stop)
	racers.Wait()
	for i, irp := range irps {
		irp.Wait()
		if irp.IOStatus.Status != iomgr.StatusSuccess {
			t.Errorf("request %d, queued before Close: %v", i, irp.IOStatus)
		}
		iomgr.FreeIRP(irp)
	}
	if n := st.atClose.Load(); n != queued {
		t.Errorf("Close closed the store when %d of the %d queued requests had run", n, queued)
	}
	// A request after Close fails rather than panics or hangs.
	if ios := transfer(dev, iomgr.MajorRead, make([]byte, 512), 0, 0); ios.Status != iomgr.StatusNoSuchDevice {
		t.Errorf("read after Close: %v, want STATUS_NO_SUCH_DEVICE", ios)
	}
}

// TestDiskDriverAddDiskDuringCloseLeavesNoImageLocked: a disk added while
// the driver closes, or after, is either refused (STATUS_NO_SUCH_DEVICE;
// its store stays the caller's, who closes it) or closed by Close; a store
// the driver took but never closed would keep its image locked until a
// finalizer closed the file, and the image's next open would be refused.
// The garbage collector is off, so that no finalizer masks such a store.
func TestDiskDriverAddDiskDuringCloseLeavesNoImageLocked(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	dir := t.TempDir()
	const adders, perAdder = 4, 8
	for round := range 20 {
		drv := disk.NewDriver(iomgr.NewManager(), disk.Options{Workers: 1})
		var wg sync.WaitGroup
		var refused atomic.Int32
		errs := make(chan error, adders*perAdder)
		for a := range adders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perAdder {
					st, err := disk.CreateFile(filepath.Join(dir, fmt.Sprintf("%d-%d.img", a, i)), 1<<20)
					if err != nil {
						errs <- err
						return
					}
					if _, err := drv.AddDisk(st, 512, false); err != nil {
						if !errors.Is(err, iomgr.StatusNoSuchDevice) {
							errs <- fmt.Errorf("AddDisk while closing: %w, want STATUS_NO_SUCH_DEVICE", err)
						}
						refused.Add(1)
						st.Close()
					}
				}
			}()
		}
		if round%2 == 0 {
			drv.Close() // racing with the adders
			wg.Wait()
		} else {
			wg.Wait()
			drv.Close()
		}
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if round == 0 {
			t.Logf("round 0 (adds racing with Close): %d of %d refused", refused.Load(), adders*perAdder)
		}
		// Every image can be taken for writing at once.
		for a := range adders {
			for i := range perAdder {
				st, err := disk.OpenFile(filepath.Join(dir, fmt.Sprintf("%d-%d.img", a, i)), false)
				if err != nil {
					t.Fatalf("round %d: image %d-%d after Close: %v", round, a, i, err)
				}
				st.Close()
			}
		}
	}
	// After Close, AddDisk refuses.
	drv := disk.NewDriver(iomgr.NewManager(), disk.Options{})
	drv.Close()
	ms, err := disk.NewMemStore(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := drv.AddDisk(ms, 512, false); !errors.Is(err, iomgr.StatusNoSuchDevice) {
		t.Fatalf("AddDisk after Close: %v, want STATUS_NO_SUCH_DEVICE", err)
	}
}
