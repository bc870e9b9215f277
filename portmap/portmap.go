package portmap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Protocol selects how the mapping is asked for.
type Protocol string

const (
	Auto   Protocol = "auto"   // PCP, then NAT-PMP, then UPnP IGD; the first that maps is kept
	UPnP   Protocol = "upnp"   // UPnP IGD (WANIPConnection:2, :1, WANPPPConnection:1)
	NATPMP Protocol = "natpmp" // NAT-PMP, RFC 6886
	PCP    Protocol = "pcp"    // PCP MAP, RFC 6887
	Off    Protocol = "off"    // no mapping; the Mapper only reports Protocol "off"
)

// autoOrder is the order Auto tries the protocols in.
var autoOrder = []Protocol{PCP, NATPMP, UPnP}

// Config says what to map. Zero values of the optional fields mean the
// documented defaults.
type Config struct {
	Protocol     Protocol      // required: auto, upnp, natpmp, pcp or off
	InternalPort int           // required: the local TCP port to expose
	ExternalPort int           // wanted external port; 0 means InternalPort
	Lease        time.Duration // requested lifetime, whole seconds; default 1h
	Gateway      netip.Addr    // gateway to ask; default: IPv4 default route from /proc/net/route
	Logger       *slog.Logger  // default: slog.Default()
	OnChange     func(Status)  // optional; called from the Mapper's goroutine on every change; must not block

	// Description is the UPnP mapping description; default "switchboard".
	Description string
	// CheckInterval is how often a held mapping is verified between renewals
	// (PCP: a renewal; NAT-PMP: external address and epoch; UPnP:
	// GetSpecificPortMappingEntry and external address); default 1m.
	CheckInterval time.Duration
	// RetryMin and RetryMax bound the exponential backoff after a failure;
	// defaults 2s and 5m.
	RetryMin, RetryMax time.Duration
	// RequestTimeout bounds one request to the gateway, retransmissions
	// included; default 3s. UPnP discovery adds a fixed 2s SSDP search.
	RequestTimeout time.Duration
}

// Status is the Mapper's state, for logs, metrics and the admin API.
type Status struct {
	Protocol     string     // protocol in use ("pcp", "natpmp", "upnp"), or the configured one while none maps
	Gateway      string     // gateway address asked
	ExternalIP   netip.Addr // valid while Mapped
	ExternalPort int        // valid while Mapped
	Mapped       bool
	LeaseExpires time.Time // zero for a permanent UPnP lease
	Err          string    // why the last attempt failed; empty when all is well
	LastChange   time.Time
	Lost         int // times a held mapping was lost or found gone (gateway restart, address change, failed renewal)
}

// External returns "ip:port" of the mapping, or "" when nothing is mapped.
func (s Status) External() string {
	if !s.Mapped {
		return ""
	}
	return netip.AddrPortFrom(s.ExternalIP, uint16(s.ExternalPort)).String()
}

// mapping is what a gateway granted.
type mapping struct {
	ExternalIP   netip.Addr
	ExternalPort int
	Lifetime     time.Duration // 0: permanent (UPnP only)
}

func (m mapping) addrPort() string {
	return netip.AddrPortFrom(m.ExternalIP, uint16(m.ExternalPort)).String()
}

// backend is one protocol's client for one gateway and one port. Its methods
// are called from the Mapper's goroutine only.
type backend interface {
	protocol() string
	gateway() string
	// mapPort creates or renews the mapping; restarted reports that the
	// gateway's epoch shows it lost its state since the last reply.
	mapPort(ctx context.Context) (mp mapping, restarted bool, err error)
	// check verifies the held mapping, making it again if it is gone or the
	// external address changed; reason says what happened, "" when nothing did.
	check(ctx context.Context, cur mapping) (mp mapping, reason string, err error)
	unmap(ctx context.Context, cur mapping) error
}

// Mapper holds one port mapping and keeps it alive.
type Mapper struct {
	cfg    Config // static after Start
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns

	mu     sync.Mutex
	status Status // guarded by mu

	// Owned by run until done is closed, then by Shutdown.
	be  backend
	cur mapping

	shutdownOnce sync.Once
	shutdownErr  error
}

// Start validates cfg and starts keeping the mapping in a goroutine. It
// returns an error only for an invalid Config: an absent or refusing gateway
// is reported in Status and retried with backoff. Cancelling ctx stops the
// renewals (the mapping then lapses at its lease end); Shutdown also removes it.
func Start(ctx context.Context, cfg Config) (*Mapper, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	m := &Mapper{cfg: cfg, log: cfg.Logger.With("component", "portmap"), cancel: cancel, done: make(chan struct{})}
	m.status = Status{Protocol: string(cfg.Protocol), LastChange: time.Now()}
	if cfg.Protocol == Off {
		close(m.done)
		return m, nil
	}
	go func() {
		defer close(m.done)
		m.run(ctx)
	}()
	return m, nil
}

func (c *Config) fill() error {
	switch c.Protocol {
	case Auto, UPnP, NATPMP, PCP, Off:
	default:
		return fmt.Errorf("portmap: unknown protocol %q (want auto, upnp, natpmp, pcp or off)", c.Protocol)
	}
	if c.InternalPort < 1 || c.InternalPort > 65535 {
		return fmt.Errorf("portmap: internal port %d out of range 1-65535", c.InternalPort)
	}
	if c.ExternalPort < 0 || c.ExternalPort > 65535 {
		return fmt.Errorf("portmap: external port %d out of range 0-65535", c.ExternalPort)
	}
	if c.ExternalPort == 0 {
		c.ExternalPort = c.InternalPort
	}
	if c.Lease == 0 {
		c.Lease = time.Hour
	}
	if c.Lease < time.Second || c.Lease > 0xffffffff*time.Second {
		return fmt.Errorf("portmap: lease %s out of range (1s or more)", c.Lease)
	}
	if c.Gateway.IsValid() && !c.Gateway.Unmap().Is4() {
		return fmt.Errorf("portmap: gateway %s is not IPv4", c.Gateway)
	}
	c.Gateway = c.Gateway.Unmap()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Description == "" {
		c.Description = "switchboard"
	}
	for _, d := range []struct {
		p   *time.Duration
		def time.Duration
	}{{&c.CheckInterval, time.Minute}, {&c.RetryMin, 2 * time.Second}, {&c.RetryMax, 5 * time.Minute}, {&c.RequestTimeout, 3 * time.Second}} {
		if *d.p < 0 {
			return fmt.Errorf("portmap: negative duration %s", *d.p)
		}
		if *d.p == 0 {
			*d.p = d.def
		}
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = c.RetryMin
	}
	return nil
}

// Status returns the current state.
func (m *Mapper) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status
}

// Shutdown stops the renew loop and removes the mapping from the gateway. It
// is idempotent; later calls return the first call's result.
func (m *Mapper) Shutdown(ctx context.Context) error {
	m.shutdownOnce.Do(func() {
		m.cancel()
		select {
		case <-m.done:
		case <-ctx.Done():
			m.shutdownErr = fmt.Errorf("portmap: waiting for the mapper to stop: %w", ctx.Err())
			return
		}
		if m.be == nil {
			return
		}
		err := m.be.unmap(ctx, m.cur)
		if err != nil {
			m.shutdownErr = fmt.Errorf("portmap: removing %s mapping %s on %s: %w", m.be.protocol(), m.cur.addrPort(), m.be.gateway(), err)
			m.log.Warn("could not remove port mapping", "err", err, "protocol", m.be.protocol(), "external", m.cur.addrPort())
		} else {
			m.log.Info("port mapping removed", "protocol", m.be.protocol(), "external", m.cur.addrPort())
		}
		m.update(func(s *Status) {
			s.Mapped, s.ExternalIP, s.ExternalPort, s.LeaseExpires = false, netip.Addr{}, 0, time.Time{}
			if err != nil {
				s.Err = m.shutdownErr.Error()
			}
		})
	})
	return m.shutdownErr
}

// update changes the status under the lock and reports a change to OnChange.
func (m *Mapper) update(f func(*Status)) {
	m.mu.Lock()
	before := m.status
	f(&m.status)
	changed := m.status != before
	if changed {
		m.status.LastChange = time.Now()
	}
	s := m.status
	m.mu.Unlock()
	if changed && m.cfg.OnChange != nil {
		m.cfg.OnChange(s)
	}
}

// run keeps the mapping until ctx ends.
func (m *Mapper) run(ctx context.Context) {
	backoff := m.cfg.RetryMin
	failures := 0
	var grantedAt, lastCheck time.Time
	for {
		if m.be == nil {
			be, mp, err := m.establish(ctx)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				m.log.Warn("port mapping failed", "err", err, "retry_in", backoff)
				m.update(func(s *Status) {
					*s = Status{Protocol: string(m.cfg.Protocol), Gateway: s.Gateway, Err: err.Error(), Lost: s.Lost, LastChange: s.LastChange}
				})
				if !sleep(ctx, backoff) {
					return
				}
				backoff = min(2*backoff, m.cfg.RetryMax)
				continue
			}
			m.be, m.cur = be, mp
			grantedAt, lastCheck, failures, backoff = time.Now(), time.Now(), 0, m.cfg.RetryMin
			m.log.Info("port mapped", "protocol", be.protocol(), "gateway", be.gateway(), "external", mp.addrPort(), "internal_port", m.cfg.InternalPort, "lifetime", mp.Lifetime)
			m.setMapped(grantedAt)
		}

		// Renew at half the granted lifetime (RFC 6886 3.3, RFC 6887 11.2.1);
		// verify every CheckInterval in between; after a failure, retry sooner.
		next := lastCheck.Add(m.cfg.CheckInterval)
		renewAt := time.Time{}
		if m.cur.Lifetime > 0 {
			renewAt = grantedAt.Add(m.cur.Lifetime / 2)
			next = minTime(next, renewAt)
		}
		if failures > 0 {
			next = time.Now().Add(backoff)
		}
		if !sleep(ctx, time.Until(next)) {
			return
		}
		var mp mapping
		var reason string
		var err error
		if !renewAt.IsZero() && !time.Now().Before(renewAt) {
			var restarted bool
			mp, restarted, err = m.be.mapPort(ctx)
			if restarted {
				reason = "gateway restarted (epoch went back); mapping made again"
			}
		} else {
			mp, reason, err = m.be.check(ctx, m.cur)
		}
		if ctx.Err() != nil {
			return
		}
		lastCheck = time.Now()
		if err != nil {
			failures++
			m.handleFailure(err, failures, grantedAt)
			if m.be == nil {
				backoff = m.cfg.RetryMin
				continue
			}
			backoff = min(2*backoff, m.cfg.RetryMax)
			continue
		}
		if reason != "" {
			m.log.Warn("port mapping was lost", "reason", reason, "protocol", m.be.protocol(), "external", mp.addrPort())
			m.update(func(s *Status) { s.Lost++ })
		}
		m.cur, grantedAt, failures, backoff = mp, time.Now(), 0, m.cfg.RetryMin
		m.setMapped(grantedAt)
	}
}

// handleFailure records a failed renewal or check. A refusal, an expired
// lease or three failures in a row drop the mapping and start over.
func (m *Mapper) handleFailure(err error, failures int, grantedAt time.Time) {
	expired := m.cur.Lifetime > 0 && !time.Now().Before(grantedAt.Add(m.cur.Lifetime))
	drop := isRefusal(err) || expired || failures >= 3
	m.log.Warn("port mapping renewal or check failed", "err", err, "protocol", m.be.protocol(), "failures", failures, "dropping", drop)
	m.update(func(s *Status) {
		s.Err = err.Error()
		if drop {
			s.Mapped, s.ExternalIP, s.ExternalPort, s.LeaseExpires = false, netip.Addr{}, 0, time.Time{}
			s.Lost++
		}
	})
	if drop {
		m.be, m.cur = nil, mapping{}
	}
}

func (m *Mapper) setMapped(grantedAt time.Time) {
	be, mp := m.be, m.cur
	m.update(func(s *Status) {
		s.Protocol, s.Gateway, s.ExternalIP, s.ExternalPort, s.Mapped, s.Err = be.protocol(), be.gateway(), mp.ExternalIP, mp.ExternalPort, true, ""
		s.LeaseExpires = time.Time{}
		if mp.Lifetime > 0 {
			s.LeaseExpires = grantedAt.Add(mp.Lifetime)
		}
	})
}

// establish finds the gateway and asks it, with the configured protocol or
// with each of autoOrder, for the mapping.
func (m *Mapper) establish(ctx context.Context) (backend, mapping, error) {
	gw := m.cfg.Gateway
	if !gw.IsValid() {
		var err error
		if gw, err = defaultGateway(); err != nil {
			return nil, mapping{}, err
		}
	}
	m.update(func(s *Status) { s.Gateway = gw.String() })
	protos := []Protocol{m.cfg.Protocol}
	if m.cfg.Protocol == Auto {
		protos = autoOrder
	}
	var errs []string
	noServer := false
	for _, p := range protos {
		if p == NATPMP && noServer {
			// Same UDP port as PCP, which got no answer at all: don't wait twice.
			errs = append(errs, "natpmp: not tried, nothing answers on UDP port 5351")
			continue
		}
		be, mp, err := m.try(ctx, p, gw)
		noServer = noServer || (p == PCP && errors.Is(err, errNoServer))
		if err == nil {
			return be, mp, nil
		}
		if ctx.Err() != nil {
			return nil, mapping{}, ctx.Err()
		}
		if m.cfg.Protocol == Auto {
			m.log.Debug("port mapping protocol did not map", "protocol", p, "err", err)
		}
		errs = append(errs, err.Error())
	}
	return nil, mapping{}, errors.New(strings.Join(errs, "; "))
}

func (m *Mapper) try(ctx context.Context, p Protocol, gw netip.Addr) (backend, mapping, error) {
	var be backend
	switch p {
	case PCP:
		b, err := newPCPBackend(gw, &m.cfg)
		if err != nil {
			return nil, mapping{}, err
		}
		be = b
	case NATPMP:
		be = &natpmpBackend{gw: gw, cfg: &m.cfg}
	case UPnP:
		b, err := discoverUPnP(ctx, gw, &m.cfg)
		if err != nil {
			return nil, mapping{}, err
		}
		be = b
	}
	mp, _, err := be.mapPort(ctx)
	if err != nil {
		return nil, mapping{}, err
	}
	if !mp.ExternalIP.IsValid() || mp.ExternalPort == 0 {
		return nil, mapping{}, fmt.Errorf("%s gateway %s granted an unusable mapping %s", p, be.gateway(), mp.addrPort())
	}
	return be, mp, nil
}

// isRefusal reports whether err is a gateway's explicit "no".
func isRefusal(err error) bool {
	var re *ResultError
	var ue *UPnPError
	return errors.As(err, &re) || errors.As(err, &ue)
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
