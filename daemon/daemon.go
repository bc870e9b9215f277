// Package daemon is the one place that assembles a running broker: it
// takes Settings (what flags, environment and config file say, merged by
// the caller), applies every default in one place (Settings.withDefaults),
// builds the credential lookup, the broker core, the HTTP transport and
// the http.Server, and runs them until the context ends, then shuts them
// down in order. `switchboard serve` and the tests' testutil.StartBroker
// both go through it, so a test broker is a production broker.
//
// It knows nothing of flags or environment variables; TLS, port mapping
// and clustering are made by the caller and handed in through Options.
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/switchboard-dev/switchboard/apps"
	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/internal/version"
	"github.com/switchboard-dev/switchboard/server"
)

// Defaults, documented in docs/CONFIG.md. Limits' defaults are the
// broker core's (broker.Limits).
const (
	DefaultListen           = "127.0.0.1:8080"
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultMaxHeaderBytes   = 16 << 10
	DefaultMaxConnsPerAddr  = 4096
	DefaultShutdownGrace    = 10 * time.Second
	// A refused handshake is answered no earlier than DefaultRefusalFloor
	// after its start, plus up to DefaultRefusalJitter: more than a
	// service's round trip (a browser tab's is tens of milliseconds), so
	// a refusal's time does not tell its cause.
	// At most DefaultMaxHandshakes connections wait for their headers;
	// DefaultFDReserve file descriptors stay free for everything but
	// client connections.
	DefaultMaxHandshakes = 1024
	DefaultFDReserve     = 128
	DefaultRefusalFloor  = 100 * time.Millisecond
	DefaultRefusalJitter = 20 * time.Millisecond
)

// Settings are a broker's settings. Zero fields take the defaults above.
type Settings struct {
	// Listen is the address to listen on. Default DefaultListen.
	Listen string
	// Dev lets loopback processes listen on unclaimed scopes without a
	// credential and use the admin API.
	Dev bool
	// Node names the broker in logs and status. Default "local".
	Node string
	// AdminToken guards the admin API.
	AdminToken string
	// Compression makes permessage-deflate negotiable. Nil: true.
	Compression *bool
	// HandshakeTimeout bounds reading a client's handshake headers.
	HandshakeTimeout time.Duration
	// MaxHeaderBytes bounds the handshake headers.
	MaxHeaderBytes int
	// MaxConnsPerAddr bounds connections per client IP address, counted
	// from accept; -1: none.
	MaxConnsPerAddr int
	// MaxHandshakes bounds connections whose headers have not arrived;
	// FDReserve is the file descriptors kept free (server.ListenerLimits).
	MaxHandshakes, FDReserve int
	// MaxFiles replaces the process's file limit (tests). 0: RLIMIT_NOFILE.
	MaxFiles int
	// Limits are the broker core's limits.
	Limits broker.Limits
	// RefusalFloor and RefusalJitter time refused handshakes (see
	// server.Config); negative: none.
	RefusalFloor, RefusalJitter time.Duration
	// ShutdownGrace is how long Run's shutdown waits for channels to
	// close before cutting them.
	ShutdownGrace time.Duration

	// ConfigPath is the config file, re-read by Reload; "" for none. The
	// token key and revocation list live next to it by default.
	ConfigPath string
	// File holds the credentials and apps (and token paths). Nil: none.
	File *config.File
}

// FromFile returns the settings a config file gives (the caller then lets
// flags and environment variables win).
func FromFile(path string, f *config.File) Settings {
	return Settings{
		Listen: f.Listen, Dev: f.Dev, Node: f.Node, AdminToken: f.AdminToken, Compression: f.Compression,
		HandshakeTimeout: time.Duration(f.HandshakeTimeout), MaxHeaderBytes: f.MaxHeaderBytes,
		MaxConnsPerAddr: f.MaxConnsPerAddr, Limits: f.BrokerLimits(), ConfigPath: path, File: f,
		RefusalFloor: time.Duration(f.Limits.RefusalFloor), RefusalJitter: time.Duration(f.Limits.RefusalJitter),
		MaxHandshakes: f.MaxHandshakes, FDReserve: f.FDReserve,
	}
}

// withDefaults is the one place defaults are applied.
func (s Settings) withDefaults() Settings {
	if s.Listen == "" {
		s.Listen = DefaultListen
	}
	if s.Node == "" {
		s.Node = "local"
	}
	if s.Compression == nil {
		on := true
		s.Compression = &on
	}
	if s.HandshakeTimeout <= 0 {
		s.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if s.MaxHeaderBytes <= 0 {
		s.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	switch {
	case s.MaxConnsPerAddr == 0:
		s.MaxConnsPerAddr = DefaultMaxConnsPerAddr
	case s.MaxConnsPerAddr < 0:
		s.MaxConnsPerAddr = 0 // the server's "no limit"
	}
	if s.MaxHandshakes <= 0 {
		s.MaxHandshakes = DefaultMaxHandshakes
	}
	if s.FDReserve <= 0 {
		s.FDReserve = DefaultFDReserve
	}
	if s.RefusalFloor == 0 {
		s.RefusalFloor = DefaultRefusalFloor
	}
	if s.RefusalJitter == 0 {
		s.RefusalJitter = DefaultRefusalJitter
	}
	if s.ShutdownGrace <= 0 {
		s.ShutdownGrace = DefaultShutdownGrace
	}
	if s.File == nil {
		s.File = &config.File{}
	}
	return s
}

// Cluster is what the daemon needs of a cluster link (*cluster.Cluster).
type Cluster interface {
	broker.Cluster
	NodeNum() uint64
	Start() error
	Ready() error
	// ShareRevocations makes the token revocations cluster-wide (before Start).
	ShareRevocations(*apps.Revocations)
	// ShareReloads makes configuration reloads cluster-wide (before
	// Start): digest is the configuration in force, reload re-reads the
	// file when another node reloaded.
	ShareReloads(digest string, reload func(context.Context) (string, error))
	// Reloaded tells the other nodes that the operator reloaded this one.
	Reloaded(digest string)
	Shutdown(ctx context.Context) error
}

// Options are the parts of a running broker that are not settings.
type Options struct {
	// Logger receives every log. Nil: slog.Default().
	Logger *slog.Logger
	// Registry receives every metric, served at /metrics. Nil: a new one
	// with the Go and process collectors.
	Registry *prometheus.Registry
	// Web is the browser library and pages. Nil: none.
	Web fs.FS
	// TLS, when set, makes the listener serve TLS.
	TLS *tls.Config
	// GoroutineClients serves every client on coder/websocket, a reader
	// and a writer goroutine each, as wss:// clients always are, instead
	// of plain ws:// clients on the broker's epoll loops (server.Config).
	GoroutineClients bool
	// Cluster links this node to others. Nil: a single node.
	Cluster Cluster
	// PublicURL and PortMap come from port mapping (broker.Config and
	// server.Config fields of the same names).
	PublicURL func(scopeURL string) string
	PortMap   func() any
	// Authorize replaces the credential check of the file's keys (tests
	// with their own rules). Nil: the file's credentials and apps.
	Authorize func(ctx context.Context, req broker.AuthRequest) (string, error)
	// ShutdownContext, called when Serve's context ends, bounds the
	// shutdown from outside (serve: a second signal cuts it short). Nil:
	// only ShutdownGrace bounds it.
	ShutdownContext func() (context.Context, context.CancelFunc)
	// BeforeShutdown runs first in a graceful shutdown, after the listener
	// closed (serve: remove the port mapping).
	BeforeShutdown func(ctx context.Context) error
}

// Daemon is an assembled broker.
type Daemon struct {
	s      Settings // static, defaults applied
	o      Options  // static
	log    *slog.Logger
	reg    *prometheus.Registry
	keys   atomic.Pointer[config.Keys]
	listen *config.ListenAuth // static; its keys change on reload
	apps   *server.Apps
	b      *broker.Broker
	srv    *server.Server
	http   *http.Server

	reloadMu sync.Mutex   // one reload at a time
	file     *config.File // the file in force; guarded by reloadMu
}

// New assembles a broker from s and o: credentials, token state, broker,
// server, http.Server. Nothing listens yet.
func New(s Settings, o Options) (*Daemon, error) {
	s = s.withDefaults()
	if err := config.CheckAdminToken(s.AdminToken); err != nil {
		return nil, err
	}
	d := &Daemon{s: s, o: o, log: o.Logger, reg: o.Registry, file: s.File}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.reg == nil {
		d.reg = prometheus.NewRegistry()
		d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if err := registerBuildInfo(d.reg); err != nil {
		return nil, err
	}
	keys, err := s.File.Keys()
	if err != nil {
		return nil, err
	}
	d.keys.Store(keys)
	if d.apps, err = openApps(s, keys); err != nil {
		return nil, err
	}
	if d.listen, err = s.File.ListenAuth(s.ConfigPath); err != nil { // listen grants, private-scope policy
		return nil, err
	}
	bc := broker.Config{
		Logger: d.log, Registerer: d.reg, Node: s.Node, Limits: s.Limits,
		Authorize: d.listen.Authorizer(config.Authorizer(s.Dev, d.keys.Load)), PublicURL: o.PublicURL,
	}
	if o.Authorize != nil {
		bc.Authorize = o.Authorize
	}
	var ready func() error
	if o.Cluster != nil {
		bc.Cluster, bc.NodeNum, ready = o.Cluster, o.Cluster.NodeNum(), o.Cluster.Ready
	}
	d.b = broker.New(bc)
	if o.Cluster != nil {
		if d.apps.Revocations != nil {
			o.Cluster.ShareRevocations(d.apps.Revocations)
		}
		if s.ConfigPath != "" {
			o.Cluster.ShareReloads(s.File.ReloadDigest(), d.reloadForCluster)
		}
		if err := o.Cluster.Start(); err != nil {
			_ = d.b.Shutdown(context.Background())
			return nil, fmt.Errorf("start cluster: %w", err)
		}
	}
	var reload func(context.Context) error
	if s.ConfigPath != "" {
		reload = d.Reload
	}
	d.srv = server.New(server.Config{
		Broker: d.b, Gatherer: d.reg, Registerer: d.reg, Logger: d.log, Web: o.Web, Dev: s.Dev,
		AdminToken: s.AdminToken, Compression: *s.Compression, MaxConnsPerAddr: s.MaxConnsPerAddr,
		RefusalFloor: s.RefusalFloor, RefusalJitter: s.RefusalJitter, GoroutineClients: o.GoroutineClients,
		Apps: d.apps, Reload: reload, PortMap: o.PortMap, Ready: ready,
	})
	d.http = d.srv.HTTPServer(s.HandshakeTimeout, s.MaxHeaderBytes)
	return d, nil
}

// openApps makes the app state: the directory and, with a config file or
// apps, the token key and the revocation list (created on first start).
func openApps(s Settings, keys *config.Keys) (*server.Apps, error) {
	if s.ConfigPath == "" && len(s.File.Apps) == 0 {
		return server.NewApps(keys.Directory(), nil, nil), nil
	}
	sealer, revs, err := s.File.OpenTokens(s.ConfigPath)
	if err != nil {
		return nil, err
	}
	return server.NewApps(keys.Directory(), sealer, revs), nil
}

// Broker returns the broker core.
func (d *Daemon) Broker() *broker.Broker { return d.b }

// Settings returns the settings in force, defaults applied.
func (d *Daemon) Settings() Settings { return d.s }

// Listen binds the listen address (TLS when Options.TLS is set).
func (d *Daemon) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", d.s.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", d.s.Listen, err)
	}
	ln = d.srv.Listener(ln, server.ListenerLimits{MaxConnsPerAddr: d.s.MaxConnsPerAddr, MaxHandshakes: d.s.MaxHandshakes,
		MaxFiles: d.s.MaxFiles, FDReserve: d.s.FDReserve, TLS: d.o.TLS != nil})
	if d.o.TLS != nil {
		ln = tls.NewListener(ln, d.o.TLS)
	}
	return ln, nil
}

// Run listens and serves until ctx ends, then shuts down.
func (d *Daemon) Run(ctx context.Context) error {
	ln, err := d.Listen()
	if err != nil {
		return err
	}
	return d.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then shuts down (Shutdown, bounded by
// ShutdownGrace and Options.ShutdownContext). It returns why serving
// stopped early, or nil after a shutdown.
func (d *Daemon) Serve(ctx context.Context, ln net.Listener) error {
	if d.s.Dev {
		d.log.Warn("dev mode: loopback processes may listen on unclaimed scopes without a credential")
	}
	errc := make(chan error, 1)
	go func() { errc <- d.http.Serve(ln) }()
	select {
	case err := <-errc:
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if d.o.BeforeShutdown != nil {
			_ = d.o.BeforeShutdown(sctx) // e.g. remove the port mapping of a broker that failed
		}
		_ = d.Shutdown(sctx)
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	hard, hcancel := context.Background(), context.CancelFunc(func() {})
	if d.o.ShutdownContext != nil {
		hard, hcancel = d.o.ShutdownContext()
	}
	defer hcancel()
	sctx, cancel := context.WithTimeout(hard, d.s.ShutdownGrace)
	defer cancel()
	d.log.Info("shutting down: closing channels with 1001")
	_ = ln.Close()
	if d.o.BeforeShutdown != nil {
		if err := d.o.BeforeShutdown(sctx); err != nil {
			d.log.Warn("before shutdown", "err", err)
		}
	}
	err := d.Shutdown(sctx)
	// The listener was closed first: Serve may see that before the Shutdown.
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && !errors.Is(serr, net.ErrClosed) {
		return fmt.Errorf("serve: %w", serr)
	}
	if err != nil {
		d.log.Warn("shutdown cut short", "err", err)
	}
	d.log.Info("stopped")
	return nil
}

// Shutdown closes every channel with 1001, stops the broker, the cluster
// link and the http.Server, waiting for them until ctx ends.
func (d *Daemon) Shutdown(ctx context.Context) error {
	d.http.SetKeepAlivesEnabled(false)
	berr := d.b.Shutdown(ctx)
	var cerr error
	if d.o.Cluster != nil {
		if cerr = d.o.Cluster.Shutdown(ctx); cerr != nil {
			cerr = fmt.Errorf("cluster shutdown: %w", cerr)
		}
	}
	herr := d.http.Shutdown(ctx)
	if errors.Is(herr, net.ErrClosed) { // Serve closed the listener first
		herr = nil
	}
	if herr != nil {
		herr = fmt.Errorf("http shutdown: %w", herr)
	}
	d.srv.Close()
	return errors.Join(berr, cerr, herr)
}

// registerBuildInfo adds switchboard_build_info: 1, labelled with the
// version, revision and Go version.
func registerBuildInfo(reg prometheus.Registerer) error {
	v := version.Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "switchboard_build_info",
		Help:        "Always 1; the labels say which Switchboard build this is.",
		ConstLabels: prometheus.Labels{"version": v.Version, "revision": v.Revision, "goversion": v.GoVersion},
	})
	g.Set(1)
	if err := reg.Register(g); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return nil
		}
		return fmt.Errorf("register build info metric: %w", err)
	}
	return nil
}
