package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/protocol"
)

// ListenOptions configures a Listener. The zero value (or nil) is a listener
// that accepts any origin and requires no subprotocol.
type ListenOptions struct {
	// Protocols are the subprotocols the service accepts, in its order of
	// preference. The broker rejects clients that offer subprotocols none of
	// which is listed. Empty: no subprotocol is required.
	Protocols []string
	// Origins are the admitted client origins (scheme://host[:port], or
	// "*"), compared in canonical form: "https://Example.com:443" admits
	// pages of https://example.com. Empty: any origin.
	Origins []string
	// Version is this instance's version label (e.g. "v2"), shown by the
	// broker's status. An instance with another label takes over the
	// scope from the active one (which drains and detaches: a deployment).
	// One with the same label (two copies started by accident) waits as a
	// standby instead (Listener.Active is false, the broker and the SDK log
	// it at WARN) and becomes active when the active one goes away, unless
	// Takeover is set.
	Version string
	// Takeover makes this instance take over the scope even from an active
	// instance with the same Version (a deliberate replacement without a
	// new label). By default such an instance waits as a standby.
	Takeover bool
	// Credential is the secret that owns the scope. A broker run with --dev
	// admits loopback services without one.
	Credential string
	// Grant is a listen grant (a JWT a site's backend minted with a key the
	// broker's config lists; see docs/BROWSER.md), sent instead of
	// Credential when set. A grant expires: the broker then ends the link
	// with a LinkError saying so, and a listener that goes on attaches
	// again with a fresh grant.
	Grant string
	// Hold asks the broker to hold new clients' connects while this
	// registration has no active instance (this process restarting), up
	// to Hold (the broker caps it at its accept timeout), so that a
	// restart refuses no new client. Zero: refused at once. A held connect
	// shows that the registration exists (docs/SECURITY.md): it is the
	// service's choice.
	Hold time.Duration
	// Window is how many bytes of unacknowledged client messages this
	// listener holds per channel. 0: the broker's default.
	Window int
	// Private asks the broker for a fresh private scope; the scope URL then
	// names only the broker (e.g. ws://127.0.0.1:8080/) and URL says where
	// clients connect.
	Private bool
	// MaxPending bounds the connect requests waiting for Accept; a request
	// beyond it is rejected at once (Stats.Overflow). 0: 1024, the broker's
	// own bound.
	MaxPending int
	// RequestTimeout is how long the broker waits for an answer to a
	// connect request (the broker's accept_timeout). Accept drops requests
	// older than that unanswered (Stats.Expired): the broker has rejected
	// them already. 0: 10 s, the broker's default.
	RequestTimeout time.Duration
	// Logger receives the listener's logs. nil: discard.
	Logger *slog.Logger
	// Dial configures the WebSocket dial of the link (TLS configuration
	// through its HTTPClient, extra headers). nil: defaults. Its
	// Subprotocols are replaced by the link's.
	Dial *websocket.DialOptions
}

// Listener is one attached instance of a service: a link to the broker that
// receives connect requests and the messages of the channels it serves. All
// methods are safe for concurrent use.
type Listener struct {
	conn    *websocket.Conn
	log     *slog.Logger
	welcome protocol.Welcome // static after Listen
	window  int              // static: receive window asked for (upper bound of a channel's queue)
	// linkLimit is the largest link message either side writes
	// (protocol.MaxLinkMessage of Welcome.MaxMessage); static after Listen.
	linkLimit int

	ctx    context.Context // ends when the link ends
	cancel context.CancelFunc
	wg     sync.WaitGroup // reader and writer
	done   chan struct{}  // closed when the link ended
	err    error          // why; written before done is closed
	failMu sync.Mutex

	stop       chan struct{} // closed by Close: the writer flushes and exits
	writerDone chan struct{} // closed when the writer returned
	closing    atomic.Bool   // Close was called: the link ending is ErrClosed
	closeOnce  sync.Once

	outMu sync.Mutex
	out   []byte            // frames waiting for the writer; guarded by outMu
	ctrl  []byte            // answers written ahead of out; guarded by outMu
	acks  map[uint64]uint64 // channel → highest seq to acknowledge, written after out; guarded by outMu
	room  chan struct{}     // closed when the writer takes out; guarded by outMu
	wake  chan struct{}     // cap 1: out has frames

	mu       sync.Mutex
	active   bool                         // guarded by mu
	changed  chan struct{}                // closed when active changes; guarded by mu
	url      string                       // the public URL (Welcome, then URL frames); guarded by mu
	urlCh    chan struct{}                // closed when url changes; guarded by mu
	channels map[uint64]*Channel          // guarded by mu
	requests []*Request                   // connect requests not yet taken by Accept; guarded by mu
	reqWake  chan struct{}                // cap 1: requests is not empty
	lists    map[uint64]chan []ClientInfo // pending List requests; guarded by mu
	nextList uint64                       // guarded by mu
	pending  int                          // new requests (not Resumed) in requests; guarded by mu

	maxPending int           // static
	reqTimeout time.Duration // static

	nRequests, nExpired, nOverflow, nRefused atomic.Uint64 // Stats
	idle                                     chan struct{} // closed when a channel's acks catch up; guarded by mu
}

// outLimit bounds the bytes queued for the writer by Write and Push; control
// frames (Ack, Accept, Close, ...) are never held back by it.
const outLimit = 1 << 20

// defaultWindow is the broker's default receive window (PROTOCOL.md), used
// to bound a channel's queue when the listener asked for the default.
const defaultWindow = 256 << 10

// Listen attaches a service instance to the broker for the scope scopeURL,
// e.g. ws://127.0.0.1:8080/echo/ (the path must start and end with "/").
// It dials ws(s)://HOST/.switchboard/v1/link, sends Hello and waits for the
// broker's Welcome. A refusal is returned as a *LinkError carrying the
// broker's reason. The listener lives until Close or until the link breaks
// (see Done); ctx bounds only the attach.
func Listen(ctx context.Context, scopeURL string, opts *ListenOptions) (*Listener, error) {
	if opts == nil {
		opts = &ListenOptions{}
	}
	linkURL, err := linkURLOf(scopeURL)
	if err != nil {
		return nil, err
	}
	var dopts websocket.DialOptions
	if opts.Dial != nil {
		dopts = *opts.Dial
	}
	if dopts.HTTPClient == nil {
		dopts.HTTPClient = linkHTTPClient()
	}
	dopts.Subprotocols = []string{protocol.Subprotocol}
	conn, _, err := websocket.Dial(ctx, linkURL, &dopts)
	if err != nil {
		return nil, fmt.Errorf("dial service link %s: %w", linkURL, err)
	}
	if conn.Subprotocol() != protocol.Subprotocol {
		conn.Close(websocket.StatusProtocolError, "subprotocol not negotiated")
		return nil, fmt.Errorf("dial service link %s: broker did not negotiate %s", linkURL, protocol.Subprotocol)
	}
	// Until Welcome says the broker's limit, the first message may be as
	// large as a frame can be.
	conn.SetReadLimit(protocol.MaxFrameBody + protocol.LinkOverhead)

	hello := protocol.Hello{
		Version: protocol.Version, Scope: scopeURL, Label: opts.Version, Credential: opts.Credential,
		Protocols: opts.Protocols, Origins: opts.Origins, Window: uint64(max(opts.Window, 0)),
	}
	if opts.Hold > 0 {
		hello.Hold = uint64(opts.Hold.Milliseconds())
	}
	if opts.Grant != "" {
		hello.Credential = opts.Grant // the broker tells a grant from a secret by its JWT form
	}
	if opts.Private {
		hello.Flags |= protocol.HelloPrivate
	}
	hello.Flags |= protocol.HelloURLUpdates // URL() follows the broker's public URL
	if !opts.Takeover {
		hello.Flags |= protocol.HelloStandby
	}
	if err := conn.Write(ctx, websocket.MessageBinary, hello.Append(nil)); err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("send hello: %w", err)
	}
	typ, msg, err := conn.Read(ctx)
	if err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("read welcome: %w", err)
	}
	if typ != websocket.MessageBinary {
		conn.Close(websocket.StatusProtocolError, "link messages must be binary")
		return nil, errors.New("read welcome: broker sent a text message")
	}
	ft, body, rest, err := protocol.Next(msg)
	if err != nil {
		conn.Close(websocket.StatusProtocolError, "malformed frame")
		return nil, fmt.Errorf("read welcome: %w", err)
	}
	l := &Listener{
		conn: conn, log: opts.Logger, window: opts.Window,
		done: make(chan struct{}), stop: make(chan struct{}), writerDone: make(chan struct{}),
		room: make(chan struct{}), wake: make(chan struct{}, 1),
		changed: make(chan struct{}), urlCh: make(chan struct{}), channels: make(map[uint64]*Channel),
		reqWake: make(chan struct{}, 1), lists: make(map[uint64]chan []ClientInfo),
		idle: make(chan struct{}), acks: make(map[uint64]uint64),
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.window <= 0 {
		l.window = defaultWindow
	}
	l.maxPending, l.reqTimeout = opts.MaxPending, opts.RequestTimeout
	if l.maxPending <= 0 {
		l.maxPending = defaultMaxPending
	}
	if l.reqTimeout <= 0 {
		l.reqTimeout = defaultRequestTimeout
	}
	switch ft {
	case protocol.TypeError:
		var e protocol.Error
		if err := e.Decode(body); err != nil {
			conn.CloseNow()
			return nil, fmt.Errorf("read welcome: %w", err)
		}
		conn.CloseNow()
		return nil, &LinkError{Code: e.Code, Message: e.Message}
	case protocol.TypeWelcome:
		if err := l.welcome.Decode(body); err != nil {
			conn.Close(websocket.StatusProtocolError, "malformed welcome")
			return nil, fmt.Errorf("read welcome: %w", err)
		}
	default:
		conn.Close(websocket.StatusProtocolError, "expected welcome")
		return nil, fmt.Errorf("read welcome: broker sent %s first", ft)
	}
	if l.welcome.Window == 0 {
		conn.Close(websocket.StatusProtocolError, "welcome with zero window")
		return nil, errors.New("read welcome: broker granted a zero window")
	}
	l.active = l.welcome.Active
	l.url = l.welcome.PublicURL
	l.linkLimit = protocol.MaxLinkMessage(l.welcome.MaxMessage)
	conn.SetReadLimit(int64(l.linkLimit))
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.log.Info("service link attached", "scope", l.welcome.Scope, "url", l.welcome.PublicURL,
		"instance", l.welcome.Instance, "active", l.welcome.Active)
	// Frames after Welcome in the same message (Open, ...) are handled as
	// any later frame.
	if err := l.handleMessage(rest); err != nil {
		l.protocolError(err)
		conn.CloseNow()
		l.cancel()
		return nil, err
	}
	l.wg.Add(2)
	go func() { defer l.wg.Done(); l.readLoop() }()
	go func() { defer l.wg.Done(); l.writeLoop() }()
	return l, nil
}

// linkURLOf turns a scope URL into the URL of the broker's link endpoint.
func linkURLOf(scopeURL string) (string, error) {
	u, err := url.Parse(scopeURL)
	if err != nil {
		return "", fmt.Errorf("scope URL %q: %w", scopeURL, err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("scope URL %q: scheme must be ws or wss", scopeURL)
	}
	if u.Host == "" {
		return "", fmt.Errorf("scope URL %q: no broker host", scopeURL)
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: protocol.LinkPath}).String(), nil
}

// URL is where clients connect: the broker's public URL for the scope. It
// changes when the broker's public address does (a port mapping made,
// lost or moved); URLChanged says when.
func (l *Listener) URL() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.url
}

// URLChanged returns a channel closed when URL next changes.
func (l *Listener) URLChanged() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.urlCh
}

// Scope is the scope as the broker registered it (e.g. "/echo/").
func (l *Listener) Scope() string { return l.welcome.Scope }

// Instance is the broker's id for this instance.
func (l *Listener) Instance() uint64 { return l.welcome.Instance }

// MaxMessage is the largest message the broker relays, in bytes.
func (l *Listener) MaxMessage() int { return int(l.welcome.MaxMessage) }

// Active reports whether this instance is the active one of its
// registration: only the active instance gets connect requests and client
// messages. A newer instance of the same scope takes over; the older one
// should finish what it holds and Close (see Drain).
func (l *Listener) Active() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.active
}

// ActiveChanged returns a channel that is closed the next time Active
// changes.
func (l *Listener) ActiveChanged() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// Done is closed when the link has ended (Close, broker gone, error).
func (l *Listener) Done() <-chan struct{} { return l.done }

// Err says why the link ended: ErrClosed after Close, a *LinkError when the
// broker sent an Error, or the transport error. It is nil while the link is
// up.
func (l *Listener) Err() error {
	select {
	case <-l.done:
		return l.err
	default:
		return nil
	}
}

// fail ends the link once, recording why.
func (l *Listener) fail(err error) {
	l.failMu.Lock()
	defer l.failMu.Unlock()
	select {
	case <-l.done:
		return
	default:
	}
	if l.closing.Load() {
		err = ErrClosed
	}
	l.err = err
	close(l.done)
	l.cancel()
	if !errors.Is(err, ErrClosed) {
		l.log.Warn("service link ended", "scope", l.welcome.Scope, "err", err)
	}
}

// Close detaches this instance: it writes the frames already queued (the
// acknowledgements above all), then closes the link. Open channels stay with
// the registration and go to the next instance. Close waits for the
// listener's goroutines.
func (l *Listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		select {
		case <-l.done: // the link ended already: nothing to flush or close
			l.conn.CloseNow()
			l.wg.Wait()
			return
		default:
		}
		l.closing.Store(true)
		close(l.stop) // the writer flushes what is queued and returns
		t := time.NewTimer(5 * time.Second)
		select {
		case <-l.writerDone:
		case <-l.done:
		case <-t.C:
		}
		t.Stop()
		err = l.conn.Close(websocket.StatusNormalClosure, "detach")
		l.fail(ErrClosed)
		l.wg.Wait()
	})
	if err != nil && websocket.CloseStatus(err) == -1 && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close service link: %w", err)
	}
	return nil
}

// Accept returns the next connect request, or a channel handed over to this
// instance (Request.Resumed). It fails when ctx ends or the link ends.
// Requests that waited past their deadline (ListenOptions.RequestTimeout)
// are skipped: the broker has rejected them already.
func (l *Listener) Accept(ctx context.Context) (*Request, error) {
	for {
		l.mu.Lock()
		if r := l.nextRequestLocked(time.Now()); r != nil {
			if len(l.requests) > 0 {
				signal(l.reqWake)
			}
			l.mu.Unlock()
			return r, nil
		}
		l.mu.Unlock()
		select {
		case <-l.reqWake:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-l.done:
			return nil, l.linkErr()
		}
	}
}

// linkErr is the error channel operations return once the link ended.
func (l *Listener) linkErr() error {
	if errors.Is(l.err, ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("%w: %w", ErrLinkClosed, l.err)
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// ClientInfo describes one open channel of the registration.
type ClientInfo struct {
	Channel  uint64    // channel id
	Origin   string    // the client's Origin header
	Target   string    // the URL the client connected to
	Protocol string    // the negotiated subprotocol
	App      string    // the verified app id of the client; empty if anonymous
	Remote   string    // the client's address
	Since    time.Time // when the client connected
}

func infoOf(ci *protocol.ChannelInfo) ClientInfo {
	return ClientInfo{Channel: ci.Channel, Origin: ci.Origin, Target: ci.Target, Protocol: ci.Protocol,
		App: ci.App, Remote: ci.Remote, Since: time.UnixMilli(int64(ci.Since))}
}

// Clients lists every open channel of the registration (those of other
// instances included).
func (l *Listener) Clients(ctx context.Context) ([]ClientInfo, error) {
	reply := make(chan []ClientInfo, 1)
	l.mu.Lock()
	l.nextList++
	id := l.nextList
	l.lists[id] = reply
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.lists, id)
		l.mu.Unlock()
	}()
	f := protocol.List{Request: id}
	if err := l.enqueueAnswer(f.Append(nil)); err != nil {
		return nil, err
	}
	select {
	case cs := <-reply:
		return cs, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.done:
		return nil, l.linkErr()
	}
}

// Send writes one message to the channel with the given id, which this
// listener serves. It waits for credit like Channel.Write.
func (l *Listener) Send(ctx context.Context, channel uint64, typ websocket.MessageType, p []byte) error {
	l.mu.Lock()
	c := l.channels[channel]
	l.mu.Unlock()
	if c == nil {
		return fmt.Errorf("send to channel %d: %w", channel, ErrUnknownChannel)
	}
	return c.Write(ctx, typ, p)
}

// Push sends one message to every open channel of the registration whose
// target URL path starts with prefix ("" for all). Push takes no credit: a
// client whose queue at the broker is full is closed with 1013.
func (l *Listener) Push(ctx context.Context, prefix string, typ websocket.MessageType, p []byte) error {
	if uint64(len(p)) > l.welcome.MaxMessage || len(prefix) > protocol.LinkOverhead/2 {
		return fmt.Errorf("push: %w (%d bytes, prefix %d bytes; the broker relays %d)", ErrTooBig, len(p), len(prefix), l.welcome.MaxMessage)
	}
	flags := flagsOf(typ)
	return l.enqueueFunc(ctx, func(b []byte) []byte { return protocol.AppendPush(b, flags, prefix, p) })
}

// Drain waits until every client message this instance received has been
// acknowledged, then closes the link: the graceful way for an instance that
// was superseded (Active turned false) to leave without duplicates.
func (l *Listener) Drain(ctx context.Context) error {
	for {
		l.mu.Lock()
		wait := l.idle
		chans := make([]*Channel, 0, len(l.channels))
		for _, c := range l.channels {
			chans = append(chans, c)
		}
		l.mu.Unlock()
		busy := false
		for _, c := range chans {
			if c.unacked() {
				busy = true
				break
			}
		}
		if !busy {
			return l.Close()
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return fmt.Errorf("drain: %w", ctx.Err())
		case <-l.done:
			return l.linkErr()
		}
	}
}

// acked is called by a channel after it queued an Ack; it wakes Drain.
func (l *Listener) acked() {
	l.mu.Lock()
	close(l.idle)
	l.idle = make(chan struct{})
	l.mu.Unlock()
}

func flagsOf(typ websocket.MessageType) byte {
	if typ == websocket.MessageBinary {
		return protocol.FlagBinary
	}
	return 0
}

func typeOf(flags byte) websocket.MessageType {
	if flags&protocol.FlagBinary != 0 {
		return websocket.MessageBinary
	}
	return websocket.MessageText
}
