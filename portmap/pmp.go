package portmap

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"
)

// udpRoundTrip sends the request built by build to gateway:5351 and returns
// the first reply. It retransmits after 250 ms, doubling (RFC 6886 3.1,
// RFC 6887 8.1.1), until timeout or ctx ends. build gets the local address
// the request leaves from (PCP carries it in the request).
func udpRoundTrip(ctx context.Context, gw netip.Addr, timeout time.Duration, build func(local netip.Addr) []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", net.JoinHostPort(gw.String(), strconv.Itoa(gatewayPortNumber)))
	if err != nil {
		return nil, fmt.Errorf("opening UDP socket to gateway %s: %w", gw, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	local := conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	req := build(local)
	deadline, _ := ctx.Deadline()
	buf := make([]byte, pcpMaxMessageLen+4)
	for rto := 250 * time.Millisecond; ; rto *= 2 {
		if _, err := conn.Write(req); err != nil {
			return nil, fmt.Errorf("sending to gateway %s port %d: %w", gw, gatewayPortNumber, err)
		}
		next := time.Now().Add(rto)
		if next.After(deadline) {
			next = deadline
		}
		if ctx.Err() != nil {
			break
		}
		conn.SetReadDeadline(next)
		n, err := conn.Read(buf)
		if err == nil {
			return buf[:n], nil
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("gateway %s: UDP port %d refused: %w", gw, gatewayPortNumber, errNoServer)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return nil, fmt.Errorf("reading reply from gateway %s: %w", gw, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return nil, err
	}
	return nil, fmt.Errorf("gateway %s: no answer on UDP port %d within %s: %w", gw, gatewayPortNumber, timeout, errNoServer)
}

// errNoServer means nothing answers NAT-PMP or PCP at the gateway.
var errNoServer = errors.New("no NAT-PMP/PCP server")

// epochTracker remembers the last epoch a gateway reported.
type epochTracker struct {
	have  bool
	epoch uint32
	at    time.Time
}

// observe records an epoch and reports whether it shows a gateway restart.
func (t *epochTracker) observe(epoch uint32, now time.Time) (restarted bool) {
	restarted = t.have && !epochValid(t.epoch, t.at, epoch, now)
	t.have, t.epoch, t.at = true, epoch, now
	return restarted
}

// pcpBackend maps one TCP port with PCP MAP requests.
type pcpBackend struct {
	gw      netip.Addr
	cfg     *Config
	nonce   [12]byte
	epochs  epochTracker
	current mapping // last granted, zero before the first
}

func newPCPBackend(gw netip.Addr, cfg *Config) (*pcpBackend, error) {
	b := &pcpBackend{gw: gw, cfg: cfg}
	if _, err := rand.Read(b.nonce[:]); err != nil {
		return nil, fmt.Errorf("making PCP nonce: %w", err)
	}
	return b, nil
}

func (b *pcpBackend) protocol() string { return string(PCP) }
func (b *pcpBackend) gateway() string  { return b.gw.String() }

func (b *pcpBackend) request(ctx context.Context, lifetime uint32) (pcpMapReply, error) {
	q := pcpMapRequest{
		LifetimeSec:  lifetime,
		Nonce:        b.nonce,
		InternalPort: uint16(b.cfg.InternalPort),
		ExternalPort: uint16(b.cfg.ExternalPort),
	}
	if b.current.ExternalPort != 0 { // renewal: ask for what we hold
		q.ExternalPort = uint16(b.current.ExternalPort)
		q.ExternalIP = b.current.ExternalIP
	}
	raw, err := udpRoundTrip(ctx, b.gw, b.cfg.RequestTimeout, func(local netip.Addr) []byte {
		q.ClientIP = local
		return q.encode()
	})
	if err != nil {
		return pcpMapReply{}, fmt.Errorf("pcp MAP: %w", err)
	}
	r, err := parsePCPMapReply(raw)
	if err != nil {
		return r, err
	}
	if r.Nonce != b.nonce || r.InternalPort != q.InternalPort || r.Protocol != ipProtoTCP {
		return r, fmt.Errorf("pcp MAP reply does not match the request (nonce, port or protocol differ)")
	}
	return r, nil
}

func (b *pcpBackend) mapPort(ctx context.Context) (mapping, bool, error) {
	r, err := b.request(ctx, uint32(b.cfg.Lease/time.Second))
	if err != nil {
		return mapping{}, false, err
	}
	restarted := b.epochs.observe(r.Epoch, time.Now())
	b.cfg.Logger.Debug("pcp MAP reply", "epoch", r.Epoch, "lifetime_s", r.LifetimeSec, "external", netip.AddrPortFrom(r.ExternalIP, r.ExternalPort), "restarted", restarted)
	b.current = mapping{ExternalIP: r.ExternalIP, ExternalPort: int(r.ExternalPort), Lifetime: time.Duration(r.LifetimeSec) * time.Second}
	return b.current, restarted, nil
}

// check renews the mapping: for PCP a renewal is the way to learn the epoch
// and the assigned external address (RFC 6887 11.2.1).
func (b *pcpBackend) check(ctx context.Context, cur mapping) (mapping, string, error) {
	mp, restarted, err := b.mapPort(ctx)
	if err != nil {
		return mapping{}, "", err
	}
	switch {
	case restarted:
		return mp, "gateway restarted (PCP epoch went back); mapping made again", nil
	case mp.ExternalIP != cur.ExternalIP || mp.ExternalPort != cur.ExternalPort:
		return mp, fmt.Sprintf("external address changed from %s to %s", cur.addrPort(), mp.addrPort()), nil
	}
	return mp, "", nil
}

func (b *pcpBackend) unmap(ctx context.Context, _ mapping) error {
	_, err := b.request(ctx, 0)
	return err
}

// natpmpBackend maps one TCP port with NAT-PMP.
type natpmpBackend struct {
	gw      netip.Addr
	cfg     *Config
	epochs  epochTracker
	extPort int // the external port granted last, 0 before the first
}

func (b *natpmpBackend) protocol() string { return string(NATPMP) }
func (b *natpmpBackend) gateway() string  { return b.gw.String() }

func (b *natpmpBackend) call(ctx context.Context, op byte, req []byte) (natpmpReply, error) {
	raw, err := udpRoundTrip(ctx, b.gw, b.cfg.RequestTimeout, func(netip.Addr) []byte { return req })
	if err != nil {
		return natpmpReply{}, fmt.Errorf("natpmp: %w", err)
	}
	return parseNATPMPReply(op, raw)
}

func (b *natpmpBackend) externalAddress(ctx context.Context) (netip.Addr, bool, error) {
	r, err := b.call(ctx, natpmpOpExternal, natpmpExternalRequest())
	if err != nil {
		return netip.Addr{}, false, err
	}
	restarted := b.epochs.observe(r.Epoch, time.Now())
	b.cfg.Logger.Debug("natpmp external address reply", "epoch", r.Epoch, "external", r.ExternalIP, "restarted", restarted)
	return r.ExternalIP, restarted, nil
}

func (b *natpmpBackend) mapPort(ctx context.Context) (mapping, bool, error) {
	ip, restarted, err := b.externalAddress(ctx)
	if err != nil {
		return mapping{}, false, err
	}
	ext := b.cfg.ExternalPort
	if b.extPort != 0 { // renewal: ask for the port we hold (RFC 6886 3.3)
		ext = b.extPort
	}
	r, err := b.call(ctx, natpmpOpMapTCP, natpmpMapRequest(uint16(b.cfg.InternalPort), uint16(ext), uint32(b.cfg.Lease/time.Second)))
	if err != nil {
		return mapping{}, false, err
	}
	if r.InternalPort != uint16(b.cfg.InternalPort) {
		return mapping{}, false, fmt.Errorf("natpmp reply is for internal port %d, want %d", r.InternalPort, b.cfg.InternalPort)
	}
	restarted = b.epochs.observe(r.Epoch, time.Now()) || restarted
	b.extPort = int(r.ExternalPort)
	return mapping{ExternalIP: ip, ExternalPort: int(r.ExternalPort), Lifetime: time.Duration(r.LifetimeSec) * time.Second}, restarted, nil
}

// check asks for the external address: its epoch tells whether the gateway
// restarted (and so lost the mapping), its address whether it changed.
func (b *natpmpBackend) check(ctx context.Context, cur mapping) (mapping, string, error) {
	ip, restarted, err := b.externalAddress(ctx)
	if err != nil {
		return mapping{}, "", err
	}
	var reason string
	switch {
	case restarted:
		reason = "gateway restarted (NAT-PMP epoch went back); mapping made again"
	case ip != cur.ExternalIP:
		reason = fmt.Sprintf("external address changed from %s to %s; mapping made again", cur.ExternalIP, ip)
	default:
		return cur, "", nil
	}
	mp, _, err := b.mapPort(ctx)
	if err != nil {
		return mapping{}, "", fmt.Errorf("%s, but mapping again failed: %w", reason, err)
	}
	return mp, reason, nil
}

func (b *natpmpBackend) unmap(ctx context.Context, _ mapping) error {
	// RFC 6886 3.4: lifetime 0 and external port 0 delete the mapping.
	_, err := b.call(ctx, natpmpOpMapTCP, natpmpMapRequest(uint16(b.cfg.InternalPort), 0, 0))
	return err
}
