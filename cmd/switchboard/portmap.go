package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/portmap"
)

// portmapFlags are serve's port-mapping flags.
type portmapFlags struct {
	protocol      string
	externalPort  int
	lease         time.Duration
	checkInterval time.Duration
	retryMin      time.Duration
}

func (f *portmapFlags) register(fl *flag.FlagSet) {
	fl.StringVar(&f.protocol, "portmap", "off", "ask the router to forward a public TCP port to the listen port: auto (PCP, then NAT-PMP, then UPnP IGD), upnp, natpmp, pcp or off (see docs/PORTMAP.md)")
	fl.IntVar(&f.externalPort, "portmap-external-port", 0, "external port to ask the router for (0: the listen port, or 443 with --acme-domain)")
	fl.DurationVar(&f.lease, "portmap-lease", time.Hour, "lifetime asked for the mapping; it is renewed at half of what the router grants")
	fl.DurationVar(&f.checkInterval, "portmap-check-interval", time.Minute, "how often a held mapping is checked (router restarts, address changes)")
	fl.DurationVar(&f.retryMin, "portmap-retry", 2*time.Second, "first retry delay after a failed mapping attempt (doubles up to 5m)")
}

// portmapper is the broker's port mapping: the Mapper, its metrics and the
// public URL it gives services.
type portmapper struct {
	m      *portmap.Mapper
	scheme string // "ws" or "wss": what the external port serves
	host   string // name to put in public URLs instead of the external IP (ACME domain); "" for the IP

	mapped   prometheus.Gauge
	extPort  prometheus.Gauge
	expiry   prometheus.Gauge
	lost     prometheus.Counter
	errors   prometheus.Counter
	changed  func() // called after each change: tells services their URL (nil: nobody)
	lastLost int    // owned by observe (the Mapper's goroutine)
	lastErr  string // owned by observe
}

// startPortmap starts mapping port (the bound listen port) when f asks for
// it; it returns nil, nil for --portmap off.
func startPortmap(ctx context.Context, f portmapFlags, port, defaultExternal int, tls bool, host string, log *slog.Logger, reg prometheus.Registerer, changed func()) (*portmapper, error) {
	if f.protocol == "" || f.protocol == string(portmap.Off) {
		return nil, nil
	}
	p, err := newPortmapper(tls, host, reg)
	if err != nil {
		return nil, err
	}
	p.changed = changed
	ext := f.externalPort
	if ext == 0 {
		ext = defaultExternal
	}
	m, err := portmap.Start(ctx, portmap.Config{
		Protocol: portmap.Protocol(f.protocol), InternalPort: port, ExternalPort: ext, Lease: f.lease,
		Logger: log, OnChange: p.observe, CheckInterval: f.checkInterval, RetryMin: f.retryMin,
	})
	if err != nil {
		return nil, usageError{msg: fmt.Sprintf("bad --portmap settings: %v", err)}
	}
	p.m = m
	return p, nil
}

// newPortmapper returns a portmapper without its Mapper, its metrics
// registered with reg.
func newPortmapper(tls bool, host string, reg prometheus.Registerer) (*portmapper, error) {
	p := &portmapper{scheme: "ws", host: host}
	if tls {
		p.scheme = "wss"
	}
	p.mapped = prometheus.NewGauge(prometheus.GaugeOpts{Name: "switchboard_portmap_mapped", Help: "1 while the router forwards the external port to the broker, else 0."})
	p.extPort = prometheus.NewGauge(prometheus.GaugeOpts{Name: "switchboard_portmap_external_port", Help: "External TCP port mapped on the router (0 while not mapped)."})
	p.expiry = prometheus.NewGauge(prometheus.GaugeOpts{Name: "switchboard_portmap_lease_expiry_seconds", Help: "Unix time the current mapping's lease ends (0: none or permanent)."})
	p.lost = prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_portmap_lost_total", Help: "Times a held mapping was lost (router restart, address change, failed renewal)."})
	p.errors = prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_portmap_errors_total", Help: "Failed mapping attempts, renewals or checks (a change of the error reason counts once)."})
	for _, c := range []prometheus.Collector{p.mapped, p.extPort, p.expiry, p.lost, p.errors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register portmap metrics: %w", err)
		}
	}
	return p, nil
}

// observe updates the metrics from a new Status (the Mapper's OnChange).
func (p *portmapper) observe(s portmap.Status) {
	if s.Mapped {
		p.mapped.Set(1)
		p.extPort.Set(float64(s.ExternalPort))
	} else {
		p.mapped.Set(0)
		p.extPort.Set(0)
	}
	if s.Mapped && !s.LeaseExpires.IsZero() {
		p.expiry.Set(float64(s.LeaseExpires.Unix()))
	} else {
		p.expiry.Set(0)
	}
	if s.Lost > p.lastLost {
		p.lost.Add(float64(s.Lost - p.lastLost))
		p.lastLost = s.Lost
	}
	if s.Err != "" && s.Err != p.lastErr {
		p.errors.Inc()
	}
	p.lastErr = s.Err
	if p.changed != nil {
		p.changed() // services hear their new public URL
	}
}

// portmapStatus is the "portmap" object of the admin status.
type portmapStatus struct {
	Protocol     string    `json:"protocol"`
	Gateway      string    `json:"gateway,omitempty"`
	Mapped       bool      `json:"mapped"`
	External     string    `json:"external,omitempty"` // ip:port while mapped
	ExternalIP   string    `json:"external_ip,omitempty"`
	ExternalPort int       `json:"external_port,omitempty"`
	PublicURL    string    `json:"public_url,omitempty"` // ws(s)://HOST:PORT/ while mapped
	LeaseExpires time.Time `json:"lease_expires,omitzero"`
	Error        string    `json:"error,omitempty"`
	LastChange   time.Time `json:"last_change,omitzero"`
	Lost         int       `json:"lost"`
}

// Status is the mapping's state for the admin API.
func (p *portmapper) Status() portmapStatus {
	s := p.m.Status()
	st := portmapStatus{Protocol: s.Protocol, Gateway: s.Gateway, Mapped: s.Mapped, External: s.External(),
		LeaseExpires: s.LeaseExpires, Error: s.Err, LastChange: s.LastChange, Lost: s.Lost}
	if s.Mapped {
		st.ExternalIP = s.ExternalIP.String()
		st.ExternalPort = s.ExternalPort
		st.PublicURL = p.PublicURL(p.scheme + "://localhost/")
	}
	return st
}

// PublicURL rewrites a scope URL to the mapped external address (or the
// ACME name) and port while the mapping holds; otherwise it returns it as is.
func (p *portmapper) PublicURL(scopeURL string) string {
	return publicURL(scopeURL, p.scheme, p.host, p.m.Status())
}

// publicURL is scopeURL with scheme and the external host and port of s
// (host, if not "", instead of the external IP); scopeURL while not mapped.
func publicURL(scopeURL, scheme, host string, s portmap.Status) string {
	if !s.Mapped {
		return scopeURL
	}
	u, err := url.Parse(scopeURL)
	if err != nil {
		return scopeURL
	}
	if host == "" {
		host = s.ExternalIP.String()
	}
	u.Scheme = scheme
	if (scheme == "wss" && s.ExternalPort == 443) || (scheme == "ws" && s.ExternalPort == 80) {
		u.Host = host
	} else {
		u.Host = net.JoinHostPort(host, strconv.Itoa(s.ExternalPort))
	}
	return u.String()
}

// Shutdown removes the mapping from the router.
func (p *portmapper) Shutdown(ctx context.Context) error {
	return p.m.Shutdown(ctx)
}

// portmapRef is where the broker and the admin API find the portmapper,
// which starts only once the listener is bound (after they are made).
// changed, set before start, is called whenever the public URL may have
// changed (the broker's PublicURLChanged).
type portmapRef struct {
	p       atomic.Pointer[portmapper]
	changed func()
}

// start maps ln's port when f asks for it. With ACME the default external
// port is 443 (TLS-ALPN-01 validates there) and public URLs name the domain.
func (r *portmapRef) start(ctx context.Context, f portmapFlags, ln net.Listener, tls bool, acmeDomains []string, log *slog.Logger, reg prometheus.Registerer) error {
	port := ln.Addr().(*net.TCPAddr).Port
	ext, host := port, ""
	if len(acmeDomains) > 0 {
		ext, host = 443, acmeDomains[0]
	}
	p, err := startPortmap(ctx, f, port, ext, tls, host, log, reg, r.changed)
	if err != nil || p == nil {
		return err
	}
	r.p.Store(p)
	if r.changed != nil {
		r.changed() // a mapping made before p was stored was not told
	}
	return nil
}

// PublicURL is broker.Config.PublicURL.
func (r *portmapRef) PublicURL(scopeURL string) string {
	if p := r.p.Load(); p != nil {
		return p.PublicURL(scopeURL)
	}
	return scopeURL
}

// Status is server.Config.PortMap: nil (no "portmap" in the status) when
// port mapping is off.
func (r *portmapRef) Status() any {
	if p := r.p.Load(); p != nil {
		return p.Status()
	}
	return nil
}

func (r *portmapRef) shutdown(ctx context.Context) error {
	if p := r.p.Load(); p != nil {
		return p.Shutdown(ctx)
	}
	return nil
}

// printPortmap prints the "portmap" object of the admin status for
// switchboard status.
func printPortmap(w io.Writer, s *portmapStatus) {
	switch {
	case s.Mapped:
		fmt.Fprintf(w, "\nport mapping %s via gateway %s: %s -> this broker (%s), lost %d times\n", s.Protocol, s.Gateway, s.External, s.PublicURL, s.Lost)
	default:
		fmt.Fprintf(w, "\nport mapping %s: not mapped: %s (lost %d times)\n", s.Protocol, s.Error, s.Lost)
	}
}
