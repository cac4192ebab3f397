package nbd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestReadWriteRoundTrip(t *testing.T) {
	cfg, devs := threeExports()
	_, addr := startServer(t, cfg)
	for _, structured := range []bool{false, true} {
		c := dialConnect(t, addr, "disk", structured, false)
		want := pattern(64<<10, byte(len(fmt.Sprint(structured))))
		if r := c.do(CmdWrite, FlagFUA, 8192, uint32(len(want)), want); r.errno != 0 {
			t.Fatalf("write: %+v", r)
		}
		r := c.do(CmdRead, 0, 8192, uint32(len(want)), nil)
		if r.errno != 0 || r.simple == structured {
			t.Fatalf("read reply: simple=%v errno=%d", r.simple, r.errno)
		}
		eqBytes(t, "read back", r.data, want)
		if structured {
			if len(r.chunks) != 1 || r.chunks[0].typ != replyTypeOffsetData || r.chunks[0].flags != replyFlagDone ||
				binary.BigEndian.Uint64(r.chunks[0].payload) != 8192 {
				t.Fatalf("chunks %+v", r.chunks[0].typ)
			}
			// DF: the reply is one chunk anyway.
			r = c.do(CmdRead, FlagDF, 8192, uint32(len(want)), nil)
			if r.errno != 0 || r.dataChunks != 1 {
				t.Fatalf("DF read: %+v", r.errno)
			}
		}
		got := make([]byte, len(want))
		devs["disk"].ReadAt(nil, got, 8192)
		eqBytes(t, "device contents", got, want)
	}
}

func TestCommands(t *testing.T) {
	p := newProbe(1 << 20)
	_, addr := startServer(t, Config{Exports: []Export{{Name: "p", Device: p}}})
	c := dialConnect(t, addr, "p", true, true)

	data := pattern(256<<10, 3)
	if r := c.do(CmdWrite, 0, 0, uint32(len(data)), data); r.errno != 0 {
		t.Fatalf("write: %d", r.errno)
	}
	if r := c.do(CmdWrite, FlagFUA, 0, 4096, data[:4096]); r.errno != 0 {
		t.Fatalf("FUA write: errno %d", r.errno)
	}
	if fua, _ := p.counts(); fua != 1 {
		t.Fatalf("device saw %d FUA writes", fua)
	}
	if r := c.do(CmdFlush, 0, 0, 0, nil); r.errno != 0 || p.Flushes() != 1 {
		t.Fatalf("flush: errno %d, flushes %d", r.errno, p.Flushes())
	}
	if r := c.do(CmdCache, 0, 0, 4096, nil); r.errno != 0 {
		t.Fatalf("cache: %d", r.errno)
	}
	// Trim punches the second 64 KiB; zeroes with NO_HOLE keep the third.
	if r := c.do(CmdTrim, 0, 64<<10, 64<<10, nil); r.errno != 0 {
		t.Fatalf("trim: %d", r.errno)
	}
	if r := c.do(CmdWriteZeroes, FlagNoHole, 128<<10, 64<<10, nil); r.errno != 0 {
		t.Fatalf("zero no-hole: %d", r.errno)
	}
	if _, nh := p.counts(); nh != 1 {
		t.Fatalf("device saw %d NO_HOLE zeroes", nh)
	}
	if r := c.do(CmdWriteZeroes, FlagFastZero, 192<<10, 32<<10, nil); r.errno != 0 {
		t.Fatalf("fast zero: %d", r.errno)
	}
	p.slowZero.Store(true)
	if r := c.do(CmdWriteZeroes, FlagFastZero, 224<<10, 32<<10, nil); r.errno != ENOTSUP {
		t.Fatalf("slow fast zero: %d", r.errno)
	}
	r := c.do(CmdRead, 0, 0, 256<<10, nil)
	want := append([]byte(nil), data...)
	clear(want[64<<10 : 224<<10])
	eqBytes(t, "after trim and zero", r.data, want)

	// Block status: data, hole (trim), data (no-hole zero), hole (zero),
	// data (refused fast zero), hole to the end.
	type ext struct{ n, f uint32 }
	status := func(flags CommandFlags, off uint64, n uint32) []ext {
		r := c.do(CmdBlockStatus, flags, off, n, nil)
		if r.errno != 0 || len(r.chunks) != 1 || r.chunks[0].typ != replyTypeBlockStatus {
			t.Fatalf("block status: %+v", r)
		}
		pl := r.chunks[0].payload
		if binary.BigEndian.Uint32(pl) != metaContextID {
			t.Fatalf("context id %d", binary.BigEndian.Uint32(pl))
		}
		var out []ext
		for pl = pl[4:]; len(pl) >= 8; pl = pl[8:] {
			out = append(out, ext{binary.BigEndian.Uint32(pl), binary.BigEndian.Uint32(pl[4:])})
		}
		return out
	}
	hz := StateHole | StateZero
	got := fmt.Sprint(status(0, 0, 1<<20))
	wantExt := fmt.Sprint([]ext{{64 << 10, 0}, {64 << 10, hz}, {64 << 10, 0}, {32 << 10, hz}, {32 << 10, 0}, {768 << 10, hz}})
	if got != wantExt {
		t.Fatalf("extents %s, want %s", got, wantExt)
	}
	if got := fmt.Sprint(status(FlagReqOne, 4096, 1<<20-4096)); got != fmt.Sprint([]ext{{60 << 10, 0}}) {
		t.Fatalf("REQ_ONE: %s", got)
	}
	if got := fmt.Sprint(status(FlagReqOne, 1<<20-8192, 4096)); got != fmt.Sprint([]ext{{4096, hz}}) {
		t.Fatalf("REQ_ONE tail: %s", got)
	}
	// Zero-length requests succeed without reaching the device.
	for _, cmd := range []Command{CmdRead, CmdWrite, CmdTrim, CmdWriteZeroes, CmdCache} {
		r := c.do(cmd, 0, 4096, 0, nil)
		if r.errno != 0 {
			t.Fatalf("zero-length %v: %d", cmd, r.errno)
		}
		if cmd == CmdRead && (len(r.chunks) != 1 || r.chunks[0].typ != replyTypeNone) {
			t.Fatalf("zero-length read: %+v", r.chunks)
		}
	}
	if who, exps := p.requestors(); fmt.Sprint(who) != fmt.Sprint([]string{c.nc.LocalAddr().String()}) || fmt.Sprint(exps) != "[p]" {
		t.Fatalf("requestors %v exports %v", who, exps)
	}
}

// errCase is one request that must fail with errno while the connection
// carries on.
type errCase struct {
	name    string
	export  string
	sr      bool
	cmd     Command
	flags   CommandFlags
	off     uint64
	length  uint32
	payload bool // send length bytes of payload (WRITE)
	errno   Errno
}

func TestRequestErrors(t *testing.T) {
	cfg, _ := threeExports()
	cfg.Exports = append(cfg.Exports, Export{Name: "aligned", Device: NewMemDevice(1<<20 + 1000), MinBlock: 512, MaxBlock: 64 << 10})
	_, addr := startServer(t, cfg)
	const mb = 1 << 20
	cases := []errCase{
		{"read past end", "", false, CmdRead, 0, mb - 512, 1024, false, EINVAL},
		{"read offset past end", "", true, CmdRead, 0, mb + 512, 512, false, EINVAL},
		{"read offset overflow", "", true, CmdRead, 0, 1<<64 - 512, 1024, false, EINVAL},
		{"write past end", "", false, CmdWrite, 0, mb - 512, 1024, true, ENOSPC},
		{"zero past end", "", true, CmdWriteZeroes, 0, mb, 4096, false, ENOSPC},
		{"trim past end", "", true, CmdTrim, 0, mb - 512, 4096, false, EINVAL},
		{"cache past end", "", false, CmdCache, 0, mb, 1, false, EINVAL},
		{"read too big", "", false, CmdRead, 0, 0, 32<<20 + 1, false, EINVAL},
		{"read too big structured", "", true, CmdRead, 0, 0, 32<<20 + 1, false, EINVAL},
		{"misaligned read", "aligned", false, CmdRead, 0, 100, 512, false, EINVAL},
		{"misaligned length", "aligned", true, CmdWrite, 0, 512, 100, true, EINVAL},
		{"above export max", "aligned", true, CmdRead, 0, 0, 128 << 10, false, EINVAL},
		{"write above export max", "aligned", true, CmdWrite, 0, 0, 128 << 10, true, EINVAL},
		{"write on ro", "ro", false, CmdWrite, 0, 0, 4096, true, EPERM},
		{"write on ro structured", "ro", true, CmdWrite, 0, 0, 4096, true, EPERM},
		{"trim on ro", "ro", true, CmdTrim, 0, 0, 4096, false, EPERM},
		{"zero on ro", "ro", false, CmdWriteZeroes, 0, 0, 4096, false, EPERM},
		{"FUA on ro", "ro", false, CmdRead, FlagFUA, 0, 4096, false, EINVAL},
		{"unknown command", "", false, Command(42), 0, 0, 0, false, EINVAL},
		{"resize", "", true, Command(8), 0, 0, 0, false, EINVAL},
		{"unknown flag", "", false, CmdRead, 1 << 9, 0, 512, false, EINVAL},
		{"DF unnegotiated", "", false, CmdRead, FlagDF, 0, 512, false, EINVAL},
		{"REQ_ONE on read", "", true, CmdRead, FlagReqOne, 0, 512, false, EINVAL},
		{"NO_HOLE on write", "", false, CmdWrite, FlagNoHole, 0, 512, true, EINVAL},
		{"block status unnegotiated", "", false, CmdBlockStatus, 0, 0, 512, false, EINVAL},
		{"block status no context", "", true, CmdBlockStatus, 0, 0, 512, false, EINVAL},
	}
	conns := map[string]*tclient{}
	for _, tc := range cases {
		key := fmt.Sprintf("%s/%v", tc.export, tc.sr)
		c := conns[key]
		if c == nil {
			c = dialConnect(t, addr, tc.export, tc.sr, false)
			conns[key] = c
		}
		var payload []byte
		if tc.payload {
			payload = pattern(int(tc.length), 9)
		}
		r := c.do(tc.cmd, tc.flags, tc.off, tc.length, payload)
		if r.errno != tc.errno {
			t.Errorf("%s: errno %d, want %d", tc.name, r.errno, tc.errno)
		}
		if tc.sr && (len(r.chunks) != 1 || r.chunks[0].typ != replyTypeError || r.errMsg == "") {
			t.Errorf("%s: structured error reply %+v", tc.name, r.chunks)
		}
		if !tc.sr && (!r.simple || r.data != nil) {
			t.Errorf("%s: simple error reply carries data", tc.name)
		}
		// The connection carries on.
		if r := c.do(CmdRead, 0, 0, 512, nil); r.errno != 0 {
			t.Fatalf("%s: following read: %d", tc.name, r.errno)
		}
	}
	// An unaligned tail is reachable when the size is not a multiple of
	// the minimum block size.
	c := conns["aligned/true"]
	if r := c.do(CmdWrite, 0, 1<<20, 1000, pattern(1000, 1)); r.errno != 0 {
		t.Fatalf("unaligned tail write: %d", r.errno)
	}
	if r := c.do(CmdRead, 0, 1<<20, 1000, nil); r.errno != 0 || !bytes.Equal(r.data, pattern(1000, 1)) {
		t.Fatalf("unaligned tail read: %d", r.errno)
	}
}

// An oversized WRITE payload is consumed so the stream stays in step: the
// next request on the connection is still understood.
func TestOversizedWriteConsumed(t *testing.T) {
	cfg, devs := threeExports()
	_, addr := startServer(t, cfg)
	c := dialConnect(t, addr, "disk", false, false)
	big := pattern(32<<20+4096, 5)
	// The payload would be a valid request stream if the server skipped
	// only part of it: fill it with request magic to be sure it does not.
	for i := 0; i+4 <= len(big); i += 28 {
		binary.BigEndian.PutUint32(big[i:], magicRequest)
	}
	c.request(CmdWrite, 0, 1, 0, uint32(len(big)), big)
	c.request(CmdRead, 0, 2, 0, 4096, nil)
	r1, r2 := c.mustReply(), c.mustReply()
	if r1.cookie != 1 || r1.errno != EINVAL || r2.cookie != 2 || r2.errno != 0 {
		t.Fatalf("replies %d/%d %d/%d", r1.cookie, r1.errno, r2.cookie, r2.errno)
	}
	if devs["disk"].Allocated() != 0 {
		t.Fatal("oversized write reached the device")
	}
}

func TestDeviceErrorsAndHook(t *testing.T) {
	errDiskFull := errors.New("STATUS_DISK_FULL")
	p := newProbe(1 << 20)
	p.failWith = errDiskFull
	q := newProbe(1 << 20)
	q.panicRead = true
	cfg := Config{
		Exports: []Export{{Name: "p", Device: p}, {Name: "q", Device: q}},
		Errno: func(err error) Errno {
			if errors.Is(err, errDiskFull) {
				return ENOSPC
			}
			return DefaultErrno(err)
		},
		ErrorMessages: true,
	}
	_, addr := startServer(t, cfg)
	c := dialConnect(t, addr, "p", true, false)
	r := c.do(CmdWrite, 0, 0, 512, make([]byte, 512))
	if r.errno != ENOSPC || r.errMsg != "STATUS_DISK_FULL" {
		t.Fatalf("hooked error: %d %q", r.errno, r.errMsg)
	}
	c = dialConnect(t, addr, "q", false, false)
	if r := c.do(CmdRead, 0, 0, 512, nil); r.errno != EIO || r.data != nil {
		t.Fatalf("panicking device: %+v", r)
	}
	if r := c.do(CmdWrite, 0, 0, 512, make([]byte, 512)); r.errno != 0 {
		t.Fatalf("write after panic: %d", r.errno)
	}

	// Without ErrorMessages the text stays on the server.
	cfg.ErrorMessages = false
	_, addr = startServer(t, cfg)
	c = dialConnect(t, addr, "p", true, false)
	if r := c.do(CmdWrite, 0, 0, 512, make([]byte, 512)); r.errno != ENOSPC || r.errMsg != "" {
		t.Fatalf("message leaked: %q", r.errMsg)
	}
}

// A Device that fails part-way says where, and a structured reply carries
// the data before that point and an ERROR_OFFSET chunk.
func TestOffsetErrors(t *testing.T) {
	p := newProbe(1 << 20)
	p.failAt = 96 << 10
	p.MemDevice.WriteAt(nil, pattern(1<<20, 6), 0)
	w := newProbe(1 << 20)
	w.failWith = &OffsetError{Offset: 4096 + 512, Err: ENOSPC}
	_, addr := startServer(t, Config{Exports: []Export{{Name: "r", Device: p}, {Name: "w", Device: w}}, ErrorMessages: true})

	c := dialConnect(t, addr, "r", true, false)
	r := c.do(CmdRead, 0, 64<<10, 64<<10, nil)
	if r.errno != EIO || len(r.chunks) != 2 {
		t.Fatalf("partial read: errno %d, %d chunks", r.errno, len(r.chunks))
	}
	d, e := r.chunks[0], r.chunks[1]
	if d.typ != replyTypeOffsetData || d.flags != 0 || binary.BigEndian.Uint64(d.payload) != 64<<10 {
		t.Fatalf("data chunk type %d flags %d", d.typ, d.flags)
	}
	eqBytes(t, "data before the failure", r.data, pattern(1<<20, 6)[64<<10:96<<10])
	if e.typ != replyTypeErrorOffset || e.flags != replyFlagDone {
		t.Fatalf("error chunk type %#x flags %d", e.typ, e.flags)
	}
	ml := binary.BigEndian.Uint16(e.payload[4:])
	if got := binary.BigEndian.Uint64(e.payload[6+ml:]); got != 96<<10 || len(e.payload) != int(14+ml) {
		t.Fatalf("error offset %d", got)
	}
	// Failing at the first byte: no data chunk.
	r = c.do(CmdRead, 0, 96<<10, 4096, nil)
	if r.errno != EIO || len(r.chunks) != 1 || r.chunks[0].typ != replyTypeErrorOffset {
		t.Fatalf("read failing at its start: %+v", r.chunks)
	}
	// Simple replies can only say "failed".
	c = dialConnect(t, addr, "r", false, false)
	if r := c.do(CmdRead, 0, 64<<10, 64<<10, nil); r.errno != EIO || r.data != nil {
		t.Fatalf("simple partial read: %+v", r)
	}

	c = dialConnect(t, addr, "w", true, false)
	r = c.do(CmdWrite, 0, 4096, 4096, make([]byte, 4096))
	if r.errno != ENOSPC || len(r.chunks) != 1 || r.chunks[0].typ != replyTypeErrorOffset || !strings.Contains(r.errMsg, "offset 4608") {
		t.Fatalf("write error offset: %+v %q", r.chunks, r.errMsg)
	}
	// An offset outside the request is not believed.
	r = c.do(CmdWrite, 0, 8192, 4096, make([]byte, 4096))
	if r.errno != ENOSPC || r.chunks[0].typ != replyTypeError {
		t.Fatalf("out-of-request error offset: %+v", r.chunks)
	}
}

func TestBadRequestMagicCloses(t *testing.T) {
	p := newProbe(1 << 20)
	p.readDelay = func(int64) time.Duration { return 100 * time.Millisecond }
	_, addr := startServer(t, Config{Exports: []Export{{Device: p}}})
	c := dialConnect(t, addr, "", true, false)
	// A slow read in flight, then garbage: the read is still answered,
	// then the connection closes.
	c.request(CmdRead, 0, 7, 0, 4096, nil)
	c.write(bytes.Repeat([]byte{0xee}, 28))
	r := c.mustReply()
	if r.cookie != 7 || r.errno != 0 || len(r.data) != 4096 {
		t.Fatalf("in-flight read: %+v", r)
	}
	c.expectClosed()
	// Others are still served.
	c2 := dialConnect(t, addr, "", false, false)
	if r := c2.do(CmdRead, 0, 0, 512, nil); r.errno != 0 {
		t.Fatal("server stopped serving")
	}
}

func TestDiscAnswersInflight(t *testing.T) {
	p := newProbe(1 << 20)
	p.readDelay = func(int64) time.Duration { return 100 * time.Millisecond }
	_, addr := startServer(t, Config{Exports: []Export{{Device: p}}})
	c := dialConnect(t, addr, "", false, false)
	c.request(CmdRead, 0, 1, 0, 4096, nil)
	c.request(CmdWrite, 0, 2, 8192, 4096, pattern(4096, 1))
	c.request(CmdDisc, 0, 3, 0, 0, nil)
	got := map[uint64]Errno{}
	for range 2 {
		r := c.mustReply()
		got[r.cookie] = r.errno
	}
	if len(got) != 2 || got[1] != 0 || got[2] != 0 {
		t.Fatalf("replies %v", got)
	}
	c.expectClosed()
	b := make([]byte, 4096)
	p.ReadAt(nil, b, 8192)
	eqBytes(t, "write before DISC", b, pattern(4096, 1))
}

// A client that dies after half a write payload: nothing is written, no
// reply is owed, and the server keeps serving everyone else.
func TestDisconnectMidWrite(t *testing.T) {
	cfg, devs := threeExports()
	_, addr := startServer(t, cfg)
	other := dialConnect(t, addr, "disk", true, false)
	for i := range 20 {
		c := dialConnect(t, addr, "disk", i%2 == 0, false)
		hdr := make([]byte, 28)
		binary.BigEndian.PutUint32(hdr, magicRequest)
		binary.BigEndian.PutUint16(hdr[6:], uint16(CmdWrite))
		binary.BigEndian.PutUint32(hdr[24:], 1<<20)
		c.write(hdr)
		c.write(make([]byte, 1<<19))
		c.nc.Close()
		if r := other.do(CmdRead, 0, 0, 4096, nil); r.errno != 0 {
			t.Fatalf("other connection: %d", r.errno)
		}
	}
	if devs["disk"].Allocated() != 0 {
		t.Fatal("a half-received write reached the device")
	}
	// A header cut short is just as harmless.
	c := dialConnect(t, addr, "disk", false, false)
	c.write([]byte{0x25, 0x60, 0x95, 0x13, 0, 0})
	c.nc.Close()
	if r := other.do(CmdRead, 0, 0, 4096, nil); r.errno != 0 {
		t.Fatalf("other connection: %d", r.errno)
	}
}

func TestOutOfOrderReplies(t *testing.T) {
	p := newProbe(1 << 20)
	p.readDelay = func(off int64) time.Duration {
		if off == 0 {
			return 300 * time.Millisecond
		}
		return 0
	}
	_, addr := startServer(t, Config{Exports: []Export{{Device: p}}})
	for _, sr := range []bool{false, true} {
		c := dialConnect(t, addr, "", sr, false)
		c.request(CmdRead, 0, 100, 0, 4096, nil)
		for i := uint64(1); i <= 8; i++ {
			c.request(CmdRead, 0, 100+i, i*4096, 4096, nil)
		}
		var order []uint64
		for range 9 {
			order = append(order, c.mustReply().cookie)
		}
		if order[len(order)-1] != 100 {
			t.Fatalf("structured=%v: reply order %v: the slow read should come last", sr, order)
		}
	}
}

func TestConcurrentClients(t *testing.T) {
	const clients, ops, region = 8, 200, 256 << 10
	dev := NewMemDevice(clients * region)
	_, addr := startServer(t, Config{Exports: []Export{{Name: "m", Device: dev}}})
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dialConnect(t, addr, "m", i%2 == 0, false)
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			model := make([]byte, region)
			base := uint64(i * region)
			// Pipelined writes then reads, many in flight at a time.
			for round := range ops / 20 {
				type op struct {
					off, n uint64
					data   []byte
				}
				var batch []op
				for k := range 10 {
					// Writes in flight together may run in any order,
					// so each gets its own slot.
					const slot = region / 10 / 512 * 512
					n := uint64(512 * (1 + rng.IntN(16)))
					off := uint64(k)*slot + uint64(rng.IntN(int(slot-n)/512+1))*512
					d := pattern(int(n), byte(round*10+k))
					batch = append(batch, op{off, n, d})
					c.request(CmdWrite, 0, uint64(k), base+off, uint32(n), d)
				}
				for range batch {
					if r := c.mustReply(); r.errno != 0 {
						errs <- fmt.Errorf("client %d write errno %d", i, r.errno)
						return
					}
				}
				for _, o := range batch {
					copy(model[o.off:], o.data)
				}
				for k := range 10 {
					c.request(CmdRead, 0, uint64(1000+k), base+uint64(k)*(region/10), region/10/512*512, nil)
				}
				for range 10 {
					r := c.mustReply()
					k := uint64(r.cookie - 1000)
					off := k * (region / 10)
					if r.errno != 0 || !bytes.Equal(r.data, model[off:off+uint64(len(r.data))]) {
						errs <- fmt.Errorf("client %d read %d mismatch", i, k)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// The in-flight limits bound the Device calls a connection makes at once.
func TestInflightLimit(t *testing.T) {
	p := newProbe(1 << 20)
	p.readDelay = func(int64) time.Duration { return 20 * time.Millisecond }
	_, addr := startServer(t, Config{Exports: []Export{{Device: p, MaxBlock: 64 << 10}}, MaxRequests: 3, MaxBytesInFlight: 64 << 10})
	c := dialConnect(t, addr, "", true, false)
	for i := range 30 {
		c.request(CmdRead, 0, uint64(i), 0, 4096, nil)
	}
	for range 30 {
		c.mustReply()
	}
	if pk := p.peak.Load(); pk != 3 {
		t.Fatalf("peak concurrency %d, want 3", pk)
	}
	// Bytes: 32 KiB reads, 64 KiB budget: at most 2 at once.
	p.peak.Store(0)
	for i := range 10 {
		c.request(CmdRead, 0, uint64(i), 0, 32<<10, nil)
	}
	for range 10 {
		c.mustReply()
	}
	if pk := p.peak.Load(); pk != 2 {
		t.Fatalf("peak concurrency by bytes %d, want 2", pk)
	}
}

func TestShutdownGraceful(t *testing.T) {
	p := newProbe(1 << 20)
	p.readDelay = func(int64) time.Duration { return 200 * time.Millisecond }
	other := NewMemDevice(1 << 20)
	s, err := NewServer(Config{Exports: []Export{{Name: "p", Device: p}, {Name: "o", Device: other}}})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	addr := l.Addr().String()

	c := dialConnect(t, addr, "p", true, false)
	idle := dialT(t, "tcp", addr) // still negotiating
	idle.greet(clientFixedNewstyle)
	for i := range 4 {
		c.request(CmdRead, 0, uint64(i), uint64(i)*4096, 4096, nil)
	}
	waitFor(t, "4 reads in the device", func() bool { return p.cur.Load() == 4 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for range 4 {
		if r := c.mustReply(); r.errno != 0 {
			t.Fatalf("in-flight read failed: %d", r.errno)
		}
	}
	c.expectClosed()
	idle.expectClosed()
	if p.Flushes() != 1 || other.Flushes() != 1 {
		t.Fatalf("flushes %d %d, want 1 each", p.Flushes(), other.Flushes())
	}
	if err := <-served; err != ErrServerClosed {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("still accepting")
	}
	if err := s.Serve(l); err != ErrServerClosed {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

func TestShutdownDeadline(t *testing.T) {
	p := newProbe(1 << 20)
	p.gate = make(chan struct{})
	defer close(p.gate)
	s, addr := startServer(t, Config{Exports: []Export{{Device: p}}})
	c := dialConnect(t, addr, "", false, false)
	c.request(CmdRead, 0, 1, 0, 4096, nil)
	waitFor(t, "the read in the device", func() bool { return p.cur.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	c.expectClosed()
	if p.Flushes() != 0 {
		t.Fatal("flushed after a failed shutdown")
	}
}

func TestCloseAbandons(t *testing.T) {
	p := newProbe(1 << 20)
	p.gate = make(chan struct{})
	defer close(p.gate)
	s, addr := startServer(t, Config{Exports: []Export{{Device: p}}})
	c := dialConnect(t, addr, "", false, false)
	c.request(CmdRead, 0, 1, 0, 4096, nil)
	waitFor(t, "the read in the device", func() bool { return p.cur.Load() == 1 })
	s.Close()
	c.expectClosed()
}

func TestRemoveExport(t *testing.T) {
	cfg, devs := threeExports()
	s, addr := startServer(t, cfg)
	user := dialConnect(t, addr, "disk", false, false)
	bystander := dialConnect(t, addr, "", false, false)
	if r := user.do(CmdWrite, 0, 0, 4096, pattern(4096, 2)); r.errno != 0 {
		t.Fatal(r.errno)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.RemoveExport(ctx, "disk"); err != nil {
		t.Fatal(err)
	}
	user.expectClosed()
	if devs["disk"].Flushes() != 1 || devs[""].Flushes() != 0 {
		t.Fatal("flush on removal")
	}
	if r := bystander.do(CmdRead, 0, 0, 512, nil); r.errno != 0 {
		t.Fatal("bystander disturbed")
	}
	c := dialT(t, "tcp", addr)
	c.greet(clientFixedNewstyle)
	if rs := c.option(optGo, infoData("disk")); last(rs) != repErrUnknown {
		t.Fatalf("removed export still offered: %#x", last(rs))
	}
	if err := s.RemoveExport(ctx, "disk"); err == nil {
		t.Fatal("removed twice")
	}
	if err := s.AddExport(Export{Name: "disk", Device: devs["disk"]}); err != nil {
		t.Fatal(err)
	}
	c.goExport("disk")
	if len(s.Exports()) != 3 {
		t.Fatalf("exports %v", s.Exports())
	}
}

func TestRequestorUnix(t *testing.T) {
	p := newProbe(1 << 20)
	s, err := NewServer(Config{Exports: []Export{{Device: p}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nbd.sock")
	l, err := ListenAddr("unix:" + path)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	defer s.Close()
	c := dialT(t, "unix", path)
	c.connect("", false, false)
	if r := c.do(CmdWrite, 0, 0, 512, make([]byte, 512)); r.errno != 0 {
		t.Fatal(r.errno)
	}
	who, _ := p.requestors()
	if len(who) != 1 || !strings.HasPrefix(who[0], fmt.Sprintf("unix:@%d#", os.Getpid())) {
		t.Fatalf("requestors %q", who)
	}
}

// A client that sends requests but never reads replies stalls only
// itself.
func TestStalledClientIsolated(t *testing.T) {
	cfg, _ := threeExports()
	_, addr := startServer(t, cfg)
	stalled := dialConnect(t, addr, "disk", true, false)
	go func() {
		hdr := make([]byte, 28)
		binary.BigEndian.PutUint32(hdr, magicRequest)
		binary.BigEndian.PutUint32(hdr[24:], 1<<20)
		for i := range 2000 {
			binary.BigEndian.PutUint64(hdr[8:], uint64(i))
			if _, err := stalled.nc.Write(hdr); err != nil {
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	c := dialConnect(t, addr, "disk", true, false)
	for range 50 {
		if r := c.do(CmdRead, 0, 0, 65536, nil); r.errno != 0 {
			t.Fatal(r.errno)
		}
	}
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// stripes reports alternating 512-byte data and hole extents (with some
// junk a careless Device might add), to check how the server bounds and
// cleans block status replies.
type stripes struct{ *MemDevice }

func (s stripes) BlockStatus(_ *Request, off, n int64, ext []Extent) ([]Extent, error) {
	ext = append(ext, Extent{Length: 0, Flags: StateHole}, Extent{Length: -5})
	for i := int64(0); i < n/512; i++ {
		f := uint32(0)
		if (off/512+i)%2 == 1 {
			f = StateHole | StateZero | 0x80 // unknown bits are dropped
		}
		ext = append(ext, Extent{Length: 512, Flags: f})
	}
	return append(ext, Extent{Length: 1 << 40}), nil // beyond the request
}

func TestBlockStatusBounds(t *testing.T) {
	_, addr := startServer(t, Config{Exports: []Export{{Device: stripes{NewMemDevice(64 << 20)}}}})
	c := dialConnect(t, addr, "", true, true)
	r := c.do(CmdBlockStatus, 0, 0, 32<<20, nil)
	pl := r.chunks[0].payload
	if r.errno != 0 || (len(pl)-4)/8 != maxExtents {
		t.Fatalf("errno %d, %d descriptors, want %d", r.errno, (len(pl)-4)/8, maxExtents)
	}
	for i, p := 0, pl[4:]; len(p) > 0; i, p = i+1, p[8:] {
		want := uint32(0)
		if i%2 == 1 {
			want = StateHole | StateZero
		}
		if binary.BigEndian.Uint32(p) != 512 || binary.BigEndian.Uint32(p[4:]) != want {
			t.Fatalf("descriptor %d: % x", i, p[:8])
		}
	}
	// The over-long last extent is clipped to the request.
	r = c.do(CmdBlockStatus, 0, 1024, 1024, nil)
	pl = r.chunks[0].payload[4:]
	var total uint32
	for ; len(pl) > 0; pl = pl[8:] {
		total += binary.BigEndian.Uint32(pl)
	}
	if total != 1024 {
		t.Fatalf("extents cover %d bytes of a 1024-byte request", total)
	}
}
