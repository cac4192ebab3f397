package nbd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// DefaultAddr is the address a server listens on when none is given: the
// IANA NBD port on loopback only, since NBD has no authentication of its own.
const DefaultAddr = "127.0.0.1:10809"

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("nbd: server closed")

// Config configures a Server. The zero value, plus at least one export, is
// usable.
type Config struct {
	// Exports are the exports offered at start; AddExport and RemoveExport
	// change the set later. Names must be unique; one may be "".
	Exports []Export

	// TLSConfig enables NBD_OPT_STARTTLS. It needs at least one
	// certificate. Without it STARTTLS is refused with NBD_REP_ERR_POLICY.
	TLSConfig *tls.Config
	// TLSRequired selects the spec's FORCEDTLS mode: before STARTTLS every
	// option other than STARTTLS and ABORT is refused with
	// NBD_REP_ERR_TLS_REQD (and NBD_OPT_EXPORT_NAME ends the session).
	// It requires TLSConfig.
	TLSRequired bool

	// Errno maps a Device error to the error number sent to the client.
	// Nil means DefaultErrno. A result of 0 for a non-nil error is sent as
	// EIO. vdisk uses it to map NT status codes.
	Errno func(error) Errno
	// ErrorMessages, when true, sends err.Error() as the human-readable
	// message of structured error replies; otherwise only the error number
	// (and a fixed text for errors the server detects itself) is sent, so
	// that internal details such as host paths do not leak to clients.
	ErrorMessages bool

	// HandshakeTimeout bounds the whole option negotiation of one
	// connection, so that a silent or slow client cannot hold a goroutine
	// and a socket forever. 0 means 30 seconds.
	HandshakeTimeout time.Duration
	// MaxRequests is the number of requests one connection may have in
	// flight (read but not yet answered); it is also the most Device calls
	// one connection runs at once. 0 means 64.
	MaxRequests int
	// MaxBytesInFlight bounds the READ and WRITE payload bytes one
	// connection holds at once. 0 means 64 MiB. It must be at least every
	// export's MaxBlock.
	MaxBytesInFlight int64

	// Logger receives connection-level events (handshake failures,
	// protocol violations, socket errors). Nil discards them.
	Logger *slog.Logger
}

// Server is an NBD server. Create it with NewServer, then call Serve for
// each listener (or ServeConn for each connection).
type Server struct {
	cfg    Config
	errno  func(error) Errno
	log    *slog.Logger
	nextID atomic.Uint64

	// mu guards everything below. Lock order: Server.mu, then conn.mu,
	// then conn.qmu; never held across a Device call or socket I/O.
	mu        sync.Mutex
	exports   map[string]*exportEntry
	order     []*exportEntry // NBD_OPT_LIST order
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	shutdown  bool           // no new connections; existing ones drain
	closed    bool           // Close was called
	connWG    sync.WaitGroup // one per tracked connection
}

// exportEntry is a validated export, shared by the connections using it.
type exportEntry struct {
	Export
	rmw sync.Mutex // serializes read-modify-write cycles (unaligned.go)
}

// NewServer checks cfg and returns a server ready to Serve.
func NewServer(cfg Config) (*Server, error) {
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 30 * time.Second
	}
	if cfg.MaxRequests <= 0 {
		cfg.MaxRequests = 64
	}
	if cfg.MaxBytesInFlight <= 0 {
		cfg.MaxBytesInFlight = 64 << 20
	}
	if cfg.TLSRequired && cfg.TLSConfig == nil {
		return nil, errors.New("nbd: TLSRequired needs a TLSConfig")
	}
	if cfg.TLSConfig != nil && len(cfg.TLSConfig.Certificates) == 0 && cfg.TLSConfig.GetCertificate == nil && cfg.TLSConfig.GetConfigForClient == nil {
		return nil, errors.New("nbd: TLSConfig has no certificate")
	}
	s := &Server{
		cfg:       cfg,
		errno:     cfg.Errno,
		log:       cfg.Logger,
		exports:   make(map[string]*exportEntry),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
	}
	if s.errno == nil {
		s.errno = DefaultErrno
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, e := range cfg.Exports {
		if err := s.addExport(e); err != nil {
			return nil, err
		}
	}
	s.cfg.Exports = nil // the map and order are the truth from now on
	return s, nil
}

func isPow2(v uint32) bool { return v != 0 && v&(v-1) == 0 }

// normalize fills in defaults and checks the constraints the spec puts on
// advertised block sizes.
func (s *Server) normalize(e Export) (*exportEntry, error) {
	if e.Device == nil {
		return nil, fmt.Errorf("nbd: export %q has no device", e.Name)
	}
	if len(e.Name) > maxString || !utf8.ValidString(e.Name) || strings.IndexByte(e.Name, 0) >= 0 {
		return nil, fmt.Errorf("nbd: export name %q is not a valid NBD string", e.Name)
	}
	if len(e.Description) > maxString || !utf8.ValidString(e.Description) || strings.IndexByte(e.Description, 0) >= 0 {
		return nil, fmt.Errorf("nbd: description of export %q is not a valid NBD string", e.Name)
	}
	if e.Device.Size() < 0 {
		return nil, fmt.Errorf("nbd: export %q has a negative size", e.Name)
	}
	if e.MinBlock == 0 {
		e.MinBlock = 1
	}
	if e.PreferredBlock == 0 {
		e.PreferredBlock = max(4096, e.MinBlock)
	}
	if e.MaxBlock == 0 {
		e.MaxBlock = defaultMaxPayload
	}
	switch {
	case !isPow2(e.MinBlock) || e.MinBlock > 64<<10:
		return nil, fmt.Errorf("nbd: export %q: minimum block size %d is not a power of two up to 64 KiB", e.Name, e.MinBlock)
	case !isPow2(e.PreferredBlock) || e.PreferredBlock < max(512, e.MinBlock):
		return nil, fmt.Errorf("nbd: export %q: preferred block size %d is not a power of two of at least max(512, minimum)", e.Name, e.PreferredBlock)
	case e.MaxBlock < e.PreferredBlock:
		return nil, fmt.Errorf("nbd: export %q: maximum payload %d is below the preferred block size %d", e.Name, e.MaxBlock, e.PreferredBlock)
	case int64(e.MaxBlock) > s.cfg.MaxBytesInFlight:
		return nil, fmt.Errorf("nbd: export %q: maximum payload %d exceeds MaxBytesInFlight %d", e.Name, e.MaxBlock, s.cfg.MaxBytesInFlight)
	}
	return &exportEntry{Export: e}, nil
}

func (s *Server) addExport(e Export) error {
	ent, err := s.normalize(e)
	if err != nil {
		return err
	}
	if _, dup := s.exports[e.Name]; dup {
		return fmt.Errorf("nbd: export %q already exists", e.Name)
	}
	s.exports[e.Name] = ent
	s.order = append(s.order, ent)
	return nil
}

// AddExport offers a new export to clients that negotiate from now on.
func (s *Server) AddExport(e Export) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addExport(e)
}

// RemoveExport withdraws an export: new clients can no longer select it,
// and connections using it stop reading requests, finish and answer the
// ones in flight, and close. Then the export's Device is flushed once. It
// returns when that is done, or with ctx's error (after closing the
// remaining connections at once) if ctx ends first. vdisk uses it to take a
// partition away from NBD clients before mounting it in process.
func (s *Server) RemoveExport(ctx context.Context, name string) error {
	s.mu.Lock()
	ent, ok := s.exports[name]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("nbd: export %q does not exist", name)
	}
	delete(s.exports, name)
	for i, o := range s.order {
		if o == ent {
			s.order = append(s.order[:i:i], s.order[i+1:]...)
			break
		}
	}
	var users []*conn
	for c := range s.conns {
		if c.exp == ent {
			users = append(users, c)
		}
	}
	s.mu.Unlock()
	if err := s.drainConns(ctx, users); err != nil {
		return err
	}
	return s.flushExport(ent)
}

// Exports returns the exports currently offered, in listing order.
func (s *Server) Exports() []Export {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Export, len(s.order))
	for i, e := range s.order {
		out[i] = e.Export
	}
	return out
}

func (s *Server) lookup(name string) *exportEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exports[name]
}

// ListenAddr listens on addr as the CLI spells it: "unix:/path" for a unix
// socket, anything else is a TCP "host:port"; "" means DefaultAddr.
func ListenAddr(addr string) (net.Listener, error) {
	if addr == "" {
		addr = DefaultAddr
	}
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		return net.Listen("unix", path)
	}
	return net.Listen("tcp", addr)
}

// Serve accepts connections on l and serves each in its own goroutine
// until Shutdown or Close, when it returns ErrServerClosed. It closes l
// when it returns.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()

	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			down := s.shutdown
			s.mu.Unlock()
			if down {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait and retry
			// rather than spin or give up on the other clients.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("nbd: accept failed", "err", err, "retry", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		c := s.newConn(nc)
		if c == nil {
			continue
		}
		go c.serve()
	}
}

// ServeConn serves one already-accepted connection (for example one end of
// a socketpair) and returns when it is over.
func (s *Server) ServeConn(nc net.Conn) {
	if c := s.newConn(nc); c != nil {
		c.serve()
	}
}

// Shutdown stops the server gracefully: it stops accepting connections,
// ends negotiations in progress, lets every connection finish the requests
// it has read and send their replies (it reads no more), closes the
// connections, and then calls Flush once on every export's Device. If ctx
// ends first, it closes everything at once as Close does and returns ctx's
// error without flushing.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	for l := range s.listeners {
		l.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	exports := append([]*exportEntry(nil), s.order...)
	s.mu.Unlock()

	if err := s.drainConns(ctx, conns); err != nil {
		return err
	}
	// Connections accepted between the snapshot and the shutdown flag were
	// refused by newConn, so none is left now.
	var errs []error
	for _, e := range exports {
		if err := s.flushExport(e); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// drainConns asks conns to stop gracefully and waits for them to close.
func (s *Server) drainConns(ctx context.Context, conns []*conn) error {
	for _, c := range conns {
		c.drain()
	}
	for _, c := range conns {
		select {
		case <-c.done:
		case <-ctx.Done():
			for _, c := range conns {
				c.abort()
			}
			return ctx.Err()
		}
	}
	return nil
}

// flushExport calls Flush on an export's Device with a request that
// belongs to no client connection.
func (s *Server) flushExport(e *exportEntry) error {
	c := &conn{srv: s, requestor: "nbd-server", exp: e, ctx: context.Background()}
	r := &Request{c: c, cmd: CmdFlush}
	if err := e.Device.Flush(r); err != nil {
		return fmt.Errorf("nbd: flush export %q: %w", e.Name, err)
	}
	return nil
}

// Close stops the server at once: listeners and connections are closed,
// requests in flight are abandoned (their Device calls may still be
// running; Request.Context is cancelled), and devices are not flushed.
func (s *Server) Close() error {
	s.mu.Lock()
	s.shutdown = true
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.abort()
	}
	return nil
}

// newConn registers a connection, or closes it if the server is shutting
// down.
func (s *Server) newConn(nc net.Conn) *conn {
	id := s.nextID.Add(1)
	c := &conn{
		srv:       s,
		id:        id,
		nc:        nc,
		rw:        nc,
		requestor: requestorOf(nc, id),
		done:      make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.cond.L = &c.mu
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		nc.Close()
		c.cancel()
		close(c.done)
		return nil
	}
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	s.mu.Unlock()
	return c
}

func (s *Server) forgetConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.connWG.Done()
}

// bindExport attaches a connection that is entering transmission to its
// export, atomically with the lookup so that RemoveExport either sees the
// connection or the connection does not see the export.
func (s *Server) bindExport(c *conn, name string) *exportEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.exports[name]
	if e != nil {
		c.exp = e
	}
	return e
}

// deviceErrno maps a Device error through the configured hook.
func (s *Server) deviceErrno(err error) Errno {
	e := s.errno(err)
	if e == 0 {
		return EIO
	}
	return e
}

// discard is io.Discard as a ReaderFrom-capable writer; io.CopyN uses its
// pooled buffer, so skipping a payload allocates nothing.
var discard = io.Discard
