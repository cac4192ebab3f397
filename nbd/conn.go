package nbd

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// conn is one client connection. The handshake runs in the serve
// goroutine, which then becomes the request reader of the transmission
// phase. The reader runs small requests itself; for the others it passes
// the reader role on to another goroutine of the connection (see
// transmit.go). Whichever goroutine finds the socket free writes every
// queued reply in one batch.
type conn struct {
	srv       *Server
	id        uint64
	nc        net.Conn // the accepted socket; deadlines and Close go here
	rw        net.Conn // nc, or the *tls.Conn over it after STARTTLS
	requestor string
	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{} // closed when serve has returned

	// Negotiation state, owned by the serve goroutine until transmission
	// starts and read-only afterwards.
	hw         *bufio.Writer
	optBuf     []byte
	tls        bool
	structured bool
	noZeroes   bool
	metaExp    *exportEntry // export of the last successful SET_META_CONTEXT with base:allocation
	exp        *exportEntry // set under Server.mu by bindExport
	size       uint64
	minBlock   uint32
	blockSizes bool // the client asked for NBD_INFO_BLOCK_SIZE in NBD_OPT_GO
	maxPayload uint32
	readOnly   bool
	bstatus    bool // base:allocation selected for exp

	// Reader state, owned by the goroutine holding the reader role (the
	// role passes on through lead, a go statement, or role's
	// compare-and-swap, which order the accesses).
	br   *bufio.Reader
	rhdr [requestHeaderLen]byte

	// Reader role and execution mode.
	lead      chan struct{}  // passes the reader role to an idle goroutine
	role      atomic.Uint64  // seq<<1 | 1 while the holder runs a request inline
	watching  atomic.Bool    // the watchdog is ticking
	watchdog  *time.Timer    // runs watch
	watchLast uint64         // role at the previous tick (watch only)
	watchSame int32          // ticks role has not changed (watch only)
	epoch     time.Time      // the origin of now()
	slowUntil atomic.Int64   // now() at which a slow spell ends; 0: not slow
	wg        sync.WaitGroup // the goroutines started by passRole
	readEnd   chan struct{}  // closed when reading has stopped for good
	endOnce   sync.Once

	// mu guards the fields below; cond (on mu) wakes the reader when
	// in-flight requests drop.
	mu         sync.Mutex
	cond       sync.Cond
	draining   bool // stop reading: Shutdown or RemoveExport
	transmit   bool // negotiation is over
	inflight   int
	inflightBy int64
	spell      time.Duration // length of the last slow spell
	lastStall  int64         // now() of the last takeover

	// qmu guards the reply queue. The goroutine that finds writing false
	// (and the queue due for writing) sets it and writes batches until the
	// queue is empty; the socket is written only by that goroutine, without
	// holding qmu.
	qmu      sync.Mutex
	pending  []*Request
	pendingN int // payload bytes in pending
	spare    []*Request
	writing  bool
	werr     error // first write error; replies after it are dropped

	// Writer state, used only by the goroutine that has writing set.
	vectored bool
	iov      [][]byte
	iovw     net.Buffers
	bw       *bufio.Writer
}

// serve runs the connection to its end.
func (c *conn) serve() {
	s := c.srv
	defer func() {
		c.cancel()
		s.forgetConn(c)
		close(c.done)
	}()
	defer c.recoverPanic()
	if tc, ok := c.nc.(*net.TCPConn); ok {
		// Replies are written whole; Nagle would only delay them.
		tc.SetNoDelay(true)
	}
	if !c.handshake() {
		c.closeConn()
		return
	}
	c.serveTransmission()
}

// recoverPanic, deferred by each goroutine of the connection, turns a
// panic into the end of the connection: a bug must cost one connection,
// not the whole server.
func (c *conn) recoverPanic() {
	if p := recover(); p != nil {
		c.srv.log.Error("nbd: connection panicked", "requestor", c.requestor, "panic", p)
		c.nc.Close()
		if c.readEnd != nil {
			c.endReading() // let the connection's other goroutines go
		}
	}
}

// drain asks the connection to stop reading and finish what it has.
func (c *conn) drain() {
	c.mu.Lock()
	c.draining = true
	c.mu.Unlock()
	// Wake a reader blocked on the socket; it sees draining and stops.
	c.nc.SetReadDeadline(time.Now())
}

// abort closes the connection at once.
func (c *conn) abort() {
	c.cancel()
	c.nc.Close()
}

// closeConn ends the session, shutting TLS down first when it is running
// (as the spec asks for both kinds of disconnect).
func (c *conn) closeConn() {
	if tc, ok := c.rw.(*tls.Conn); ok {
		// close_notify must not wait on a client that stopped reading.
		c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		tc.Close()
		return
	}
	c.nc.Close()
}

// setDeadline applies a handshake deadline unless the connection is
// draining (whose deadline in the past must stay).
func (c *conn) setDeadline(t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.draining {
		return false
	}
	c.nc.SetDeadline(t)
	return true
}

func (c *conn) logDebug(msg string, args ...any) {
	c.srv.log.Debug(msg, append([]any{"requestor", c.requestor}, args...)...)
}

func (c *conn) logWarn(msg string, args ...any) {
	c.srv.log.Warn(msg, append([]any{"requestor", c.requestor}, args...)...)
}

// errStop ends negotiation without an error worth logging (ABORT, or a
// client that went away).
var errStop = errors.New("negotiation ended")

// maxOptionData bounds the option payload the server buffers. Every option
// it understands fits easily (names and queries are at most 4096 bytes);
// larger payloads are skipped and answered NBD_REP_ERR_TOO_BIG.
const maxOptionData = 64 << 10

// handshake runs fixed newstyle negotiation. It returns true when the
// connection has entered transmission with an export bound.
func (c *conn) handshake() bool {
	if !c.setDeadline(time.Now().Add(c.srv.cfg.HandshakeTimeout)) {
		return false
	}
	c.hw = bufio.NewWriterSize(c.rw, 4096)
	var b [18]byte
	binary.BigEndian.PutUint64(b[0:], magicInit)
	binary.BigEndian.PutUint64(b[8:], magicOpt)
	binary.BigEndian.PutUint16(b[16:], flagFixedNewstyle|flagNoZeroes)
	c.hw.Write(b[:18])
	if err := c.hw.Flush(); err != nil {
		c.logDebug("nbd: greeting not sent", "err", err)
		return false
	}
	if _, err := io.ReadFull(c.rw, b[:4]); err != nil {
		c.logDebug("nbd: no client flags", "err", err)
		return false
	}
	cflags := binary.BigEndian.Uint32(b[:4])
	if cflags&^clientKnownFlags != 0 {
		c.logWarn("nbd: client sent unknown handshake flags", "flags", cflags)
		return false
	}
	if cflags&clientFixedNewstyle == 0 {
		// Plain newstyle cannot be told about unknown options; the
		// server only speaks fixed newstyle.
		c.logWarn("nbd: client does not speak fixed newstyle")
		return false
	}
	c.noZeroes = cflags&clientNoZeroes != 0

	for {
		done, err := c.option()
		if err == nil {
			err = c.hw.Flush()
		}
		if err != nil {
			if err != errStop {
				c.logDebug("nbd: negotiation ended", "err", err)
			}
			return false
		}
		if done {
			if !c.enterTransmission() {
				return false
			}
			c.logDebug("nbd: client connected", "export", c.exp.Name, "tls", c.tls,
				"structured_replies", c.structured, "block_sizes", c.blockSizes)
			return true
		}
	}
}

// option reads and answers one option. done means transmission starts.
func (c *conn) option() (done bool, err error) {
	var h [optionHeaderLen]byte
	if _, err := io.ReadFull(c.rw, h[:]); err != nil {
		return false, err
	}
	if binary.BigEndian.Uint64(h[0:]) != magicOpt {
		return false, errors.New("bad option magic")
	}
	opt := binary.BigEndian.Uint32(h[8:])
	length := binary.BigEndian.Uint32(h[12:])

	// Read (or skip) the option data first, so that whatever we answer
	// the stream stays in step.
	var data []byte
	if length > maxOptionData {
		if opt == optExportName {
			return false, errors.New("export name too long")
		}
		if _, err := io.CopyN(discard, c.rw, int64(length)); err != nil {
			return false, err
		}
		if c.srv.cfg.TLSRequired && !c.tls && opt != optStartTLS && opt != optAbort {
			return false, c.reply(opt, repErrTLSReqd, "TLS is required")
		}
		if !knownOption(opt) {
			return false, c.reply(opt, repErrUnsup, "unknown option")
		}
		return false, c.reply(opt, repErrTooBig, "option data too large")
	}
	if cap(c.optBuf) < int(length) {
		c.optBuf = make([]byte, length)
	}
	data = c.optBuf[:length]
	if _, err := io.ReadFull(c.rw, data); err != nil {
		return false, err
	}

	if c.srv.cfg.TLSRequired && !c.tls {
		switch opt {
		case optStartTLS, optAbort:
		case optExportName:
			// Cannot be refused with an error: end the session.
			return false, errors.New("NBD_OPT_EXPORT_NAME before required TLS")
		default:
			return false, c.reply(opt, repErrTLSReqd, "TLS is required: send NBD_OPT_STARTTLS first")
		}
	}

	switch opt {
	case optExportName:
		return c.optExportName(data)
	case optAbort:
		// The client may already have closed; a failed ACK does not matter.
		c.reply(opt, repAck, "")
		c.hw.Flush()
		return false, errStop
	case optList:
		return false, c.optList(data)
	case optStartTLS:
		return false, c.optStartTLS(data)
	case optInfo, optGo:
		return c.optInfoGo(opt, data)
	case optStructuredReply:
		if len(data) != 0 {
			return false, c.reply(opt, repErrInvalid, "NBD_OPT_STRUCTURED_REPLY takes no data")
		}
		c.structured = true
		return false, c.reply(opt, repAck, "")
	case optListMetaContext, optSetMetaContext:
		return false, c.optMetaContext(opt, data)
	}
	return false, c.reply(opt, repErrUnsup, "unknown option")
}

func knownOption(opt uint32) bool {
	switch opt {
	case optExportName, optAbort, optList, optStartTLS, optInfo, optGo,
		optStructuredReply, optListMetaContext, optSetMetaContext:
		return true
	}
	return false
}

// reply queues an option reply whose data is a string (an error message,
// or nothing).
func (c *conn) reply(opt, typ uint32, msg string) error {
	c.replyHeader(opt, typ, len(msg))
	_, err := c.hw.WriteString(msg)
	return err
}

func (c *conn) replyHeader(opt, typ uint32, length int) {
	var h [optReplyHeaderLen]byte
	binary.BigEndian.PutUint64(h[0:], magicOptReply)
	binary.BigEndian.PutUint32(h[8:], opt)
	binary.BigEndian.PutUint32(h[12:], typ)
	binary.BigEndian.PutUint32(h[16:], uint32(length))
	c.hw.Write(h[:])
}

func (c *conn) optList(data []byte) error {
	if len(data) != 0 {
		return c.reply(optList, repErrInvalid, "NBD_OPT_LIST takes no data")
	}
	s := c.srv
	s.mu.Lock()
	list := append([]*exportEntry(nil), s.order...)
	s.mu.Unlock()
	for _, e := range list {
		// Name, then the description as the human-readable detail the
		// spec allows after it.
		c.replyHeader(optList, repServer, 4+len(e.Name)+len(e.Description))
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(e.Name)))
		c.hw.Write(n[:])
		c.hw.WriteString(e.Name)
		c.hw.WriteString(e.Description)
	}
	return c.reply(optList, repAck, "")
}

func (c *conn) optStartTLS(data []byte) error {
	cfg := c.srv.cfg.TLSConfig
	switch {
	case len(data) != 0:
		return c.reply(optStartTLS, repErrInvalid, "NBD_OPT_STARTTLS takes no data")
	case cfg == nil:
		return c.reply(optStartTLS, repErrPolicy, "TLS is not configured on this server")
	case c.tls:
		return c.reply(optStartTLS, repErrInvalid, "TLS is already running")
	}
	if err := c.reply(optStartTLS, repAck, ""); err != nil {
		return err
	}
	if err := c.hw.Flush(); err != nil {
		return err
	}
	tc := tls.Server(c.nc, cfg)
	// The handshake deadline set on nc still bounds the TLS handshake.
	if err := tc.HandshakeContext(c.ctx); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	c.rw = tc
	c.hw.Reset(tc)
	c.tls = true
	// The spec: nothing negotiated before STARTTLS survives it.
	c.structured = false
	c.metaExp = nil
	return nil
}

// parseInfo decodes the data of NBD_OPT_INFO and NBD_OPT_GO.
func parseInfo(data []byte) (name string, reqs []byte, ok bool) {
	if len(data) < 6 {
		return "", nil, false
	}
	n := binary.BigEndian.Uint32(data)
	if uint64(n) > uint64(len(data)-6) || n > maxString {
		return "", nil, false
	}
	name = string(data[4 : 4+n])
	rest := data[4+n:]
	count := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) != 2*count {
		return "", nil, false
	}
	return name, rest, true
}

func (c *conn) transmissionFlags(e *exportEntry) uint16 {
	f := uint16(tflagHasFlags | tflagSendFlush | tflagSendCache)
	if !e.SingleConn {
		f |= tflagCanMultiConn
	}
	if c.structured {
		f |= tflagSendDF
	}
	if e.ReadOnly {
		f |= tflagReadOnly
	} else {
		f |= tflagSendFUA | tflagSendTrim | tflagSendWriteZeroes | tflagSendFastZero
	}
	return f
}

func (c *conn) optInfoGo(opt uint32, data []byte) (bool, error) {
	name, reqs, ok := parseInfo(data)
	if !ok {
		return false, c.reply(opt, repErrInvalid, "malformed NBD_OPT_INFO/NBD_OPT_GO data")
	}
	var e *exportEntry
	if opt == optGo {
		e = c.srv.bindExport(c, name)
	} else {
		e = c.srv.lookup(name)
	}
	if e == nil {
		c.logDebug("nbd: client asked for an unknown export", "export", name)
		return false, c.reply(opt, repErrUnknown, "no such export")
	}
	size := e.Device.Size()
	flags := c.transmissionFlags(e)

	var b [14]byte
	binary.BigEndian.PutUint16(b[0:], infoExport)
	binary.BigEndian.PutUint64(b[2:], uint64(size))
	binary.BigEndian.PutUint16(b[10:], flags)
	c.replyHeader(opt, repInfo, 12)
	c.hw.Write(b[:12])

	// Block sizes are always sent: clients that did not ask may ignore
	// them (and are served at 1-byte granularity), those that did must
	// obey them.
	binary.BigEndian.PutUint16(b[0:], infoBlockSize)
	binary.BigEndian.PutUint32(b[2:], e.MinBlock)
	binary.BigEndian.PutUint32(b[6:], e.PreferredBlock)
	binary.BigEndian.PutUint32(b[10:], e.MaxBlock)
	c.replyHeader(opt, repInfo, 14)
	c.hw.Write(b[:14])

	var sentName, sentDesc, askedSizes bool
	for i := 0; i+1 < len(reqs); i += 2 {
		switch binary.BigEndian.Uint16(reqs[i:]) {
		case infoBlockSize:
			askedSizes = true
		case infoName:
			if !sentName {
				sentName = true
				binary.BigEndian.PutUint16(b[0:], infoName)
				c.replyHeader(opt, repInfo, 2+len(e.Name))
				c.hw.Write(b[:2])
				c.hw.WriteString(e.Name)
			}
		case infoDescription:
			if !sentDesc && e.Description != "" {
				sentDesc = true
				binary.BigEndian.PutUint16(b[0:], infoDescription)
				c.replyHeader(opt, repInfo, 2+len(e.Description))
				c.hw.Write(b[:2])
				c.hw.WriteString(e.Description)
			}
		}
	}
	if err := c.reply(opt, repAck, ""); err != nil {
		return false, err
	}
	if opt == optInfo {
		return false, nil
	}
	c.setExport(e, size)
	c.blockSizes = askedSizes
	return true, nil
}

func (c *conn) optExportName(data []byte) (bool, error) {
	if len(data) > maxString {
		return false, errors.New("export name too long")
	}
	e := c.srv.bindExport(c, string(data))
	if e == nil {
		// NBD_OPT_EXPORT_NAME cannot be refused with an error reply.
		return false, fmt.Errorf("client asked for an unknown export %q", data)
	}
	size := e.Device.Size()
	var b [8 + 2 + 124]byte
	binary.BigEndian.PutUint64(b[0:], uint64(size))
	binary.BigEndian.PutUint16(b[8:], c.transmissionFlags(e))
	n := len(b)
	if c.noZeroes {
		n = 10
	}
	if _, err := c.hw.Write(b[:n]); err != nil {
		return false, err
	}
	c.setExport(e, size)
	return true, nil
}

// setExport fixes the transmission parameters.
func (c *conn) setExport(e *exportEntry, size int64) {
	c.size = uint64(size)
	c.minBlock = e.MinBlock
	c.maxPayload = e.MaxBlock
	c.readOnly = e.ReadOnly
	c.bstatus = c.structured && c.metaExp == e
}

// parseMeta decodes the data of the two META_CONTEXT options.
func parseMeta(data []byte) (name string, queries []string, ok bool) {
	take := func() (string, bool) {
		if len(data) < 4 {
			return "", false
		}
		n := binary.BigEndian.Uint32(data)
		if uint64(n) > uint64(len(data)-4) || n > maxString {
			return "", false
		}
		s := string(data[4 : 4+n])
		data = data[4+n:]
		return s, true
	}
	if name, ok = take(); !ok {
		return "", nil, false
	}
	if len(data) < 4 {
		return "", nil, false
	}
	count := binary.BigEndian.Uint32(data)
	data = data[4:]
	// Each query costs at least 4 bytes, which bounds count by the data.
	if uint64(count) > uint64(len(data))/4 {
		return "", nil, false
	}
	for range count {
		q, ok := take()
		if !ok {
			return "", nil, false
		}
		queries = append(queries, q)
	}
	return name, queries, len(data) == 0
}

func (c *conn) optMetaContext(opt uint32, data []byte) error {
	set := opt == optSetMetaContext
	if set {
		// Even a failed SET replaces the previous selection.
		c.metaExp = nil
		if !c.structured {
			return c.reply(opt, repErrInvalid, "negotiate structured replies first")
		}
	}
	name, queries, ok := parseMeta(data)
	if !ok {
		return c.reply(opt, repErrInvalid, "malformed metadata context request")
	}
	e := c.srv.lookup(name)
	if e == nil {
		return c.reply(opt, repErrUnknown, "no such export")
	}
	match := false
	if !set && len(queries) == 0 {
		match = true // list everything available
	}
	for _, q := range queries {
		ns, _, found := strings.Cut(q, ":")
		if !found || ns != "base" {
			continue // other namespaces are ignored, as the spec demands
		}
		if q == metaAllocation || (!set && q == "base:") {
			match = true
		}
	}
	if match {
		var id uint32
		if set {
			id = metaContextID
			c.metaExp = e
		}
		c.replyHeader(opt, repMetaContext, 4+len(metaAllocation))
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], id)
		c.hw.Write(b[:])
		c.hw.WriteString(metaAllocation)
	}
	return c.reply(opt, repAck, "")
}

// enterTransmission clears the handshake deadline unless a drain has
// already begun, in which case the connection closes instead.
func (c *conn) enterTransmission() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.draining {
		return false
	}
	c.transmit = true
	c.nc.SetDeadline(time.Time{})
	return true
}

// isTimeout reports a deadline error, which in transmission means drain.
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
