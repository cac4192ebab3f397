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
	"unicode/utf8"
)

var reqPool = sync.Pool{New: func() any { return new(Request) }}

// serveTransmission reads requests until the client disconnects, breaks
// the protocol, or the connection is drained; then it waits for the
// requests in flight to be answered and closes the connection.
func (c *conn) serveTransmission() {
	c.br = bufio.NewReaderSize(c.rw, 64<<10)
	switch c.rw.(type) {
	case *net.TCPConn, *net.UnixConn:
		c.vectored = true // batches go out with one writev
	default:
		c.bw = bufio.NewWriterSize(c.rw, 64<<10)
	}
	c.work = make(chan *Request)

	for c.readRequest() {
	}

	close(c.work)
	c.mu.Lock()
	for c.inflight > 0 {
		c.cond.Wait()
	}
	c.mu.Unlock()
	c.wg.Wait()
	c.closeConn()
}

// readRequest reads one request and hands it on. It returns false when the
// connection must stop reading.
func (c *conn) readRequest() bool {
	if _, err := io.ReadFull(c.br, c.rhdr[:]); err != nil {
		c.readFailed(err, "request header")
		return false
	}
	h := c.rhdr[:]
	if binary.BigEndian.Uint32(h[0:]) != magicRequest {
		c.logWarn("nbd: bad request magic; closing", "magic", binary.BigEndian.Uint32(h[0:]))
		return false
	}
	cmd := Command(binary.BigEndian.Uint16(h[6:]))
	if cmd == CmdDisc {
		return false // answer what is in flight, then close
	}
	r := reqPool.Get().(*Request)
	r.c = c
	r.flags = CommandFlags(binary.BigEndian.Uint16(h[4:]))
	r.cmd = cmd
	r.cookie = binary.BigEndian.Uint64(h[8:])
	r.offset = binary.BigEndian.Uint64(h[16:])
	r.length = binary.BigEndian.Uint32(h[24:])

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
		c.dispatch(r)
	}
	return true
}

// readWrite reads a WRITE's payload. Whatever the request's fate, the
// payload is consumed so that the next header is found where the client
// put it: an oversized one is skipped in constant memory and refused.
func (c *conn) readWrite(r *Request) bool {
	if r.length > c.maxPayload {
		c.acquire(r, 0)
		if _, err := io.CopyN(discard, c.br, int64(r.length)); err != nil {
			c.readFailed(err, "oversized write payload")
			c.finish(r)
			return false
		}
		c.replyError(r, EINVAL, "write larger than the maximum payload")
		return true
	}
	c.acquire(r, int64(r.length))
	if r.length > 0 {
		r.bufp = getBuf(int(r.length))
		r.data = (*r.bufp)[:r.length]
		if _, err := io.ReadFull(c.br, r.data); err != nil {
			c.readFailed(err, "write payload")
			c.finish(r)
			return false
		}
	}
	errno, msg, noop := c.check(r)
	switch {
	case errno != 0:
		c.replyError(r, errno, msg)
	case noop:
		c.replyOK(r)
	default:
		c.dispatch(r)
	}
	return true
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
	if m := uint64(c.minBlock) - 1; m != 0 {
		end := r.offset + uint64(r.length)
		if r.offset&m != 0 || (uint64(r.length)&m != 0 && end != c.size) {
			return EINVAL, "request not aligned to the minimum block size", false
		}
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
// the reader cannot wait forever.
func (c *conn) acquire(r *Request, n int64) {
	cfg := &c.srv.cfg
	c.mu.Lock()
	for c.inflight > 0 && (c.inflight >= cfg.MaxRequests || c.inflightBy+n > cfg.MaxBytesInFlight) {
		c.cond.Wait()
	}
	c.inflight++
	c.inflightBy += n
	c.mu.Unlock()
	r.charge = n
}

// dispatch hands a request to an idle worker, starting one if none is idle
// and the limit allows.
func (c *conn) dispatch(r *Request) {
	select {
	case c.work <- r:
		return
	default:
	}
	if c.workers < c.srv.cfg.MaxRequests {
		c.workers++
		c.wg.Add(1)
		go c.worker(r)
		return
	}
	c.work <- r
}

func (c *conn) worker(r *Request) {
	defer c.wg.Done()
	for {
		c.execute(r)
		var ok bool
		if r, ok = <-c.work; !ok {
			return
		}
	}
}

// execute runs one request on the Device and queues its reply.
func (c *conn) execute(r *Request) {
	ext, err := c.invoke(r)
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
		r.bufp = getBuf(int(r.length))
		r.data = (*r.bufp)[:r.length]
		return nil, dev.ReadAt(r, r.data, off)
	case CmdWrite:
		return nil, dev.WriteAt(r, r.data, off)
	case CmdFlush:
		return nil, dev.Flush(r)
	case CmdTrim:
		return nil, dev.Trim(r, off, n)
	case CmdWriteZeroes:
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

// send queues a reply. If no other goroutine is writing, this one becomes
// the writer and sends everything queued, in batches, until the queue is
// empty; the others return at once to run more requests. Replies thus go
// out in completion order, with one system call for all replies that
// completed while the previous batch was being written.
func (c *conn) send(r *Request) {
	c.qmu.Lock()
	c.pending = append(c.pending, r)
	if c.writing {
		c.qmu.Unlock()
		return
	}
	c.writing = true
	for len(c.pending) > 0 {
		batch := c.pending
		c.pending = c.spare[:0]
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
