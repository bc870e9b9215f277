// Package server is Switchboard's HTTP transport: it parses and checks
// client handshakes, hands them to the broker core, upgrades accepted ones
// with the WebSocket library, and serves the broker's own endpoints under
// protocol.ReservedPrefix (service links, admin API, browser library) plus
// /healthz, /readyz and /metrics for plain HTTP requests.
//
// It knows nothing of flags or config files.
package server

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/internal/version"
	"github.com/switchboard-dev/switchboard/protocol"
)

// Config configures a Server.
type Config struct {
	Broker   *broker.Broker      // required
	Gatherer prometheus.Gatherer // served at /metrics; nil: no metrics endpoint
	Logger   *slog.Logger        // nil: slog.Default()
	Web      fs.FS               // browser library and pages, served under /.switchboard/web/; nil: none

	// Dev lets loopback clients use the admin API without a credential.
	Dev bool
	// AdminToken guards the admin API (Authorization: Bearer TOKEN).
	// Empty: only loopback clients in Dev mode may use it.
	AdminToken string

	// Compression makes permessage-deflate (no context takeover)
	// negotiable with clients.
	Compression bool

	// GoroutineClients serves every client with Broker.Serve
	// (coder/websocket, two goroutines each), as wss:// clients always
	// are, instead of plain ws:// clients with Broker.ServePolled (epoll
	// loops, none).
	GoroutineClients bool

	// RefusalFloor is the earliest a refused client handshake is answered,
	// measured from when its headers were read, so that the time of a
	// refusal does not tell its cause (see refuse). It should cover a
	// service's round trip, a browser tab's included. 0: no floor (the
	// daemon applies its default).
	RefusalFloor time.Duration
	// RefusalJitter adds a uniformly random delay in [0, RefusalJitter)
	// to each refusal's floor. 0: none.
	RefusalJitter time.Duration

	// MaxConnsPerAddr bounds concurrent client connections and handshakes
	// from one IP address; over it, handshakes get 429. 0: no limit.
	MaxConnsPerAddr int

	// Ready reports whether the node is ready (e.g. its cluster link is
	// up); nil: always.
	Ready func() error

	// Registerer receives the server's own metrics (app denials). Nil: a
	// private registry.
	Registerer prometheus.Registerer
	// Apps is the app directory and chooser-token state for wsapp://
	// connections, the token API and the chooser. Nil: no apps.
	Apps *Apps
	// Reload re-reads the configuration (POST /.switchboard/v1/reload).
	// Nil: reload is not available.
	Reload func(ctx context.Context) error
	// PortMap returns the port mapping's state, shown as "portmap" in the
	// admin status. Nil: no port mapping.
	PortMap func() any
}

// Server is an http.Handler for the broker's port.
type Server struct {
	cfg Config
	b   *broker.Broker
	log *slog.Logger

	metrics http.Handler
	web     http.Handler
	apps    *appsServer   // static
	rejects *rejectLog    // static
	guesses *guessLimiter // static
	// perAddrAtAccept is set when Listener counts connections per
	// address from accept; the handler's own count is then skipped. Set
	// before serving.
	perAddrAtAccept bool
	// adminRoutes serves the admin API and the chooser; static.
	adminRoutes *http.ServeMux
	// maxHeader is the header limit, enforced exactly (net/http lets 4 KiB
	// more through); set by HTTPServer before serving, static after.
	maxHeader int

	mu      sync.Mutex
	perAddr map[netip.Addr]int // guarded by mu
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, b: cfg.Broker, log: cfg.Logger, perAddr: make(map[netip.Addr]int),
		apps: newAppsServer(cfg.Registerer), rejects: newRejectLog(cfg.Logger), guesses: newGuessLimiter(cfg.Logger)}
	s.adminRoutes = s.adminMux()
	if cfg.Gatherer != nil {
		s.metrics = promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{})
	}
	if cfg.Web != nil {
		s.web = newWebHandler(cfg.Web)
	}
	return s
}

// Close logs the pending summary of refused handshakes and stops its
// timer. The daemon calls it at shutdown.
func (s *Server) Close() {
	s.rejects.close()
	s.guesses.stop()
}

// serveMetrics serves /metrics: to anyone in Dev mode, otherwise with the
// admin credential only, since metrics count per-request decisions
// (refusals by reason) that a client must not see.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if s.metrics == nil {
		http.NotFound(w, r)
		return
	}
	if s.cfg.Dev {
		s.metrics.ServeHTTP(w, r)
		return
	}
	s.adminGuard(func(w http.ResponseWriter, r *http.Request) {
		if s.admin(w, r) {
			s.metrics.ServeHTTP(w, r)
		}
	})(w, r)
}

// HTTPServer returns an http.Server for s with the handshake limits set:
// headers must arrive within handshakeTimeout and fit in maxHeaderBytes.
func (s *Server) HTTPServer(handshakeTimeout time.Duration, maxHeaderBytes int) *http.Server {
	s.maxHeader = maxHeaderBytes
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: handshakeTimeout,
		IdleTimeout:       2 * handshakeTimeout, // an idle keep-alive connection is no slowloris either
		ConnContext:       connContext,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now() // the handshake's start, for the refusal floor
	handshakeDone(r)
	if s.maxHeader > 0 && headerBytes(r) > s.maxHeader {
		s.rejects.note("header_too_large", loggablePath(r.URL.Path), r.RemoteAddr)
		w.Header().Set("Connection", "close")
		http.Error(w, "request headers too large", http.StatusRequestHeaderFieldsTooLarge)
		return
	}
	path := r.URL.Path
	if strings.HasPrefix(path, protocol.ReservedPrefix) {
		s.serveReserved(w, r, path[len(protocol.ReservedPrefix)-1:], start)
		return
	}
	if isUpgrade(r) {
		s.serveClient(w, r, start)
		return
	}
	switch path {
	case "/healthz":
		s.healthz(w, r)
	case "/readyz":
		s.readyz(w, r)
	case "/metrics":
		s.serveMetrics(w, r)
	case "/":
		if s.web == nil {
			http.NotFound(w, r)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = protocol.ReservedPrefix + "web/"
		s.web.ServeHTTP(w, r2)
	default:
		http.NotFound(w, r)
	}
}

// headerBytes is the size of r's request line and header lines as they
// were sent (net/http keeps the Host header apart).
func headerBytes(r *http.Request) int {
	n := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + 2
	n += len("Host: ") + len(r.Host) + 2
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + 2 + len(v) + 2
		}
	}
	return n + 2
}

// serveReserved serves the broker's own endpoints; sub starts with "/".
func (s *Server) serveReserved(w http.ResponseWriter, r *http.Request, sub string, start time.Time) {
	switch {
	case sub == "/v1/link":
		s.serveLink(w, r)
	case strings.HasPrefix(sub, "/v1/app/"):
		s.serveApp(w, r, start)
	case sub == "/v1/app-scope":
		s.serveAppScope(w, r) // apps.go
	case adminPaths[r.URL.Path]:
		s.adminRoutes.ServeHTTP(w, r)
	case sub == "/healthz":
		s.healthz(w, r)
	case sub == "/readyz":
		s.readyz(w, r)
	case strings.HasPrefix(sub, "/web/") && s.web != nil:
		s.web.ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

// statusResponse is the admin status: the broker's, plus the build and the
// port mapping.
type statusResponse struct {
	*broker.Status
	Version version.Info `json:"version"`
	PortMap any          `json:"portmap,omitempty"`
}

func (s *Server) status() statusResponse {
	st := s.b.Status()
	resp := statusResponse{Status: &st, Version: version.Get()}
	if s.cfg.PortMap != nil {
		resp.PortMap = s.cfg.PortMap()
	}
	return resp
}

// healthz answers "ok". With ?verbose it adds the detail an operator
// checks after an upgrade: the version it runs. (The same
// version is in the switchboard_build_info metric.)
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !r.URL.Query().Has("verbose") {
		_, _ = w.Write([]byte("ok\n"))
		return
	}
	v := version.Get()
	fmt.Fprintf(w, "ok\nversion: %s\nrevision: %s\ngo: %s\n", v.Version, v.Revision, v.GoVersion)
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
	}
	_, _ = w.Write([]byte("ready\n"))
}

// serveLink upgrades a service link and runs it.
func (s *Server) serveLink(w http.ResponseWriter, r *http.Request) {
	if !isUpgrade(r) || !offers(r, protocol.Subprotocol) {
		http.Error(w, "service links must be WebSocket connections offering subprotocol "+protocol.Subprotocol, http.StatusBadRequest)
		return
	}
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:       []string{protocol.Subprotocol},
		InsecureSkipVerify: true, // services authenticate with credentials, not origins
	})
	if err != nil {
		s.log.Debug("service link handshake failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	ctx := broker.WithLinkOrigin(context.WithoutCancel(r.Context()), r.Header.Get("Origin")) // for listen grants bound to a page origin
	_ = s.b.ServeLink(ctx, conn, remoteAddr(r))
}

func isUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func offers(r *http.Request, proto string) bool {
	for _, p := range subprotocols(r) {
		if p == proto {
			return true
		}
	}
	return false
}

func subprotocols(r *http.Request) []string {
	var out []string
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func remoteAddr(r *http.Request) netip.AddrPort {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func isLoopback(r *http.Request) bool {
	return remoteAddr(r).Addr().IsLoopback()
}

// hostOnly strips the port from a Host header value.
func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return strings.Trim(h, "[]")
}
