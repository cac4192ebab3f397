package nbd

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// alignedDevice is a MemDevice that records every call it gets that is not
// aligned to its block size, as a disk stack would refuse it.
type alignedDevice struct {
	*MemDevice
	block int64
	// readDelay widens the window between the read and the write of a
	// read-modify-write, where another writer could slip in.
	readDelay time.Duration
	// failAt, when set, fails reads with an OffsetError there.
	failAt int64
	mu     sync.Mutex
	bad    []string
	trims  [][2]int64
}

func (d *alignedDevice) note(op string, off, n int64) {
	if off%d.block != 0 || (n%d.block != 0 && off+n != d.Size()) {
		d.mu.Lock()
		d.bad = append(d.bad, fmt.Sprintf("%s of %d bytes at %d", op, n, off))
		d.mu.Unlock()
	}
}

func (d *alignedDevice) ReadAt(r *Request, p []byte, off int64) error {
	d.note("read", off, int64(len(p)))
	time.Sleep(d.readDelay)
	if d.failAt > 0 && off <= d.failAt && d.failAt < off+int64(len(p)) {
		if err := d.MemDevice.ReadAt(r, p[:d.failAt-off], off); err != nil {
			return err
		}
		return &OffsetError{Offset: d.failAt, Err: EIO}
	}
	return d.MemDevice.ReadAt(r, p, off)
}

func (d *alignedDevice) WriteAt(r *Request, p []byte, off int64) error {
	d.note("write", off, int64(len(p)))
	return d.MemDevice.WriteAt(r, p, off)
}

func (d *alignedDevice) Trim(r *Request, off, n int64) error {
	d.note("trim", off, n)
	d.mu.Lock()
	d.trims = append(d.trims, [2]int64{off, n})
	d.mu.Unlock()
	return d.MemDevice.Trim(r, off, n)
}

func (d *alignedDevice) WriteZeroes(r *Request, off, n int64) error {
	d.note("zero", off, n)
	return d.MemDevice.WriteZeroes(r, off, n)
}

func (d *alignedDevice) trimmed() [][2]int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([][2]int64(nil), d.trims...)
}

func (d *alignedDevice) misaligned() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.bad...)
}

// unalignedServer serves one 512-byte-block export (1 MiB and 1000 bytes, so
// the last block is partial) on an alignedDevice.
func unalignedServer(t *testing.T) (*alignedDevice, string) {
	t.Helper()
	dev := &alignedDevice{MemDevice: NewMemDevice(1<<20 + 1000), block: 512}
	_, addr := startServer(t, Config{Exports: []Export{{Name: "d", Device: dev, MinBlock: 512, MaxBlock: 64 << 10}}})
	return dev, addr
}

// TestUnalignedTrimRoundedInward: a TRIM is a hint, so a client that agreed
// to 512-byte blocks and sends an unaligned one (as qemu does) gets success;
// the Device sees only the whole blocks inside, or nothing.
func TestUnalignedTrimRoundedInward(t *testing.T) {
	dev, addr := unalignedServer(t)
	c := dialConnect(t, addr, "d", true, false)
	for _, tc := range []struct {
		off    uint64
		length uint32
		want   [2]int64 // what reaches the Device; length 0: nothing
	}{
		{400000, 100000, [2]int64{400384, 499712 - 400384}},
		{400000, 384, [2]int64{}},
		{100, 1000, [2]int64{512, 512}},
		{512, 511, [2]int64{}},
		{1<<20 + 100, 900, [2]int64{1<<20 + 512, 488}}, // to the export's end
	} {
		before := len(dev.trimmed())
		if r := c.do(CmdTrim, 0, tc.off, tc.length, nil); r.errno != 0 {
			t.Errorf("trim of %d bytes at %d: errno %d, want success", tc.length, tc.off, r.errno)
			continue
		}
		got := dev.trimmed()[before:]
		switch {
		case tc.want[1] == 0 && len(got) != 0:
			t.Errorf("trim of %d bytes at %d reached the device as %v, want nothing", tc.length, tc.off, got)
		case tc.want[1] != 0 && (len(got) != 1 || got[0] != tc.want):
			t.Errorf("trim of %d bytes at %d reached the device as %v, want %v", tc.length, tc.off, got, tc.want)
		}
	}
	if bad := dev.misaligned(); len(bad) > 0 {
		t.Errorf("the device got unaligned requests: %q", bad)
	}
}

// connectNoSizes negotiates without agreeing to block sizes: by
// NBD_OPT_EXPORT_NAME, or by NBD_OPT_GO without NBD_INFO_BLOCK_SIZE.
func connectNoSizes(t *testing.T, addr string, exportName bool) *tclient {
	t.Helper()
	c := dialT(t, "tcp", addr)
	c.greet(clientFixedNewstyle | clientNoZeroes)
	if exportName {
		c.sendOpt(optExportName, []byte("d"))
		c.must(c.readFull(10))
		return c
	}
	if rs := c.option(optStructuredReply, nil); last(rs) != repAck {
		t.Fatalf("structured reply refused: %#x", last(rs))
	}
	c.sr = true
	c.goExport("d", infoName)
	return c
}

// TestUnalignedWithoutBlockSizes: a client that never agreed to block sizes
// is served at 1-byte granularity, as the spec says it SHOULD be: random
// unaligned reads, writes (with and without FUA) and zeroing match a byte
// model of the export exactly, while the Device only sees aligned requests.
// A FAST_ZERO that would need a read-modify-write fails with ENOTSUP and
// changes nothing.
func TestUnalignedWithoutBlockSizes(t *testing.T) {
	for _, exportName := range []bool{true, false} {
		t.Run(fmt.Sprintf("export name %v", exportName), func(t *testing.T) {
			dev, addr := unalignedServer(t)
			c := connectNoSizes(t, addr, exportName)
			size := dev.Size()
			model := make([]byte, size)
			rng := rand.New(rand.NewPCG(1, 2))
			span := func() (uint64, uint32) {
				n := 1 + rng.Int64N(3000)
				if rng.IntN(8) == 0 {
					n = 1 + rng.Int64N(20) // inside one block
				}
				off := rng.Int64N(size - n + 1)
				return uint64(off), uint32(n)
			}
			for i := 0; i < 400; i++ {
				off, n := span()
				switch op := rng.IntN(4); op {
				case 0, 1:
					p := pattern(int(n), byte(i))
					var flags CommandFlags
					if op == 1 {
						flags = FlagFUA
					}
					if r := c.do(CmdWrite, flags, off, n, p); r.errno != 0 {
						t.Fatalf("write of %d bytes at %d: errno %d", n, off, r.errno)
					}
					copy(model[off:], p)
				case 2:
					if r := c.do(CmdWriteZeroes, 0, off, n, nil); r.errno != 0 {
						t.Fatalf("zero of %d bytes at %d: errno %d", n, off, r.errno)
					}
					clear(model[off : off+uint64(n)])
				case 3:
					r := c.do(CmdRead, 0, off, n, nil)
					if r.errno != 0 {
						t.Fatalf("read of %d bytes at %d: errno %d", n, off, r.errno)
					}
					eqBytes(t, fmt.Sprintf("read of %d bytes at %d", n, off), r.data, model[off:off+uint64(n)])
				}
			}
			// A fast zero needing a read-modify-write is refused.
			copy(model[5000:], pattern(100, 7))
			c.do(CmdWrite, 0, 5000, 100, pattern(100, 7))
			if r := c.do(CmdWriteZeroes, FlagFastZero, 5010, 50, nil); r.errno != ENOTSUP {
				t.Errorf("unaligned fast zero: errno %d, want ENOTSUP", r.errno)
			}
			all := make([]byte, size)
			if err := dev.MemDevice.ReadAt(nil, all, 0); err != nil {
				t.Fatal(err)
			}
			eqBytes(t, "the device's bytes", all, model)
			if bad := dev.misaligned(); len(bad) > 0 {
				t.Errorf("the device got %d unaligned requests, first %q", len(bad), bad[0])
			}
		})
	}
}

// TestUnalignedWritesOfOneBlock: connections writing different bytes of
// the same blocks at once, without having agreed to block sizes, lose none
// of them: the read-modify-write cycles of an export do not overlap. Each
// write has 4 bytes of its own, so a write undone by another's
// read-modify-write shows as zeros.
func TestUnalignedWritesOfOneBlock(t *testing.T) {
	dev, addr := unalignedServer(t)
	dev.readDelay = time.Millisecond
	const writers, rounds = 4, 128  // 512 slots of 4 bytes: the first 4 blocks
	slot := func(w, i int) uint64 { // round i of every writer is in block i%4
		return uint64(i%4*512 + (i/4*writers+w)*4)
	}
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		c := connectNoSizes(t, addr, false)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				c.request(CmdWrite, 0, uint64(i), slot(w, i), 4, bytes.Repeat([]byte{byte(w + 1)}, 4))
				if r, err := c.readReply(); err != nil || r.errno != 0 {
					t.Errorf("writer %d: %v, errno %d", w, err, r.errno)
					return
				}
			}
		}()
	}
	wg.Wait()
	got := make([]byte, 4*512)
	if err := dev.MemDevice.ReadAt(nil, got, 0); err != nil {
		t.Fatal(err)
	}
	lost := 0
	for w := 0; w < writers; w++ {
		for i := 0; i < rounds; i++ {
			at := slot(w, i)
			if !bytes.Equal(got[at:at+4], bytes.Repeat([]byte{byte(w + 1)}, 4)) {
				lost++
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of the %d unaligned writes were lost", lost, writers*rounds)
	}
}

// TestUnalignedReadFailsPartway: a device error partway through the blocks
// around an unaligned read is reported at its offset, with the bytes before
// it, as for an aligned read.
func TestUnalignedReadFailsPartway(t *testing.T) {
	dev, addr := unalignedServer(t)
	want := pattern(4096, 3)
	if err := dev.MemDevice.WriteAt(nil, want, 0); err != nil {
		t.Fatal(err)
	}
	dev.failAt = 1024
	c := connectNoSizes(t, addr, false)
	r := c.do(CmdRead, 0, 100, 2000, nil)
	if r.errno != EIO {
		t.Fatalf("read across the failing offset: errno %d, want EIO", r.errno)
	}
	eqBytes(t, "the data before the failure", r.data, want[100:1024])
}
