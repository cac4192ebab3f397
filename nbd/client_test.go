package nbd

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
)

// This file is a deliberately small NBD client written from the protocol
// text, used to drive the server in ways real clients never would.

type optReply struct {
	opt, typ uint32
	data     []byte
}

type tclient struct {
	t     testing.TB
	nc    net.Conn
	rw    net.Conn
	mu    sync.Mutex     // guards reads lengths map
	reads map[uint64]int // cookie -> expected read length (simple replies)
	wmu   sync.Mutex     // serializes writes of concurrent requests
	sr    bool           // structured replies negotiated
	hsf   uint16         // handshake flags from the server
	size  uint64         // export size after GO
	flags uint16         // transmission flags after GO
	info  map[uint16][]byte
}

func dialT(t testing.TB, network, addr string) *tclient {
	t.Helper()
	nc, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	c := &tclient{t: t, nc: nc, rw: nc, reads: map[uint64]int{}}
	t.Cleanup(func() { nc.Close() })
	return c
}

func (c *tclient) readFull(n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := io.ReadFull(c.rw, b)
	return b, err
}

func (c *tclient) must(b []byte, err error) []byte {
	c.t.Helper()
	if err != nil {
		c.t.Fatalf("client read: %v", err)
	}
	return b
}

func (c *tclient) write(b []byte) {
	c.t.Helper()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.rw.Write(b); err != nil {
		c.t.Fatalf("client write: %v", err)
	}
}

// greet reads the server greeting and sends client flags.
func (c *tclient) greet(cflags uint32) {
	c.t.Helper()
	b := c.must(c.readFull(18))
	if binary.BigEndian.Uint64(b) != magicInit || binary.BigEndian.Uint64(b[8:]) != magicOpt {
		c.t.Fatalf("bad greeting % x", b)
	}
	c.hsf = binary.BigEndian.Uint16(b[16:])
	c.write(binary.BigEndian.AppendUint32(nil, cflags))
}

func (c *tclient) sendOpt(opt uint32, data []byte) {
	b := binary.BigEndian.AppendUint64(nil, magicOpt)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	c.write(append(b, data...))
}

func (c *tclient) readOptReply() (optReply, error) {
	h, err := c.readFull(20)
	if err != nil {
		return optReply{}, err
	}
	if binary.BigEndian.Uint64(h) != magicOptReply {
		return optReply{}, fmt.Errorf("bad option reply magic % x", h)
	}
	r := optReply{opt: binary.BigEndian.Uint32(h[8:]), typ: binary.BigEndian.Uint32(h[12:])}
	r.data, err = c.readFull(int(binary.BigEndian.Uint32(h[16:])))
	return r, err
}

// option sends an option and collects replies up to the final one.
func (c *tclient) option(opt uint32, data []byte) []optReply {
	c.t.Helper()
	c.sendOpt(opt, data)
	var out []optReply
	for {
		r, err := c.readOptReply()
		if err != nil {
			c.t.Fatalf("option %d: %v", opt, err)
		}
		if r.opt != opt {
			c.t.Fatalf("reply for option %d, want %d", r.opt, opt)
		}
		out = append(out, r)
		if r.typ == repAck || r.typ&(1<<31) != 0 {
			return out
		}
	}
}

func last(rs []optReply) uint32 { return rs[len(rs)-1].typ }

func infoData(name string, reqs ...uint16) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(reqs)))
	for _, r := range reqs {
		b = binary.BigEndian.AppendUint16(b, r)
	}
	return b
}

func metaData(name string, queries ...string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(queries)))
	for _, q := range queries {
		b = binary.BigEndian.AppendUint32(b, uint32(len(q)))
		b = append(b, q...)
	}
	return b
}

// parseInfos records NBD_REP_INFO replies by type.
func (c *tclient) parseInfos(rs []optReply) {
	c.info = map[uint16][]byte{}
	for _, r := range rs {
		if r.typ == repInfo && len(r.data) >= 2 {
			typ := binary.BigEndian.Uint16(r.data)
			c.info[typ] = r.data[2:]
			if typ == infoExport && len(r.data) == 12 {
				c.size = binary.BigEndian.Uint64(r.data[2:])
				c.flags = binary.BigEndian.Uint16(r.data[10:])
			}
		}
	}
}

// goExport sends NBD_OPT_GO and fails the test unless it succeeds.
func (c *tclient) goExport(name string, reqs ...uint16) {
	c.t.Helper()
	rs := c.option(optGo, infoData(name, reqs...))
	if last(rs) != repAck {
		c.t.Fatalf("GO %q: reply %#x (%q)", name, last(rs), rs[len(rs)-1].data)
	}
	c.parseInfos(rs)
}

// connect is the usual full negotiation: greeting, optionally structured
// replies and base:allocation, then GO.
func (c *tclient) connect(name string, structured, meta bool) {
	c.t.Helper()
	c.greet(clientFixedNewstyle | clientNoZeroes)
	if structured {
		if rs := c.option(optStructuredReply, nil); last(rs) != repAck {
			c.t.Fatalf("structured reply refused: %#x", last(rs))
		}
		c.sr = true
	}
	if meta {
		rs := c.option(optSetMetaContext, metaData(name, metaAllocation))
		if last(rs) != repAck || len(rs) != 2 {
			c.t.Fatalf("SET_META_CONTEXT: %+v", rs)
		}
	}
	c.goExport(name, infoBlockSize)
}

func dialConnect(t testing.TB, addr, name string, structured, meta bool) *tclient {
	t.Helper()
	c := dialT(t, "tcp", addr)
	c.connect(name, structured, meta)
	return c
}

// request sends one transmission request.
func (c *tclient) request(cmd Command, flags CommandFlags, cookie, off uint64, length uint32, payload []byte) {
	if cmd == CmdRead {
		c.mu.Lock()
		c.reads[cookie] = int(length)
		c.mu.Unlock()
	}
	b := make([]byte, 28, 28+len(payload))
	binary.BigEndian.PutUint32(b, magicRequest)
	binary.BigEndian.PutUint16(b[4:], uint16(flags))
	binary.BigEndian.PutUint16(b[6:], uint16(cmd))
	binary.BigEndian.PutUint64(b[8:], cookie)
	binary.BigEndian.PutUint64(b[16:], off)
	binary.BigEndian.PutUint32(b[24:], length)
	c.write(append(b, payload...))
}

type chunk struct {
	flags, typ uint16
	payload    []byte
}

// reply is one complete reply (simple, or all chunks of a structured one).
type reply struct {
	cookie     uint64
	simple     bool
	errno      Errno
	data       []byte // read data (simple) or reassembled OFFSET_DATA
	chunks     []chunk
	errMsg     string
	dataChunks int
}

// readReply reads the next complete reply. Structured chunks of different
// cookies are not interleaved by this server (each reply is one chunk),
// which the reader checks.
func (c *tclient) readReply() (reply, error) {
	h, err := c.readFull(4)
	if err != nil {
		return reply{}, err
	}
	switch binary.BigEndian.Uint32(h) {
	case magicSimple:
		rest, err := c.readFull(12)
		if err != nil {
			return reply{}, err
		}
		r := reply{simple: true, errno: Errno(binary.BigEndian.Uint32(rest)), cookie: binary.BigEndian.Uint64(rest[4:])}
		c.mu.Lock()
		n, isRead := c.reads[r.cookie]
		delete(c.reads, r.cookie)
		c.mu.Unlock()
		if isRead && r.errno == 0 {
			r.data, err = c.readFull(n)
		}
		return r, err
	case magicStructure:
		var r reply
		for first := true; ; first = false {
			if !first {
				if h, err = c.readFull(4); err != nil {
					return r, err
				}
				if binary.BigEndian.Uint32(h) != magicStructure {
					return r, fmt.Errorf("bad chunk magic % x", h)
				}
			}
			rest, err := c.readFull(16)
			if err != nil {
				return r, err
			}
			ch := chunk{flags: binary.BigEndian.Uint16(rest), typ: binary.BigEndian.Uint16(rest[2:])}
			cookie := binary.BigEndian.Uint64(rest[4:])
			if !first && cookie != r.cookie {
				return r, fmt.Errorf("interleaved chunks")
			}
			r.cookie = cookie
			if ch.payload, err = c.readFull(int(binary.BigEndian.Uint32(rest[12:]))); err != nil {
				return r, err
			}
			r.chunks = append(r.chunks, ch)
			switch ch.typ {
			case replyTypeOffsetData:
				r.data = append(r.data, ch.payload[8:]...)
				r.dataChunks++
			case replyTypeError, replyTypeErrorOffset:
				r.errno = Errno(binary.BigEndian.Uint32(ch.payload))
				ml := binary.BigEndian.Uint16(ch.payload[4:])
				r.errMsg = string(ch.payload[6 : 6+ml])
			}
			if ch.flags&replyFlagDone != 0 {
				c.mu.Lock()
				delete(c.reads, r.cookie)
				c.mu.Unlock()
				return r, nil
			}
		}
	}
	return reply{}, fmt.Errorf("bad reply magic % x", h)
}

func (c *tclient) mustReply() reply {
	c.t.Helper()
	r, err := c.readReply()
	if err != nil {
		c.t.Fatalf("reading reply: %v", err)
	}
	return r
}

// do sends one request and waits for its reply.
func (c *tclient) do(cmd Command, flags CommandFlags, off uint64, length uint32, payload []byte) reply {
	c.t.Helper()
	c.request(cmd, flags, 0xc0ffee, off, length, payload)
	r := c.mustReply()
	if r.cookie != 0xc0ffee {
		c.t.Fatalf("cookie %#x", r.cookie)
	}
	return r
}

// expectClosed checks that the server closes the connection (EOF, or a
// reset), within the client's deadline.
func (c *tclient) expectClosed() {
	c.t.Helper()
	c.rw.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 1)
	for {
		_, err := c.rw.Read(b)
		if err == nil {
			continue // e.g. the tail of something already sent
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatalf("server did not close the connection")
		}
		return
	}
}

// startTLS upgrades the client side after an ACK.
func (c *tclient) startTLS(cfg *tls.Config) {
	c.t.Helper()
	rs := c.option(optStartTLS, nil)
	if last(rs) != repAck {
		c.t.Fatalf("STARTTLS: %#x", last(rs))
	}
	tc := tls.Client(c.nc, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.rw = tc
}

// startServer serves cfg on a loopback TCP port for the test.
func startServer(t testing.TB, cfg Config) (*Server, string) {
	t.Helper()
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := testsupport.Serve(t, s.Serve, s.Close, ErrServerClosed)
	return s, addr
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed ^ byte(i>>9)
	}
	return b
}

func eqBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: differ at byte %d (len %d vs %d)", what, i, len(got), len(want))
	}
}
