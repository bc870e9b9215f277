package broker

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/protocol"
	"github.com/switchboard-dev/switchboard/scope"
)

// Handshake is a client's WebSocket handshake as the transport parsed it.
type Handshake struct {
	Host      string // request host without port, for scope matching
	Path      string // request path in canonical form (scope.CanonicalPath), for scope matching and pushes
	Target    string // the full URL asked for: ws://host/path?query
	Origin    string
	Protocols []string // offered subprotocols, in the client's order
	FirstLine string
	Headers   []protocol.Header
	Body      []byte
	Remote    netip.AddrPort
	App       string // verified app id of the caller, if any
	// Owner, when set, is the owner the matched registration must have
	// (a wsapp connection routed to an app's scope); another owner's
	// registration there is a rejection.
	Owner string
	// Admit, when set, is asked about the matched registration's owner
	// before the service is: false is a rejection (reason "manifest"). The
	// transport holds a plain ws:// client of an app's scope to the app
	// manifests this way.
	Admit func(owner string) bool
}

// Outcome is how a connect request ended.
type Outcome int

// Outcomes of Offer.
const (
	Rejected  Outcome = iota // answer with the uniform rejection
	Accepted                 // upgrade with Decision.Protocol and Headers, then Serve
	Responded                // write Decision.Status, Headers and Body
)

// Decision is the answer to a connect request.
type Decision struct {
	Outcome  Outcome
	Reason   string // why it was rejected, for logs and metrics only
	Protocol string
	Headers  []protocol.Header
	Status   int
	Body     []byte
	// Scope is the matched registration's scope, for an accept or a
	// custom response (the transport keeps the service's cookies in it).
	Scope   scope.Scope
	channel *Channel
}

type pendingConnect struct {
	answer  chan Decision // cap 1
	at      time.Time
	info    protocol.ChannelInfo // the channel's details, should it be accepted
	offered []string             // the client's subprotocols: an Accept must pick one of them or none
	path    string               // the canonical request path, kept on the channel
}

// refuses is the reason the registration's policy from Hello refuses a
// client before its service is asked ("" when it admits it): an origin
// not admitted, or offered subprotocols none of which the service serves.
func (p policy) refuses(hs *Handshake) string {
	if !admits(p.origins, hs.Origin) {
		return "origin"
	}
	if len(p.protocols) > 0 && len(hs.Protocols) > 0 && firstCommon(hs.Protocols, p.protocols) == "" {
		return "subprotocol"
	}
	return ""
}

// reject returns a rejection and counts its reason.
func (b *Broker) reject(reason string) Decision {
	b.m.rejects.WithLabelValues(reason).Inc()
	return Decision{Outcome: Rejected, Reason: reason}
}

// Offer asks the registration that owns the handshake's URL whether to
// accept the client. Everything that is not an accept or a custom response
// is a rejection, which the client must not be able to tell apart.
func (b *Broker) Offer(ctx context.Context, hs *Handshake) Decision {
	reg := b.lookup(hs.Host, hs.Path)
	if reg == nil {
		return b.reject("no_scope")
	}
	if hs.Owner != "" && reg.owner != hs.Owner {
		return b.reject("owner")
	}
	if hs.Admit != nil && !hs.Admit(reg.owner) {
		return b.reject("manifest")
	}
	inst := reg.active.Load()
	if inst == nil || inst.dead.Load() {
		inst = reg.awaitActive(ctx) // the service asked for a hold (hold.go)
	}
	if inst == nil {
		return b.reject("no_instance")
	}
	if reason := inst.policy.refuses(hs); reason != "" {
		return b.reject(reason)
	}
	if reg.overChannelCap(inst) {
		return b.reject("channel_cap")
	}
	reg.mu.Lock()
	if reg.pending >= b.cfg.Limits.MaxPendingConnects {
		reg.mu.Unlock()
		return b.reject("pending_limit")
	}
	reg.pending++
	reg.mu.Unlock()
	defer func() {
		reg.mu.Lock()
		reg.pending--
		reg.mu.Unlock()
	}()

	id := b.newID()
	timer := time.NewTimer(b.cfg.Limits.AcceptTimeout)
	defer timer.Stop()
	for {
		d, reason := b.ask(ctx, inst, hs, id, timer.C)
		if reason != "instance_gone" {
			d.Scope = reg.scope
			return d
		}
		// The instance died before it answered. Under a hold, the next
		// instance is asked instead (hold.go); else it is a rejection.
		next := reg.awaitActive(ctx)
		if next == nil || next == inst {
			return b.reject(reason)
		}
		if next.policy.refuses(hs) != "" {
			return b.reject("policy_changed")
		}
		inst = next
	}
}

// ask sends one connect request to inst and waits for its answer, the
// accept timeout (timeout), the client leaving or the broker shutting
// down. The reason is the rejection's, "" for an answer.
func (b *Broker) ask(ctx context.Context, inst *Instance, hs *Handshake, id uint64, timeout <-chan time.Time) (Decision, string) {
	p := &pendingConnect{answer: make(chan Decision, 1), at: time.Now(), offered: hs.Protocols, path: hs.Path, info: protocol.ChannelInfo{
		Channel: id, Origin: hs.Origin, Target: hs.Target, App: hs.App, Remote: hs.Remote.String()}}
	inst.pendMu.Lock()
	inst.pending[id] = p
	inst.pendMu.Unlock()
	inst.sendFrame(&protocol.Connect{Channel: id, Remote: hs.Remote.String(), Origin: hs.Origin, Target: hs.Target,
		Protocols: hs.Protocols, App: hs.App, FirstLine: hs.FirstLine, Headers: hs.Headers, Body: hs.Body})

	var reason string
	select {
	case d := <-p.answer:
		return d, ""
	case <-timeout:
		reason = "timeout"
	case <-inst.done:
		reason = "instance_gone"
	case <-ctx.Done():
		reason = "client_gone"
	case <-b.shutdown:
		reason = "shutdown"
	}
	if inst.takePending(id) == nil {
		// The link took the answer first: it is on its way.
		d := <-p.answer
		if d.Outcome == Accepted && reason != "" {
			// Too late for this client; the service sees the channel end.
			b.Abandon(d)
			return b.reject(reason), reason
		}
		return d, ""
	}
	if reason == "instance_gone" {
		// Counted by the caller, who may ask the next instance instead.
		return Decision{Outcome: Rejected, Reason: reason}, reason
	}
	return b.reject(reason), reason
}

func (inst *Instance) takePending(id uint64) *pendingConnect {
	inst.pendMu.Lock()
	defer inst.pendMu.Unlock()
	p := inst.pending[id]
	delete(inst.pending, id)
	return p
}

// onAnswer handles Accept, Respond and Reject from a service.
func (inst *Instance) onAnswer(ft protocol.Type, body []byte) error {
	var (
		id uint64
		d  Decision
	)
	switch ft {
	case protocol.TypeAccept:
		var f protocol.Accept
		if err := f.Decode(body); err != nil {
			return protoErr("%v", err)
		}
		id = f.Channel
		d = Decision{Outcome: Accepted, Protocol: f.Protocol, Headers: f.Headers}
	case protocol.TypeRespond:
		var f protocol.Respond
		if err := f.Decode(body); err != nil {
			return protoErr("%v", err)
		}
		id = f.Channel
		d = Decision{Outcome: Responded, Status: int(f.Status), Headers: f.Headers, Body: append([]byte(nil), f.Body...)}
	default:
		var f protocol.Reject
		if err := f.Decode(body); err != nil {
			return protoErr("%v", err)
		}
		id = f.Channel
	}
	p := inst.takePending(id)
	if p == nil {
		// Timed out or the client left: tell the service the channel is gone.
		if ft == protocol.TypeAccept {
			inst.sendFrame(&protocol.Close{Channel: id, Code: uint64(websocket.StatusAbnormalClosure), Reason: "connect request expired"})
		}
		return nil
	}
	inst.b.m.acceptLatency.Observe(time.Since(p.at).Seconds())
	switch d.Outcome {
	case Accepted:
		if err := checkAccept(&d, p.offered); err != nil {
			inst.b.log.Warn("service accept refused", "scope", inst.reg.scope.String(), "instance", inst.id, "err", err)
			inst.sendFrame(&protocol.Close{Channel: id, Code: uint64(websocket.StatusAbnormalClosure), Reason: err.Error()})
			p.answer <- inst.b.reject("bad_accept")
			return nil
		}
		info := p.info
		info.Protocol, info.Since = d.Protocol, uint64(time.Now().UnixMilli())
		d.channel = newChannel(inst.reg, inst, info, p.path)
		if !inst.reg.addChannel(d.channel, inst) {
			p.answer <- inst.b.reject("instance_gone")
			return nil
		}
		inst.b.m.channels.Inc()
	case Responded:
		if err := checkRespond(&d); err != nil {
			inst.b.log.Warn("service response refused", "scope", inst.reg.scope.String(), "err", err)
			p.answer <- inst.b.reject("bad_response")
			return nil
		}
	default:
		d = inst.b.reject("service")
	}
	p.answer <- d
	return nil
}

// forbiddenHeader lists response headers a service may not set: they belong
// to the handshake or to HTTP framing.
func forbiddenHeader(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "upgrade", "connection", "content-length", "transfer-encoding", "date", "trailer", "keep-alive", "te":
		return true
	}
	return strings.HasPrefix(n, "sec-websocket-")
}

func validHeader(h protocol.Header) error {
	if h.Name == "" {
		return fmt.Errorf("empty header name")
	}
	for i := 0; i < len(h.Name); i++ {
		c := h.Name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return fmt.Errorf("header name %q is not a token", h.Name)
		}
	}
	for i := 0; i < len(h.Value); i++ {
		if c := h.Value[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return fmt.Errorf("header %s has a control character", h.Name)
		}
	}
	return nil
}

// checkAccept validates a service's whole Accept, once, before a channel
// exists: its subprotocol is one the client offered (or none), and its
// headers cannot break the handshake. The transport upgrades what passes
// without deciding again.
func checkAccept(d *Decision, offered []string) error {
	if err := protocol.CheckSubprotocol(d.Protocol, offered); err != nil {
		return err
	}
	for _, h := range d.Headers {
		if err := validHeader(h); err != nil {
			return err
		}
		if forbiddenHeader(h.Name) {
			return fmt.Errorf("header %s would break the handshake", h.Name)
		}
	}
	return nil
}

func checkRespond(d *Decision) error {
	if d.Status < 200 || d.Status > 599 {
		return fmt.Errorf("status %d is not a final response", d.Status)
	}
	for _, h := range d.Headers {
		if err := validHeader(h); err != nil {
			return err
		}
		if forbiddenHeader(h.Name) {
			return fmt.Errorf("header %s is set by the broker", h.Name)
		}
	}
	return nil
}

// Abandon tells the service that an accepted client never completed its
// handshake.
func (b *Broker) Abandon(d Decision) {
	if d.channel == nil {
		return
	}
	d.channel.clientClosed(websocket.StatusAbnormalClosure, "handshake failed")
}

// Serve relays an accepted client until its channel ends; conn is the
// upgraded connection and raw the hijacked connection under it (nil when
// the transport has none), which is closed to cut a client that stalls its
// closing handshake. It takes no context: the channel ends when the
// client, the service or the broker ends it (Shutdown), not with a request.
func (b *Broker) Serve(d Decision, conn *websocket.Conn, raw net.Conn) {
	ch := d.channel
	if ch == nil {
		conn.Close(websocket.StatusInternalError, "")
		return
	}
	if !b.enter() {
		conn.Close(websocket.StatusGoingAway, "broker shutting down")
		b.Abandon(d)
		return
	}
	defer b.wg.Done()
	conn.SetReadLimit(int64(b.cfg.Limits.MaxMessage))
	c := newWSClient(b, ch, conn, raw)
	ch.mu.Lock()
	ch.conn = c
	ch.startWriterLocked()
	ch.mu.Unlock()
	b.m.clients.Inc()
	c.run()
}

// admits reports whether a client from origin (its Origin header) may
// reach a service that admits origins (canonical, from canonicalOrigins):
// all when the list is empty or has "*"; otherwise only an origin whose
// canonical form is listed ("https://Example.com:443" is
// "https://example.com"). No origin, or one that is not one, is admitted
// only by "*".
func admits(origins []string, origin string) bool {
	if len(origins) == 0 || slices.Contains(origins, "*") {
		return true
	}
	o, err := scope.CanonicalOrigin(origin)
	return err == nil && slices.Contains(origins, o)
}

// canonicalOrigins returns a service's admitted origins in canonical form
// ("*" stays), or an error naming the first that is not an origin.
func canonicalOrigins(origins []string) ([]string, error) {
	if len(origins) == 0 {
		return nil, nil
	}
	out := make([]string, len(origins))
	for i, o := range origins {
		if o == "*" {
			out[i] = o
			continue
		}
		c, err := scope.CanonicalOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("admitted origins: %w", err)
		}
		out[i] = c
	}
	return out, nil
}

func firstCommon(offered, accepted []string) string {
	for _, o := range offered {
		for _, a := range accepted {
			if o == a {
				return o
			}
		}
	}
	return ""
}
