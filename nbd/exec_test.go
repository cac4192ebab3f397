package nbd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// Tests of the execution model (transmit.go): inline requests, held-back
// replies, the watchdog and the hand-over of the reader role.

// requestBytes encodes one request, for tests that send many in one write.
func requestBytes(cmd Command, flags CommandFlags, cookie, off uint64, length uint32, payload []byte) []byte {
	b := make([]byte, 28, 28+len(payload))
	binary.BigEndian.PutUint32(b, magicRequest)
	binary.BigEndian.PutUint16(b[4:], uint16(flags))
	binary.BigEndian.PutUint16(b[6:], uint16(cmd))
	binary.BigEndian.PutUint64(b[8:], cookie)
	binary.BigEndian.PutUint64(b[16:], off)
	binary.BigEndian.PutUint32(b[24:], length)
	return append(b, payload...)
}

// waitingDevice is a MemDevice whose read at offset 0 waits until a read at
// offset 4096 has run: a client that pipelines the two deadlocks a server
// that runs one request at a time.
type waitingDevice struct {
	*MemDevice
	released chan struct{}
	done     atomic.Bool
}

func (d *waitingDevice) ReadAt(r *Request, p []byte, off int64) error {
	switch off {
	case 0:
		select {
		case <-d.released:
		case <-time.After(10 * time.Second):
			return errors.New("never released")
		}
	case 4096:
		if d.done.CompareAndSwap(false, true) {
			close(d.released)
		}
	}
	return d.MemDevice.ReadAt(r, p, off)
}

// A request that blocks in the Device while running inline must not keep
// the requests behind it from running: the watchdog hands the reading on.
func TestStalledInlineRequest(t *testing.T) {
	for _, structured := range []bool{false, true} {
		d := &waitingDevice{MemDevice: NewMemDevice(1 << 20), released: make(chan struct{})}
		d.MemDevice.WriteAt(nil, pattern(8192, 3), 0)
		_, addr := startServer(t, Config{Exports: []Export{{Device: d}}})
		c := dialConnect(t, addr, "", structured, false)
		start := time.Now()
		c.request(CmdRead, 0, 1, 0, 4096, nil)
		time.Sleep(20 * time.Millisecond) // let the first read start, alone
		c.request(CmdRead, 0, 2, 4096, 4096, nil)
		// Either reply may come first: once the second read releases the
		// first, both race to the socket. What matters is that both come,
		// and the first without its "never released" error.
		seen := map[uint64]bool{}
		for range 2 {
			r := c.mustReply()
			if (r.cookie != 1 && r.cookie != 2) || seen[r.cookie] || r.errno != 0 {
				t.Fatalf("structured %v: reply cookie %d errno %d (seen %v)", structured, r.cookie, r.errno, seen)
			}
			seen[r.cookie] = true
			off := (r.cookie - 1) * 4096
			eqBytes(t, "read", r.data, pattern(8192, 3)[off:off+4096])
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Fatalf("took %v", el)
		}
		// The connection serves on after the stall.
		if r := c.do(CmdRead, 0, 8192, 4096, nil); r.errno != 0 {
			t.Fatalf("read after the stall: errno %d", r.errno)
		}
	}
}

// A burst of requests that the reader runs inline, ended by a disconnect,
// gets every reply before the server closes, even when the in-flight
// limits are far below the burst (the reader writes its held-back replies
// before it waits for room).
func TestBurstThenDisconnect(t *testing.T) {
	dev := NewMemDevice(1 << 20)
	want := pattern(1<<20, 7)
	dev.WriteAt(nil, want, 0)
	_, addr := startServer(t, Config{
		Exports:          []Export{{Device: dev, MaxBlock: 64 << 10}},
		MaxRequests:      3,
		MaxBytesInFlight: 64 << 10,
	})
	for _, structured := range []bool{false, true} {
		c := dialConnect(t, addr, "", structured, false)
		var burst []byte
		const n = 200
		for i := range n {
			off, length := uint64(i%64)*4096, uint32(4096)
			if i%10 == 9 {
				off, length = uint64(i%16)*(64<<10), 64<<10 // a full budget
			}
			c.mu.Lock()
			c.reads[uint64(i)] = int(length)
			c.mu.Unlock()
			burst = append(burst, requestBytes(CmdRead, 0, uint64(i), off, length, nil)...)
		}
		// A write and a flush in the middle, which are handed on.
		burst = append(burst, requestBytes(CmdWrite, FlagFUA, n, 0, 4096, want[:4096])...)
		burst = append(burst, requestBytes(CmdFlush, 0, n+1, 0, 0, nil)...)
		burst = append(burst, requestBytes(CmdDisc, 0, n+2, 0, 0, nil)...)
		c.write(burst)
		seen := map[uint64]bool{}
		for range n + 2 {
			r := c.mustReply()
			if r.errno != 0 || seen[r.cookie] {
				t.Fatalf("reply cookie %d errno %d (seen before: %v)", r.cookie, r.errno, seen[r.cookie])
			}
			seen[r.cookie] = true
			if r.cookie < n {
				i := int(r.cookie)
				off, length := (i%64)*4096, 4096
				if i%10 == 9 {
					off, length = (i%16)*(64<<10), 64<<10
				}
				if !bytes.Equal(r.data, want[off:off+length]) {
					t.Fatalf("read %d: wrong data", i)
				}
			}
		}
		c.expectClosed()
	}
}

// Large transfers hand the reading on before they run, so that several
// run at once; small ones around them still run inline.
func TestLargeTransfersRunConcurrently(t *testing.T) {
	p := newProbe(8 << 20)
	// Each large read waits until four are in the device at once (or gives
	// up after 10 s, and the peak check fails): no timing assumption.
	p.readDelay = func(off int64) time.Duration {
		if off >= 4<<20 {
			for deadline := time.Now().Add(10 * time.Second); p.cur.Load() < 4 && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
		}
		return 0
	}
	_, addr := startServer(t, Config{Exports: []Export{{Device: p}}})
	c := dialConnect(t, addr, "", true, false)
	var burst []byte
	for i := range 4 {
		c.reads[uint64(i)] = 1 << 20
		burst = append(burst, requestBytes(CmdRead, 0, uint64(i), 4<<20+uint64(i)<<20, 1<<20, nil)...)
		burst = append(burst, requestBytes(CmdRead, 0, uint64(10+i), uint64(i)*4096, 4096, nil)...)
	}
	c.write(burst)
	for range 8 {
		if r := c.mustReply(); r.errno != 0 {
			t.Fatalf("cookie %d: errno %d", r.cookie, r.errno)
		}
	}
	if pk := p.peak.Load(); pk < 4 {
		t.Fatalf("peak concurrency %d, want at least 4", pk)
	}
}
