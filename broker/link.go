package broker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/internal/bufpool"
	"github.com/switchboard-dev/switchboard/protocol"
	"github.com/switchboard-dev/switchboard/scope"
)

// Instance is one attached service process: the broker side of a service
// link.
type Instance struct {
	b      *Broker
	reg    *Registration
	link   link      // static: where its frames go
	id     uint64    // static
	label  string    // static
	remote string    // static
	since  time.Time // static: attach time on its node's clock, shown, not compared
	order  uint64    // static: attach order across the cluster (nextOrder; a standby's is set by Registration.attach before it is shared)
	window int       // static: per-channel unacked bytes it accepts
	policy policy    // static
	node   uint64    // static: the node whose link this is (proxies: another node)

	// standby: attached with HelloStandby while an instance with its label
	// was active (standbyFor); it waits instead of taking over. Static.
	standby    bool
	standbyFor uint64

	urlBase    string                 // static after Welcome: the scope URL before PublicURL rewrites it
	urlUpdates bool                   // static after Welcome: the service asked for URL frames
	sentURL    atomic.Pointer[string] // the public URL the service was last told

	remoteChans remoteChannels // channels of other nodes this local instance serves

	terms       *Terms        // static: what Authorize bound the attachment to (nil for proxies)
	maxChannels int           // static: terms.MaxChannels
	hold        time.Duration // static: Hello.Hold, capped (hold.go)

	dead atomic.Bool
	done chan struct{} // closed when the link ends
	once sync.Once
	err  error // why the link ended; written once before done closes

	outMu     sync.Mutex
	out       []byte        // data-path frames waiting for the writer, in channel order; guarded by outMu
	ctrl      []byte        // control frames, written ahead of out; guarded by outMu
	spare     []byte        // the writer's previous out buffer, reused; guarded by outMu
	ctrlSpare []byte        // and its ctrl buffer; guarded by outMu
	wake      chan struct{} // cap 1: out has frames

	pendMu  sync.Mutex
	pending map[uint64]*pendingConnect // guarded by pendMu
}

// link is how frames reach an instance: down its own WebSocket (localLink)
// or through the cluster to the node it is attached to (remoteLink).
type link interface {
	write(b []byte) error // one batch of frames, in order
	end(err error)        // the instance failed: close the transport, with an Error frame for a linkError
	local() bool          // attached to this node
}

// localLink is the WebSocket of an instance attached to this node.
type localLink struct {
	b    *Broker
	conn *websocket.Conn
}

func (l localLink) write(b []byte) error { return l.conn.Write(ioCtx, websocket.MessageBinary, b) }
func (l localLink) local() bool          { return true }

func (l localLink) end(err error) {
	var le *linkError
	if !errors.As(err, &le) {
		l.conn.CloseNow()
		return
	}
	// ServeLink still counts for this link, so Shutdown's Wait cannot
	// have returned: adding to the group is safe.
	l.b.wg.Add(1)
	go func() {
		defer l.b.wg.Done()
		writeLinkError(context.Background(), l.conn, le) // bounded by its own timeouts
	}()
}

// policy is what an instance said in Hello about whom it admits.
type policy struct {
	protocols []string
	origins   []string // canonical (scope.CanonicalOrigin), or "*"
}

// linkError ends a link with a protocol Error frame.
type linkError struct {
	code    uint64
	message string
}

func (e *linkError) Error() string { return e.message }

var errShutdown = &linkError{protocol.ErrCodeShutdown, "broker shutting down"}

func protoErr(format string, args ...any) error {
	return &linkError{protocol.ErrCodeProtocol, fmt.Sprintf(format, args...)}
}

// helloTimeout bounds the wait for a service's Hello.
const helloTimeout = 10 * time.Second

// ServeLink runs a service link on an accepted WebSocket connection until it
// ends. The transport has negotiated protocol.Subprotocol.
func (b *Broker) ServeLink(ctx context.Context, conn *websocket.Conn, remote netip.AddrPort) error {
	if !b.enter() {
		conn.Close(websocket.StatusGoingAway, "broker shutting down")
		return ErrClosed
	}
	defer b.wg.Done()
	conn.SetReadLimit(int64(protocol.MaxLinkMessage(uint64(b.cfg.Limits.MaxMessage))))

	inst, err := b.hello(ctx, conn, remote)
	if err != nil {
		var le *linkError
		if errors.As(err, &le) {
			writeLinkError(ctx, conn, le)
		} else {
			conn.Close(websocket.StatusProtocolError, "no hello")
		}
		b.log.Info("service link refused", "remote", remote.String(), "err", err)
		return fmt.Errorf("service link from %s: %w", remote, err)
	}
	b.m.instances.Inc()
	defer b.m.instances.Dec()
	stopTerms := inst.startTerms(inst.terms)

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); inst.writeLoop() }()
	go func() { defer wg.Done(); inst.pingLoop(conn) }()
	err = inst.readLoop(conn)
	inst.fail(err)
	stopTerms()
	wg.Wait()
	info := inst.info()
	inst.reg.detach(inst)
	b.mu.Lock()
	delete(b.links, inst.id)
	b.mu.Unlock()
	if c := b.cfg.Cluster; c != nil {
		c.InstanceDown(info)
	}
	b.log.Info("instance detached", "scope", inst.reg.scope.String(), "instance", inst.id, "reason", inst.err)
	return nil
}

func writeLinkError(ctx context.Context, conn *websocket.Conn, le *linkError) {
	f := protocol.Error{Code: le.code, Message: le.message}
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	_ = conn.Write(wctx, websocket.MessageBinary, f.Append(nil))
	cancel()
	code := websocket.StatusProtocolError
	switch le.code {
	case protocol.ErrCodeUnauthorized, protocol.ErrCodeScope:
		code = websocket.StatusPolicyViolation
	case protocol.ErrCodeLimit:
		code = websocket.StatusMessageTooBig
	case protocol.ErrCodeShutdown:
		code = websocket.StatusGoingAway
	case protocol.ErrCodeInternal:
		code = websocket.StatusInternalError
	}
	reason := le.message
	if len(reason) > 120 {
		reason = reason[:120]
	}
	conn.Close(code, reason)
}

// hello reads and checks Hello, attaches the instance and sends Welcome.
func (b *Broker) hello(ctx context.Context, conn *websocket.Conn, remote netip.AddrPort) (*Instance, error) {
	hctx, cancel := context.WithTimeout(ctx, helloTimeout)
	typ, msg, err := conn.Read(hctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("read hello: %w", err)
	}
	if typ != websocket.MessageBinary {
		return nil, protoErr("link messages must be binary")
	}
	ft, body, _, err := protocol.Next(msg)
	if err != nil || ft != protocol.TypeHello {
		return nil, protoErr("first frame must be hello")
	}
	var h protocol.Hello
	if err := h.Decode(body); err != nil {
		return nil, protoErr("%v", err)
	}
	if h.Version != protocol.Version {
		return nil, &linkError{protocol.ErrCodeVersion, fmt.Sprintf("protocol version %d not supported; this broker speaks %d", h.Version, protocol.Version)}
	}
	origins, err := canonicalOrigins(h.Origins)
	if err != nil {
		return nil, protoErr("hello: %v", err)
	}
	private := h.Flags&protocol.HelloPrivate != 0
	sc, err := scope.Parse(h.Scope, false)
	if private && err == nil {
		// A fresh private scope under the path the service gave ("/" for
		// most): "/~TOKEN/" or "/pages/~TOKEN/".
		sc, err = scope.Scope{Path: sc.Path + "~" + randomToken(10) + "/"}, nil
	}
	if err != nil {
		return nil, &linkError{protocol.ErrCodeScope, err.Error()}
	}
	if b.cfg.Authorize == nil {
		return nil, &linkError{protocol.ErrCodeUnauthorized, "this broker admits no services (no credentials configured)"}
	}
	terms := &Terms{}
	owner, err := b.cfg.Authorize(ctx, AuthRequest{Credential: h.Credential, Scope: sc, Remote: remote,
		Origin: linkOrigin(ctx), Private: private, Terms: terms})
	if err != nil {
		return nil, &linkError{protocol.ErrCodeUnauthorized, err.Error()}
	}
	attached := false
	defer func() {
		if !attached && terms.Release != nil {
			terms.Release()
		}
	}()
	window := int(h.Window)
	if window <= 0 || window > b.cfg.Limits.ChannelBuffer {
		window = b.cfg.Limits.Window
	}
	base := h.Scope // the scope URL clients reach, before PublicURL rewrites it
	if private {
		base = sc.Path
		if u, err := url.Parse(h.Scope); err == nil && u.Host != "" {
			u.Path, _ = url.PathUnescape(sc.Path)
			u.RawPath, u.RawQuery = sc.Path, ""
			base = u.String()
		}
	}
	inst := &Instance{
		urlBase: base, urlUpdates: h.Flags&protocol.HelloURLUpdates != 0,
		b: b, link: localLink{b, conn}, node: b.cfg.NodeNum, id: b.newID(), label: h.Label, remote: remote.String(), since: b.cfg.Now(), order: b.nextOrder(),
		window: window, policy: policy{protocols: h.Protocols, origins: origins},
		terms: terms, maxChannels: terms.MaxChannels, hold: b.holdOf(h.Hold),
		done: make(chan struct{}), wake: make(chan struct{}, 1), pending: make(map[uint64]*pendingConnect),
	}

	public := base
	if b.cfg.PublicURL != nil {
		public = b.cfg.PublicURL(public)
	}

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, errShutdown
	}
	reg := b.reg.get(sc)
	if reg == nil {
		reg = &Registration{b: b, scope: sc, owner: owner}
		b.reg.put(sc, reg)
		b.log.Info("registration created", "scope", sc.String(), "owner", owner)
	}
	if reg.owner != owner {
		b.mu.Unlock()
		return nil, &linkError{protocol.ErrCodeScope, fmt.Sprintf("scope %s is owned by another credential", sc)}
	}
	inst.reg = reg
	// Welcome is queued as attach puts the instance in the registration:
	// from then on it can be made active (the active one detaching, which
	// takes the registration's lock, not b.mu) and handed State, Open and
	// Data frames, which must follow it on the link.
	reg.attach(inst, h.Flags&protocol.HelloStandby != 0, func() {
		inst.sendFrame(&protocol.Welcome{Version: protocol.Version, Instance: inst.id, Scope: sc.String(),
			PublicURL: public, Active: !inst.standby, Window: uint64(b.cfg.Limits.Window), MaxMessage: uint64(b.cfg.Limits.MaxMessage)})
	})
	b.links[inst.id] = inst
	b.mu.Unlock()

	attached = true
	// From here PublicURLChanged may tell it a new URL (never before
	// Welcome); one that changed meanwhile is told now.
	inst.sentURL.Store(&public)
	if inst.urlUpdates && b.cfg.PublicURL != nil {
		if now := b.cfg.PublicURL(base); now != public {
			inst.sentURL.Store(&now)
			inst.sendFrame(&protocol.URL{PublicURL: now})
		}
	}
	if inst.standby {
		// Two copies of one service (two supervisors, a restart script run
		// twice): the second waits instead of the two taking the scope from
		// each other forever.
		b.log.Warn("instance attached as a standby: an instance with the same label is active (a duplicate? a different label, or the service's takeover option, replaces it)",
			"scope", sc.String(), "instance", inst.id, "label", h.Label, "remote", inst.remote, "active", inst.standbyFor)
	} else {
		b.log.Info("instance attached", "scope", sc.String(), "instance", inst.id, "label", h.Label, "remote", inst.remote)
		reg.activate(inst)
	}
	if c := b.cfg.Cluster; c != nil {
		c.InstanceUp(inst.info())
	}
	return inst, nil
}

// fail ends the link once: marks the instance dead and closes the
// connection, with an Error frame when err is a linkError.
func (inst *Instance) fail(err error) {
	inst.once.Do(func() {
		inst.err = err
		inst.dead.Store(true)
		close(inst.done)
		var le *linkError
		if errors.As(err, &le) && le != errShutdown {
			inst.b.m.linkErrors.WithLabelValues(errReason(le.code)).Inc()
		}
		inst.link.end(err)
	})
}

func errReason(code uint64) string {
	switch code {
	case protocol.ErrCodeProtocol:
		return "protocol"
	case protocol.ErrCodeLimit:
		return "limit"
	}
	return "other"
}

// sendFrame queues a frame other than Data. Control frames (Connect, Open,
// State, Clients, Welcome) go ahead of queued data, so that connect requests
// are not stuck behind megabytes of messages; a Close stays behind the data
// of its channel.
func (inst *Instance) sendFrame(f interface{ Append([]byte) []byte }) {
	_, inOrder := f.(*protocol.Close)
	inst.enqueue(!inOrder, f.Append)
}

func (inst *Instance) sendData(ch, seq uint64, flags byte, p []byte) {
	inst.enqueue(false, func(b []byte) []byte { return protocol.AppendData(b, ch, seq, flags, p) })
}

func (inst *Instance) sendCredit(ch uint64, n int) {
	inst.enqueue(true, func(b []byte) []byte { return protocol.AppendCredit(b, ch, uint64(n)) })
}

func (inst *Instance) sendState(active bool) { inst.sendFrame(&protocol.State{Active: active}) }

// enqueue appends frames to the writer's queue through add (ctrl: the
// control queue, written ahead of data) and wakes the writer. A service
// that lets its queue grow past LinkBuffer is not reading: its link is cut.
func (inst *Instance) enqueue(ctrl bool, add func([]byte) []byte) {
	inst.outMu.Lock()
	if ctrl {
		inst.ctrl = add(inst.ctrl)
	} else {
		inst.out = add(inst.out)
	}
	over := len(inst.out)+len(inst.ctrl) > inst.b.cfg.Limits.LinkBuffer
	inst.outMu.Unlock()
	if over {
		go inst.fail(&linkError{protocol.ErrCodeLimit, "service does not read its link"})
		return
	}
	select {
	case inst.wake <- struct{}{}:
	default:
	}
}

// writeLoop is the link's only writer: it takes everything queued and
// writes the control frames, then the data, cut into link messages of at
// most protocol.MaxLinkMessage bytes (the link contract of PROTOCOL.md).
func (inst *Instance) writeLoop() {
	limit := protocol.MaxLinkMessage(uint64(inst.b.cfg.Limits.MaxMessage))
	for {
		select {
		case <-inst.wake:
		case <-inst.done:
			return
		}
		// Let the goroutines that are about to queue frames (other
		// clients' readers woken in the same poll) do so first: under
		// load this turns many small link writes into one.
		runtime.Gosched()
		inst.outMu.Lock()
		ctrl, buf := inst.ctrl, inst.out
		inst.ctrl, inst.out = inst.ctrlSpare[:0], inst.spare[:0]
		inst.ctrlSpare, inst.spare = nil, nil
		inst.outMu.Unlock()
		for _, b := range [2][]byte{ctrl, buf} {
			if err := inst.writeBatches(b, limit); err != nil {
				inst.fail(fmt.Errorf("write to service: %w", err))
				return
			}
		}
		inst.outMu.Lock()
		inst.ctrlSpare, inst.spare = keep(ctrl), keep(buf)
		inst.outMu.Unlock()
	}
}

// writeBatches writes b as link messages of whole frames, each at most
// limit bytes.
func (inst *Instance) writeBatches(b []byte, limit int) error {
	for len(b) > 0 {
		n, err := protocol.CutBatch(b, limit)
		if err != nil {
			return err // cannot happen: the broker encoded these frames
		}
		if err := inst.write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// write sends one batch down the link (or, for a proxy, to its node).
func (inst *Instance) write(b []byte) error { return inst.link.write(b) }

// keep returns b emptied for reuse, or nil for an oversize buffer.
func keep(b []byte) []byte {
	if cap(b) > 1<<20 {
		return nil
	}
	return b[:0]
}

// Link keepalive.
const (
	linkPingInterval = 15 * time.Second
	linkPingTimeout  = 30 * time.Second
)

func (inst *Instance) pingLoop(conn *websocket.Conn) {
	t := time.NewTicker(linkPingInterval)
	defer t.Stop()
	for {
		select {
		case <-inst.done:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(inst.b.ctx, linkPingTimeout)
		err := conn.Ping(ctx)
		cancel()
		if err != nil {
			inst.fail(fmt.Errorf("service link keepalive: %w", err))
			return
		}
	}
}

// readLoop reads link messages and dispatches their frames until the link
// fails. The read buffer is reused for every message.
func (inst *Instance) readLoop(conn *websocket.Conn) error {
	buf := bufpool.Get(64 << 10)
	defer func() { bufpool.Put(buf) }()
	var fwd forwarder
	for {
		typ, r, err := conn.Reader(ioCtx)
		if err != nil {
			return fmt.Errorf("read from service: %w", err)
		}
		if typ != websocket.MessageBinary {
			return protoErr("link messages must be binary")
		}
		*buf = (*buf)[:0]
		buf, err = bufpool.ReadAll(r, buf)
		if err != nil {
			return fmt.Errorf("read from service: %w", err)
		}
		msg := *buf
		for len(msg) > 0 {
			ft, body, rest, err := protocol.Next(msg)
			if err != nil {
				return protoErr("%v", err)
			}
			raw := msg[:len(msg)-len(rest)]
			msg = rest
			if ch, ok := channelOf(ft, body); ok && NodeOf(ch) != inst.b.cfg.NodeNum && inst.b.cfg.Cluster != nil {
				fwd.add(NodeOf(ch), raw)
				inst.noteRemote(ft, body, ch)
				continue
			}
			if err := inst.dispatch(ft, body, raw); err != nil {
				return err
			}
		}
		fwd.flush(inst)
		if cap(*buf) > 4<<20 { // oversize, not pooled: do not keep it
			buf = bufpool.Get(64 << 10)
		}
	}
}

// forwarder batches, per node, the frames of one link message that belong
// to channels of other nodes.
type forwarder struct {
	nodes []uint64
	bufs  [][]byte
}

func (f *forwarder) add(node uint64, frame []byte) {
	for i, n := range f.nodes {
		if n == node {
			f.bufs[i] = append(f.bufs[i], frame...)
			return
		}
	}
	f.nodes = append(f.nodes, node)
	f.bufs = append(f.bufs, append([]byte(nil), frame...))
}

func (f *forwarder) flush(inst *Instance) {
	for i, n := range f.nodes {
		if len(f.bufs[i]) > 0 {
			inst.b.cfg.Cluster.FromInstance(n, inst.id, f.bufs[i])
			f.bufs[i] = f.bufs[i][:0]
		}
	}
}

// noteRemote keeps the list of remote channels current from the answers
// and closes the instance sends them.
func (inst *Instance) noteRemote(ft protocol.Type, body []byte, ch uint64) {
	switch ft {
	case protocol.TypeAccept:
		var f protocol.Accept
		if f.Decode(body) == nil {
			inst.remoteChans.answered(ch, f.Protocol, true)
		}
	case protocol.TypeRespond, protocol.TypeReject:
		inst.remoteChans.answered(ch, "", false)
	case protocol.TypeClose:
		inst.remoteChans.closed(ch)
	}
}

// dispatch handles one frame; raw is the whole frame as received.
func (inst *Instance) dispatch(ft protocol.Type, body, raw []byte) error {
	switch ft {
	case protocol.TypeData:
		var f protocol.Data
		if err := f.Decode(body); err != nil {
			return protoErr("%v", err)
		}
		return inst.onData(&f)
	case protocol.TypeAck:
		var f protocol.Ack
		if err := f.Decode(body); err != nil {
			return protoErr("%v", err)
		}
		if ch := inst.reg.channel(f.Channel); ch != nil {
			ch.ack(inst, f.Seq)
		}
		return nil
	case protocol.TypeClose:
		var f protocol.Close
		if err := f.Decode(body); err != nil {
			return protoErr("%v", err)
		}
		if ch := inst.reg.channel(f.Channel); ch != nil {
			ch.serviceClose(f.Code, f.Reason)
		}
		return nil
	case protocol.TypeAccept, protocol.TypeRespond, protocol.TypeReject:
		return inst.onAnswer(ft, body)
	case protocol.TypePush:
		var f protocol.Push
		if err := f.Decode(body); err != nil {
			return protoErr("%v", err)
		}
		return inst.onPush(&f, raw)
	case protocol.TypeList:
		var f protocol.List
		if err := f.Decode(body); err != nil {
			return protoErr("%v", err)
		}
		inst.onList(f.Request)
		return nil
	case protocol.TypeHello:
		return protoErr("hello sent twice")
	}
	return protoErr("unexpected %s frame from a service", ft)
}

func (inst *Instance) onData(f *protocol.Data) error {
	if len(f.Payload) > inst.b.cfg.Limits.MaxMessage {
		return &linkError{protocol.ErrCodeLimit, fmt.Sprintf("message of %d bytes exceeds the limit of %d", len(f.Payload), inst.b.cfg.Limits.MaxMessage)}
	}
	ch := inst.reg.channel(f.Channel)
	if ch == nil {
		return nil // closed a moment ago: the two sides race
	}
	return ch.toClient(f.Flags, f.Payload, false)
}

func (inst *Instance) onPush(f *protocol.Push, raw []byte) error {
	if len(f.Payload) > inst.b.cfg.Limits.MaxMessage {
		return &linkError{protocol.ErrCodeLimit, "push message exceeds the limit"}
	}
	inst.reg.pushLocal(f)
	if c := inst.b.cfg.Cluster; c != nil && inst.link.local() {
		c.Push(inst.reg.scope, raw)
	}
	return nil
}

// pushLocal sends a push to this node's channels of the registration
// whose request path starts with the push's prefix, both compared in the
// canonical form routing used (the channel keeps its path).
func (reg *Registration) pushLocal(f *protocol.Push) {
	prefix := f.Prefix
	if p, err := scope.CanonicalPath(prefix); err == nil {
		if strings.HasSuffix(prefix, "/") && !strings.HasSuffix(p, "/") {
			p += "/"
		}
		prefix = p
	}
	reg.each(func(ch *Channel) {
		if strings.HasPrefix(ch.path, prefix) {
			_ = ch.toClient(f.Flags, f.Payload, true)
		}
	})
}

func (inst *Instance) onList(req uint64) {
	st := inst.reg.status()
	f := protocol.Clients{Request: req}
	for _, c := range st.Channels {
		f.Clients = append(f.Clients, protocol.ChannelInfo{Channel: c.ID, Origin: c.Origin, Target: c.Target,
			Protocol: c.Protocol, App: c.App, Remote: c.Remote, Since: uint64(c.Since.UnixMilli())})
	}
	f.Clients = append(f.Clients, inst.remoteChans.list()...)
	inst.sendFrame(&f)
}
