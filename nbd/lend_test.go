package nbd

import (
	"bytes"
	"sync"
	"sync/atomic"
	"testing"
)

// lendingDevice is a MemDevice that lends reads: each loan is a copy it
// tracks until released. mode selects a misbehaviour.
type lendingDevice struct {
	*MemDevice
	mode     string // "", "refuse", "short", "fail"
	lent     atomic.Int32
	released atomic.Int32
	mu       sync.Mutex
	out      map[*byte]bool // loans not yet released
}

func (d *lendingDevice) LendRead(r *Request, off int64, length int) ([]byte, func(), error) {
	switch d.mode {
	case "refuse":
		return nil, nil, ErrNotLent
	case "fail":
		return nil, nil, EIO
	}
	b := make([]byte, length)
	if err := d.MemDevice.ReadAt(r, b, off); err != nil {
		return nil, nil, err
	}
	if d.mode == "short" {
		b = b[:length/2]
	}
	d.lent.Add(1)
	d.mu.Lock()
	d.out[&b[0]] = true
	d.mu.Unlock()
	return b, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if !d.out[&b[0]] {
			panic("loan released twice")
		}
		delete(d.out, &b[0])
		d.released.Add(1)
	}, nil
}

// Large reads are served from the Device's loan and every loan is given
// back once, after its reply; small reads never ask for one; a refusal
// falls back to ReadAt; a short loan and a failed one are EIO replies and
// the connection carries on.
func TestLentReadsAreSentAndReleasedOnce(t *testing.T) {
	for _, mode := range []string{"", "refuse", "short", "fail"} {
		for _, structured := range []bool{false, true} {
			d := &lendingDevice{MemDevice: NewMemDevice(8 << 20), mode: mode, out: map[*byte]bool{}}
			want := pattern(8<<20, 5)
			d.MemDevice.WriteAt(nil, want, 0)
			srv, addr := startServer(t, Config{Exports: []Export{{Device: d}}})
			c := dialConnect(t, addr, "", structured, false)
			for i, n := range []uint32{LendMin, 1 << 20, 4096, 2 << 20} {
				off := uint64(i) << 20
				r := c.do(CmdRead, 0, off, n, nil)
				switch {
				case (mode == "short" || mode == "fail") && n >= LendMin:
					if r.errno != EIO {
						t.Fatalf("mode %q: read of %d: errno %d, want EIO", mode, n, r.errno)
					}
				case r.errno != 0 || !bytes.Equal(r.data, want[off:off+uint64(n)]):
					t.Fatalf("mode %q structured %v: read %d at %d: errno %d, data equal %v", mode, structured, n, off, r.errno, bytes.Equal(r.data, want[off:off+uint64(n)]))
				}
			}
			c.request(CmdDisc, 0, 1, 0, 0, nil)
			c.expectClosed()
			srv.Shutdown(t.Context())
			wantLent := map[string]int32{"": 3, "short": 3}[mode]
			if got := d.lent.Load(); got != wantLent {
				t.Fatalf("mode %q: %d loans, want %d", mode, got, wantLent)
			}
			if got := d.released.Load(); got != wantLent || len(d.out) != 0 {
				t.Fatalf("mode %q: %d of %d loans released, %d outstanding", mode, got, wantLent, len(d.out))
			}
		}
	}
}
