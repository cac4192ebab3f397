package nbd

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

var reqPool = sync.Pool{New: func() any { return new(Request) }}

// Execution model.
//
// Handing a request from one goroutine to another costs more than serving
// a 4 KiB read from the page cache: the wake-up readies a goroutine, which
// with an idle P also wakes an OS thread to look for work, and replies
// produced on several goroutines rarely meet in one writev. So the goroutine
// holding the connection's reader role runs small requests itself
// ("inline"), one after the other, and queues their replies without writing
// them; it writes them all, in one writev, just before it would block
// reading the socket (or once they exceed flushBytes). A client that
// pipelines requests thus costs one read and one write system call per
// batch and no hand-off at all.
//
// A request that should not hold up reading (a large transfer, a FLUSH or
// FUA write, or any request while the connection is slow, see below) is run
// by the goroutine that read it too, but only after that goroutine has
// passed the reader role on to an idle goroutine of the connection (started
// if there is none): the request starts at once and reading goes on beside
// it, as with a thread per request. A goroutine that has run such a request
// waits until the role comes back to it. Each goroutine but the reader
// holds a request in flight, so Config.MaxRequests bounds their number.
//
// The Device may be slow when nothing says so (a cold cache, a real disk,
// writeback throttling, a filter that waits). While the reader runs
// requests inline, a watchdog timer ticks every watchTick; when it finds the
// same inline request running at two ticks in a row, it takes the reader
// role from that request and passes it on, and the connection turns slow for
// a spell: every request then passes the role on before it runs. A stall
// thus delays the requests queued behind it by one or two ticks (timers are
// coarse on an idle runtime: up to a millisecond more), once per spell.
// Spells start at minSpell and double, up to maxSpell, while stalls follow
// each other closely, so that a Device that is slow for good is rarely tried
// inline, while one that hiccups (or a thread that the kernel preempted)
// soon gets inline service back. The watchdog ticks rather than being armed
// for each request because arming a timer may wake the network poller's
// thread, which would cost more than the request.

const (
	// inlineMax is the largest READ or WRITE run inline. Beyond it the
	// copies dominate and running two transfers at once (one being read
	// while another is sent) pays for passing the role on.
	inlineMax = 64 << 10
	// watchTick is the watchdog's period: far above what the page cache
	// needs, short enough that a stalled Device does not serialize much.
	watchTick = 200 * time.Microsecond
	// watchIdle is how many ticks without inline work stop the watchdog
	// (the reader restarts it).
	watchIdle = 16
	// minSpell and maxSpell bound a slow spell. A stall within
	// spellMemory spells of the previous one doubles the spell.
	minSpell    = time.Millisecond
	maxSpell    = 100 * time.Millisecond
	spellMemory = 10
	// flushBytes bounds the payload bytes of replies held back by the
	// reader, so that large reads still stream.
	flushBytes = 256 << 10
)

// serveTransmission reads requests until the client disconnects, breaks
// the protocol, or the connection is drained; then it waits for the
// requests in flight to be answered and closes the connection.
func (c *conn) serveTransmission() {
	// Replies are flushed before every read of the socket, which is when
	// the reader could block.
	c.br = bufio.NewReaderSize(flushingReader{c}, 64<<10)
	switch c.rw.(type) {
	case *net.TCPConn, *net.UnixConn:
		c.vectored = true // batches go out with one writev
	default:
		c.bw = bufio.NewWriterSize(c.rw, 64<<10)
	}
	c.lead = make(chan struct{})
	c.readEnd = make(chan struct{})
	c.epoch = time.Now()
	c.watchdog = time.AfterFunc(time.Hour, c.watch)
	c.watchdog.Stop()

	c.serveRole()
	<-c.readEnd
	c.mu.Lock()
	for c.inflight > 0 {
		c.cond.Wait()
	}
	c.mu.Unlock()
	c.wg.Wait()
	c.closeConn()
}

// flushingReader is the socket as the request reader sees it: before each
// read it writes the replies the reader has held back.
type flushingReader struct{ c *conn }

func (f flushingReader) Read(p []byte) (int, error) {
	f.c.flush()
	return f.c.rw.Read(p)
}

// serveRole is the life of each goroutine of the connection: it holds the
// reader role, then (once it passed the role on or lost it) waits for the
// role to come back, until reading ends.
func (c *conn) serveRole() {
	for {
		c.read()
		if _, ok := <-c.lead; !ok {
			return
		}
	}
}

// read holds the reader role: it reads requests and runs them inline,
// until reading stops or this goroutine gives the role up.
func (c *conn) read() {
	for {
		r, ok := c.readRequest()
		if !ok {
			c.endReading()
			return
		}
		if r == nil {
			continue // answered without the Device
		}
		if !c.inline(r) {
			c.passRole()
			c.execute(r)
			return
		}
		if !c.runInline(r) {
			return
		}
	}
}

// passRole gives the reader role to an idle goroutine of the connection,
// starting one if none is idle. The caller must hold the role and not be
// running a request inline (or be the watchdog, which took the role from
// such a request).
func (c *conn) passRole() {
	select {
	case c.lead <- struct{}{}:
	default:
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer c.recoverPanic()
			c.serveRole()
		}()
	}
}

// endReading stops the connection's reading for good: held-back replies
// go out, idle goroutines leave, and serveTransmission may wait for the
// requests still running.
func (c *conn) endReading() {
	c.endOnce.Do(func() {
		close(c.lead)
		c.flush()
		close(c.readEnd)
	})
}

// inline reports whether the reader should run r itself.
func (c *conn) inline(r *Request) bool {
	switch {
	case r.cmd == CmdFlush || r.flags&FlagFUA != 0:
		return false // durable writes take milliseconds
	case (r.cmd == CmdRead || r.cmd == CmdWrite) && r.length > inlineMax:
		return false
	}
	if until := c.slowUntil.Load(); until != 0 {
		if c.now() < until {
			return false
		}
		c.slowUntil.CompareAndSwap(until, 0)
	}
	return true
}

// now is the monotonic time since the connection entered transmission.
func (c *conn) now() int64 { return int64(time.Since(c.epoch)) }

// runInline runs r in the reader. It reports whether this goroutine still
// holds the reader role afterwards; if the watchdog took it, r's reply is
// written at once and the caller must stop reading.
//
// The role word is seq<<1 | running: the holder sets running with a new
// sequence number for each request and clears it when the request is done;
// the watchdog takes the role by moving to a new sequence number without
// running, so the holder's clearing compare-and-swap fails.
func (c *conn) runInline(r *Request) bool {
	v := (c.role.Load()>>1+1)<<1 | 1
	c.role.Store(v)
	if !c.watching.Load() && c.watching.CompareAndSwap(false, true) {
		c.watchdog.Reset(watchTick)
	}
	ext, err := c.invoke(r)
	kept := c.role.CompareAndSwap(v, v-1)
	r.held = kept
	c.complete(r, ext, err)
	return kept
}

// watch is the watchdog tick (in the timer's goroutine; ticks do not
// overlap, since each is armed by the previous one or, once they stopped,
// by the reader). It takes the reader role from an inline request that has
// been running for a whole tick, and stops ticking after watchIdle ticks
// without inline work.
func (c *conn) watch() {
	v := c.role.Load()
	if v == c.watchLast {
		c.watchSame++
	} else {
		c.watchLast, c.watchSame = v, 0
	}
	switch {
	case v&1 != 0 && c.watchSame > 0:
		if c.role.CompareAndSwap(v, v+1) {
			c.slowSpell()
			c.passRole()
		}
	case v&1 == 0 && c.watchSame >= watchIdle:
		// Idle: stop, unless the reader started a request meanwhile
		// and saw the watchdog still running.
		c.watching.Store(false)
		if c.role.Load() == v || !c.watching.CompareAndSwap(false, true) {
			return
		}
	}
	c.watchdog.Reset(watchTick)
}

// slowSpell turns the connection slow after a stall.
func (c *conn) slowSpell() {
	now := c.now()
	c.mu.Lock()
	if c.spell == 0 || now-c.lastStall > spellMemory*int64(c.spell) {
		c.spell = minSpell
	} else {
		c.spell = min(2*c.spell, maxSpell)
	}
	c.lastStall = now
	c.slowUntil.Store(now + int64(c.spell))
	c.mu.Unlock()
}

// readRequest reads one request. It returns the request if the Device must
// run it; requests answered on the spot (protocol errors, zero-length
// no-ops) give nil. ok is false when the connection must stop reading.
func (c *conn) readRequest() (r *Request, ok bool) {
	if _, err := io.ReadFull(c.br, c.rhdr[:]); err != nil {
		c.readFailed(err, "request header")
		return nil, false
	}
	h := c.rhdr[:]
	if binary.BigEndian.Uint32(h[0:]) != magicRequest {
		c.logWarn("nbd: bad request magic; closing", "magic", binary.BigEndian.Uint32(h[0:]))
		return nil, false
	}
	cmd := Command(binary.BigEndian.Uint16(h[6:]))
	if cmd == CmdDisc {
		return nil, false // answer what is in flight, then close
	}
	r = reqPool.Get().(*Request)
	r.c = c
	r.flags = CommandFlags(binary.BigEndian.Uint16(h[4:]))
	r.cmd = cmd
	r.cookie = binary.BigEndian.Uint64(h[8:])
	r.offset = binary.BigEndian.Uint64(h[16:])
	r.length = binary.BigEndian.Uint32(h[24:])
	// Replies made by the reader are held back until it would block.
	r.held = true

	if cmd == CmdWrite {
		return c.readWrite(r)
	}
	errno, msg, noop := c.check(r)
	var charge int64
	if errno == 0 && !noop && cmd == CmdRead {
		charge = int64(r.length)
	}
	c.acquire(r, charge)
	switch {
	case errno != 0:
		c.replyError(r, errno, msg)
	case noop:
		c.replyOK(r)
	default:
		return r, true
	}
	return nil, true
}

// readWrite reads a WRITE's payload. Whatever the request's fate, the
// payload is consumed so that the next header is found where the client
// put it: an oversized one is skipped in constant memory and refused.
func (c *conn) readWrite(r *Request) (*Request, bool) {
	if r.length > c.maxPayload {
		c.acquire(r, 0)
		if _, err := io.CopyN(discard, c.br, int64(r.length)); err != nil {
			c.readFailed(err, "oversized write payload")
			c.finish(r)
			return nil, false
		}
		c.replyError(r, EINVAL, "write larger than the maximum payload")
		return nil, true
	}
	c.acquire(r, int64(r.length))
	if r.length > 0 {
		r.bufp = getBuf(int(r.length))
		r.data = (*r.bufp)[:r.length]
		if _, err := io.ReadFull(c.br, r.data); err != nil {
			c.readFailed(err, "write payload")
			c.finish(r)
			return nil, false
		}
	}
	errno, msg, noop := c.check(r)
	switch {
	case errno != 0:
		c.replyError(r, errno, msg)
	case noop:
		c.replyOK(r)
	default:
		return r, true
	}
	return nil, true
}

func (c *conn) readFailed(err error, what string) {
	c.mu.Lock()
	draining := c.draining
	c.mu.Unlock()
	switch {
	case draining && isTimeout(err):
		// Shutdown or RemoveExport: expected.
	case errors.Is(err, io.EOF) && what == "request header":
		c.logDebug("nbd: client closed the connection")
	default:
		c.logDebug("nbd: connection read failed", "reading", what, "err", err)
	}
}

// check validates a request against the negotiated parameters. noop means
// a zero-length request that succeeds without reaching the Device.
func (c *conn) check(r *Request) (errno Errno, msg string, noop bool) {
	var allowed CommandFlags
	if !c.readOnly {
		allowed = FlagFUA // advertised (SEND_FUA) only on writable exports
	}
	writes := false
	switch r.cmd {
	case CmdRead:
		if c.structured {
			allowed |= FlagDF
		}
	case CmdWrite, CmdTrim:
		writes = true
	case CmdWriteZeroes:
		writes = true
		allowed |= FlagNoHole | FlagFastZero
	case CmdFlush, CmdCache:
	case CmdBlockStatus:
		allowed |= FlagReqOne
	default:
		return EINVAL, "unknown command", false
	}
	if writes && c.readOnly {
		return EPERM, "export is read-only", false
	}
	if r.flags&^allowed != 0 {
		return EINVAL, "command flag not valid for this command", false
	}
	if r.cmd == CmdFlush {
		return 0, "", false // offset and length are reserved
	}
	if r.cmd == CmdBlockStatus && !c.bstatus {
		return EINVAL, "no metadata context was negotiated", false
	}
	if r.offset > c.size || uint64(r.length) > c.size-r.offset {
		if r.cmd == CmdWrite || r.cmd == CmdWriteZeroes {
			return ENOSPC, "request beyond the end of the export", false
		}
		return EINVAL, "request beyond the end of the export", false
	}
	if c.blockSizes && r.cmd != CmdTrim && c.unaligned(int64(r.offset), int64(r.length)) {
		// Only a client that agreed to the block sizes is held to them
		// (see unaligned.go); a TRIM is rounded inward instead.
		return EINVAL, "request not aligned to the minimum block size", false
	}
	if (r.cmd == CmdRead || r.cmd == CmdWrite) && r.length > c.maxPayload {
		return EINVAL, "request larger than the maximum payload", false
	}
	if r.length == 0 {
		if r.cmd == CmdBlockStatus {
			return EINVAL, "zero-length block status", false
		}
		return 0, "", true
	}
	return 0, "", false
}

// acquire counts a request against the connection's in-flight limits,
// waiting while they are exceeded. A lone request always gets through, so
// the reader cannot wait forever; and before waiting it writes the replies
// it has held back, which may be what holds the limits.
func (c *conn) acquire(r *Request, n int64) {
	cfg := &c.srv.cfg
	flushed := false
	c.mu.Lock()
	for c.inflight > 0 && (c.inflight >= cfg.MaxRequests || c.inflightBy+n > cfg.MaxBytesInFlight) {
		if !flushed {
			c.mu.Unlock()
			c.flush()
			c.mu.Lock()
			flushed = true
			continue
		}
		c.cond.Wait()
	}
	c.inflight++
	c.inflightBy += n
	c.mu.Unlock()
	r.charge = n
}

// execute runs a request on the Device and queues its reply.
func (c *conn) execute(r *Request) {
	r.held = false
	ext, err := c.invoke(r)
	c.complete(r, ext, err)
}

// complete queues the reply to a request the Device has run.
func (c *conn) complete(r *Request, ext []Extent, err error) {
	switch {
	case err != nil:
		c.replyDeviceError(r, err)
	case r.cmd == CmdRead:
		c.replyRead(r)
	case r.cmd == CmdBlockStatus:
		c.replyBlockStatus(r, ext)
	default:
		c.replyOK(r)
	}
}

// invoke calls the Device. A panicking Device fails its request with EIO
// instead of taking the server down.
func (c *conn) invoke(r *Request) (ext []Extent, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.srv.log.Error("nbd: device panicked", "requestor", c.requestor, "export", c.exp.Name, "command", r.cmd.String(), "panic", p)
			ext, err = nil, fmt.Errorf("nbd: device panicked: %v: %w", p, EIO)
		}
	}()
	dev := c.exp.Device
	off, n := int64(r.offset), int64(r.length)
	switch r.cmd {
	case CmdRead:
		if c.unaligned(off, n) {
			return nil, c.readUnaligned(r, off, n)
		}
		if l, ok := dev.(Lender); ok && r.length >= LendMin {
			data, release, err := l.LendRead(r, off, int(r.length))
			if !errors.Is(err, ErrNotLent) {
				if err == nil && len(data) < int(r.length) {
					if release != nil {
						release()
					}
					err = fmt.Errorf("nbd: device lent %d bytes of a %d-byte read: %w", len(data), r.length, EIO)
				}
				if err == nil {
					r.data, r.release = data[:r.length], release
				}
				return nil, err
			}
		}
		r.bufp = getBuf(int(r.length))
		r.data = (*r.bufp)[:r.length]
		return nil, dev.ReadAt(r, r.data, off)
	case CmdWrite:
		if c.unaligned(off, n) {
			return nil, c.writeUnaligned(r, r.data, off)
		}
		return nil, dev.WriteAt(r, r.data, off)
	case CmdFlush:
		return nil, dev.Flush(r)
	case CmdTrim:
		if off, n = c.inward(off, n); n == 0 {
			return nil, nil // a hint about less than a block
		}
		return nil, dev.Trim(r, off, n)
	case CmdWriteZeroes:
		if c.unaligned(off, n) {
			return nil, c.zeroUnaligned(r, off, n)
		}
		return nil, dev.WriteZeroes(r, off, n)
	case CmdCache:
		return nil, dev.Cache(r, off, n)
	case CmdBlockStatus:
		return dev.BlockStatus(r, off, n, r.ext[:0])
	}
	return nil, EINVAL // unreachable: check admits only the commands above
}

// Reply construction. Each reply is r.hdr[:r.hdrLen] followed by
// r.payload; send queues it.

func (c *conn) simpleHeader(r *Request, errno Errno) {
	h := r.hdr[:simpleReplyLen]
	binary.BigEndian.PutUint32(h[0:], magicSimple)
	binary.BigEndian.PutUint32(h[4:], uint32(errno))
	binary.BigEndian.PutUint64(h[8:], r.cookie)
	r.hdrLen = simpleReplyLen
}

func (c *conn) chunkHeader(r *Request, typ uint16, length int) {
	h := r.hdr[:structuredHeaderLen]
	binary.BigEndian.PutUint32(h[0:], magicStructure)
	binary.BigEndian.PutUint16(h[4:], replyFlagDone)
	binary.BigEndian.PutUint16(h[6:], typ)
	binary.BigEndian.PutUint64(h[8:], r.cookie)
	binary.BigEndian.PutUint32(h[16:], uint32(length))
	r.hdrLen = structuredHeaderLen
}

// replyOK answers success without data.
func (c *conn) replyOK(r *Request) {
	if c.structured && r.cmd == CmdRead {
		// A read must get a structured reply; an empty one is NONE.
		c.chunkHeader(r, replyTypeNone, 0)
	} else {
		c.simpleHeader(r, 0)
	}
	r.payload = nil
	c.send(r)
}

// replyRead answers a successful read with its data, in one chunk (which
// also honours NBD_CMD_FLAG_DF).
func (c *conn) replyRead(r *Request) {
	if c.structured {
		c.chunkHeader(r, replyTypeOffsetData, 8+len(r.data))
		binary.BigEndian.PutUint64(r.hdr[structuredHeaderLen:], r.offset)
		r.hdrLen = structuredHeaderLen + 8
	} else {
		c.simpleHeader(r, 0)
	}
	r.payload = r.data
	c.send(r)
}

func (c *conn) replyDeviceError(r *Request, err error) {
	errno := c.srv.deviceErrno(err)
	msg := ""
	if c.srv.cfg.ErrorMessages {
		msg = err.Error()
	}
	var oe *OffsetError
	if c.structured && errors.As(err, &oe) && oe.Offset >= int64(r.offset) && oe.Offset-int64(r.offset) < int64(r.length) {
		c.replyErrorOffset(r, errno, msg, oe.Offset)
		return
	}
	c.replyError(r, errno, msg)
}

// replyErrorOffset answers a partial failure: for a READ, a data chunk
// with what was read before the failing offset, then (or alone) an
// NBD_REPLY_TYPE_ERROR_OFFSET chunk ending the reply.
func (c *conn) replyErrorOffset(r *Request, errno Errno, msg string, off int64) {
	msg = sanitize(msg)
	e := r.aux[:0]
	e = binary.BigEndian.AppendUint32(e, magicStructure)
	e = binary.BigEndian.AppendUint16(e, replyFlagDone)
	e = binary.BigEndian.AppendUint16(e, replyTypeErrorOffset)
	e = binary.BigEndian.AppendUint64(e, r.cookie)
	e = binary.BigEndian.AppendUint32(e, uint32(14+len(msg)))
	e = binary.BigEndian.AppendUint32(e, uint32(errno))
	e = binary.BigEndian.AppendUint16(e, uint16(len(msg)))
	e = append(e, msg...)
	e = binary.BigEndian.AppendUint64(e, uint64(off))
	r.aux = e

	if done := int(off - int64(r.offset)); r.cmd == CmdRead && done > 0 {
		// The data chunk first (not final), then the error chunk.
		c.chunkHeader(r, replyTypeOffsetData, 8+done)
		binary.BigEndian.PutUint16(r.hdr[4:], 0)
		binary.BigEndian.PutUint64(r.hdr[structuredHeaderLen:], r.offset)
		r.hdrLen = structuredHeaderLen + 8
		r.payload = r.data[:done]
		r.trailer = e
	} else {
		r.hdrLen = copy(r.hdr[:], e[:structuredHeaderLen])
		r.payload = e[structuredHeaderLen:]
	}
	c.send(r)
}

// sanitize makes msg a valid NBD string of bounded length.
func sanitize(msg string) string {
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	if !validString(msg) {
		msg = strings.ToValidUTF8(strings.ReplaceAll(msg, "\x00", ""), "?")
	}
	return msg
}

// replyError answers an error: with an NBD_REPLY_TYPE_ERROR chunk (which
// can carry a message) when structured replies are on, else a simple reply
// without data.
func (c *conn) replyError(r *Request, errno Errno, msg string) {
	if !c.structured {
		c.simpleHeader(r, errno)
		r.payload = nil
		c.send(r)
		return
	}
	msg = sanitize(msg)
	c.chunkHeader(r, replyTypeError, 6+len(msg))
	binary.BigEndian.PutUint32(r.hdr[structuredHeaderLen:], uint32(errno))
	binary.BigEndian.PutUint16(r.hdr[structuredHeaderLen+4:], uint16(len(msg)))
	r.hdrLen = structuredHeaderLen + 6
	r.aux = append(r.aux[:0], msg...)
	r.payload = r.aux
	c.send(r)
}

// validString reports whether s may be sent as an NBD string.
func validString(s string) bool {
	return strings.IndexByte(s, 0) < 0 && utf8.ValidString(s)
}

// replyBlockStatus answers with one NBD_REPLY_TYPE_BLOCK_STATUS chunk for
// base:allocation. The Device's extents are clipped to the request, merged
// where their flags agree, and bounded in number; REQ_ONE keeps the first.
func (c *conn) replyBlockStatus(r *Request, ext []Extent) {
	b := r.aux[:0]
	b = binary.BigEndian.AppendUint32(b, metaContextID)
	remaining := int64(r.length)
	var curLen int64
	var curFlags uint32
	count := 0
	reqOne := r.flags&FlagReqOne != 0
	for _, e := range ext {
		if e.Length <= 0 {
			continue
		}
		l := min(e.Length, remaining)
		f := e.Flags & (StateHole | StateZero)
		if curLen > 0 && f != curFlags {
			b = binary.BigEndian.AppendUint32(b, uint32(curLen))
			b = binary.BigEndian.AppendUint32(b, curFlags)
			count++
			curLen = 0
			if reqOne || count == maxExtents {
				break
			}
		}
		curLen += l
		curFlags = f
		remaining -= l
		if remaining == 0 {
			break
		}
	}
	if curLen > 0 {
		b = binary.BigEndian.AppendUint32(b, uint32(curLen))
		b = binary.BigEndian.AppendUint32(b, curFlags)
		count++
	}
	if count == 0 {
		// Nothing usable: "no flags" is always a correct status.
		b = binary.BigEndian.AppendUint32(b, r.length)
		b = binary.BigEndian.AppendUint32(b, 0)
	}
	r.aux = b
	if cap(ext) <= maxExtents {
		r.ext = ext[:0] // keep the Device's slice for the next request
	}
	c.chunkHeader(r, replyTypeBlockStatus, len(b))
	r.payload = b
	c.send(r)
}

// send queues a reply. Unless the reply is held back (see Request.held),
// or another goroutine is writing, this goroutine becomes the writer and
// sends everything queued, in batches, until the queue is empty; the others
// return at once to run more requests. Replies thus go out in completion
// order, with one system call for all replies that completed while the
// previous batch was being written.
func (c *conn) send(r *Request) {
	c.qmu.Lock()
	c.pending = append(c.pending, r)
	c.pendingN += len(r.payload)
	if c.writing || (r.held && c.pendingN < flushBytes) {
		c.qmu.Unlock()
		return
	}
	c.write()
}

// flush writes the queued replies unless another goroutine is writing
// them already.
func (c *conn) flush() {
	c.qmu.Lock()
	if c.writing || len(c.pending) == 0 {
		c.qmu.Unlock()
		return
	}
	c.write()
}

// write is the writer's loop. It is entered with qmu held and writing
// false, and returns with qmu released.
func (c *conn) write() {
	c.writing = true
	for len(c.pending) > 0 {
		batch := c.pending
		c.pending = c.spare[:0]
		c.pendingN = 0
		failed := c.werr != nil
		c.qmu.Unlock()

		var err error
		if !failed {
			err = c.writeBatch(batch)
		}
		for i, r := range batch {
			c.finish(r)
			batch[i] = nil
		}

		c.qmu.Lock()
		c.spare = batch[:0]
		if err != nil && c.werr == nil {
			c.werr = err
			c.logDebug("nbd: reply write failed; closing", "err", err)
			// Nothing more can be said to this client: stop the reader
			// and cancel the Device calls still running.
			c.cancel()
			c.nc.Close()
		}
	}
	c.writing = false
	c.qmu.Unlock()
}

// writeBatch writes the replies of batch in order.
func (c *conn) writeBatch(batch []*Request) error {
	if !c.vectored {
		for _, r := range batch {
			c.bw.Write(r.hdr[:r.hdrLen])
			c.bw.Write(r.payload)
			c.bw.Write(r.trailer)
		}
		return c.bw.Flush()
	}
	iov := c.iov[:0]
	for _, r := range batch {
		iov = append(iov, r.hdr[:r.hdrLen])
		if len(r.payload) > 0 {
			iov = append(iov, r.payload)
		}
		if len(r.trailer) > 0 {
			iov = append(iov, r.trailer)
		}
	}
	c.iov = iov
	c.iovw = iov
	_, err := c.iovw.WriteTo(c.rw)
	clear(iov) // drop references to buffers about to be recycled
	return err
}

// finish recycles a request whose reply has been written (or dropped).
func (c *conn) finish(r *Request) {
	if r.release != nil {
		r.release()
		r.release = nil
	}
	if r.bufp != nil {
		putBuf(r.bufp)
		r.bufp = nil
	}
	r.data = nil
	r.payload = nil
	r.trailer = nil
	r.hdrLen = 0
	if cap(r.aux) > 64<<10 {
		r.aux = nil
	}
	c.mu.Lock()
	c.inflight--
	c.inflightBy -= r.charge
	c.cond.Signal()
	c.mu.Unlock()
	r.charge = 0
	r.c = nil
	reqPool.Put(r)
}
