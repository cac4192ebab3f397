package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/control"
	"github.com/vdisk-dev/vdisk/nbd"
)

// Requestor names the web view's own requests (allocation queries) in traces.
const Requestor = "vdisk web"

// ContentSecurityPolicy is sent with every answer: the page runs scripts
// and styles of its own origin only, talks only to its own origin, and
// cannot be framed.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// CSRFHeader is the header a state-changing request must carry, with the
// CSRF token the page was served with.
const CSRFHeader = "X-Vdisk-CSRF"

// ErrNotLoopback refuses an address that is not a loopback one.
var ErrNotLoopback = errors.New("not a loopback address: the web view controls the server, so it listens on loopback only unless --http-allow-remote says otherwise")

//go:embed static
var static embed.FS

// Server serves the web view of a System.
type Server struct {
	sys     *vdisk.System
	ctl     *control.Server
	exports []nbd.Export
	token   string
	csrf    string
	cookie  string // the token cookie's name: one per server, as several may share 127.0.0.1
	hs      *http.Server
	page    *template.Template

	// Tick is how often an event stream looks at the ring and the
	// stacks; MaxRecords the most trace records it sends per tick (the
	// newest; the rest are a gap the page shows). Set before Serve.
	Tick       time.Duration
	MaxRecords int

	mu      sync.Mutex             // guards streams
	streams map[chan struct{}]bool // each open event stream's wake-up
	quit    chan struct{}          // closed by Shutdown: event streams end
	quitter sync.Once
}

// New returns a web view of sys, whose control API ctl answers, serving
// exports. The access token is random.
func New(sys *vdisk.System, ctl *control.Server, exports []nbd.Export) (*Server, error) {
	token, err := randomToken()
	if err != nil {
		return nil, err
	}
	csrf, err := randomToken()
	if err != nil {
		return nil, err
	}
	page, err := template.ParseFS(static, "static/index.html")
	if err != nil {
		return nil, fmt.Errorf("web: the page: %w", err)
	}
	sum := sha256.Sum256([]byte(token))
	s := &Server{sys: sys, ctl: ctl, exports: exports, token: token, csrf: csrf, page: page,
		cookie: "vdisk-" + hex.EncodeToString(sum[:6]), Tick: 100 * time.Millisecond, MaxRecords: 100,
		streams: map[chan struct{}]bool{}, quit: make(chan struct{})}
	s.hs = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("web: a random token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Token is the access token: the URL printed at start carries it.
func (s *Server) Token() string { return s.token }

// URL is the address to open in a browser for a server listening on addr.
func (s *Server) URL(addr net.Addr) string {
	return (&url.URL{Scheme: "http", Host: addr.String(), Path: "/", RawQuery: "token=" + s.token}).String()
}

// CheckAddr checks an address for the web view: host:port, with a
// loopback host (127.0.0.0/8, ::1, localhost) unless allowRemote is set.
func CheckAddr(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("web view address %q: %w (want host:port, such as 127.0.0.1:8080)", addr, err)
	}
	if !allowRemote && !isLoopback(host) {
		return fmt.Errorf("web view address %q: %w", addr, ErrNotLoopback)
	}
	return nil
}

// Listen listens on a TCP address for the web view, which CheckAddr
// accepts.
func Listen(addr string, allowRemote bool) (net.Listener, error) {
	if err := CheckAddr(addr, allowRemote); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("web view: %w", err)
	}
	return l, nil
}

// isLoopback says whether host names a loopback address: an IP literal
// in 127.0.0.0/8 or ::1, or localhost. An empty host (every interface)
// and other names are not: a name's addresses may change.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Serve answers on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	err := s.hs.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown ends the event streams and stops the server (waiting for other
// requests in flight, or ctx).
func (s *Server) Shutdown(ctx context.Context) error {
	s.quitter.Do(func() { close(s.quit) })
	return s.hs.Shutdown(ctx)
}

// Handler is the web view's HTTP handler, access checks included.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.servePage)
	sub, _ := fs.Sub(static, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(sub)))
	mux.Handle("/api/", http.StripPrefix("/api", s.poking(s.ctl.Handler())))
	mux.HandleFunc("GET /web/events", s.serveEvents)
	mux.HandleFunc("GET /web/allocation", s.serveAllocation)
	mux.HandleFunc("GET /web/stack.svg", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/svg+xml")
		_ = s.sys.Stack().WriteSVG(w) // the browser went away: nothing to tell it
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("%s %s: no such page or operation", r.Method, r.URL.Path))
	})
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, errors.New("refused: a state-changing request from another origin"))
	}))
	return s.secured(s.authorized(cop.Handler(s.csrfChecked(mux))))
}

// secured sets the headers every answer carries.
func (s *Server) secured(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// authorized lets through requests with the token: the cookie, an
// Authorization: Bearer header, or (on a GET of the page) ?token=, which
// sets the cookie and redirects to the address without it, so that the
// token leaves the address bar and the history.
func (s *Server) authorized(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if q := r.URL.Query().Get("token"); q != "" && r.Method == http.MethodGet && s.is(q) {
			http.SetCookie(w, &http.Cookie{Name: s.cookie, Value: s.token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			v := r.URL.Query()
			v.Del("token")
			// A path of this server: never "//host", which a browser
			// would take for another site.
			loc := &url.URL{Path: "/" + strings.TrimLeft(r.URL.Path, "/"), RawQuery: v.Encode()}
			http.Redirect(w, r, loc.RequestURI(), http.StatusSeeOther)
			return
		}
		ok := false
		if c, err := r.Cookie(s.cookie); err == nil && s.is(c.Value) {
			ok = true
		}
		if b, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found && s.is(b) {
			ok = true
		}
		if !ok {
			writeError(w, http.StatusUnauthorized, errors.New("the web view needs its access token: open the URL vdisk serve printed (…/?token=…)"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// is compares a token in constant time.
func (s *Server) is(token string) bool {
	return subtle.ConstantTimeCompare([]byte(token), []byte(s.token)) == 1
}

// csrfChecked refuses a state-changing request without the page's CSRF
// token in its header: a form or a script of another origin cannot set it
// (a custom header needs a CORS preflight, which is never granted).
func (s *Server) csrfChecked(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		default:
			if subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(s.csrf)) != 1 {
				writeError(w, http.StatusForbidden, fmt.Errorf("refused: a state-changing request without the page's %s header", CSRFHeader))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// poking wakes the event streams after a request that may have changed
// the stacks, so that the page shows the change at once.
func (s *Server) poking(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.poke()
		}
	})
}

func (s *Server) poke() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.streams {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = s.page.Execute(w, map[string]string{"CSRF": s.csrf}) // the browser went away: nothing to tell it
}

// writeError answers {"error": "..."}, as the control API does.
func writeError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
