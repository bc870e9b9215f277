package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/switchboard-dev/switchboard/scope"
	"github.com/switchboard-dev/switchboard/sdk"
)

// toMode forwards each client to a local WebSocket server, as a reverse
// proxy does: the client's path after the scope is appended to base, its
// subprotocols are offered, its Origin, Cookie and User-Agent are passed
// on with X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host and
// Forwarded (RFC 7239) added, and the client is accepted only if that dial
// succeeds. When it fails the client gets the uniform rejection, or a 502
// with badGateway (which tells the client that the service exists).
type toMode struct {
	base       string
	badGateway bool
	tlsConfig  *tls.Config // for a wss:// base: the system roots and listen's --ca-file; nil: the system roots
}

// errBackendDown marks a failed dial to the --to backend.
var errBackendDown = errors.New("backend unreachable")

// checkToURL checks the --to URL at startup: a ws:// or wss:// URL with a
// host.
func checkToURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("--to %q: %w", raw, err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return fmt.Errorf("--to %q: want a ws:// or wss:// URL", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("--to %q: no host", raw)
	}
	return nil
}

// probeBackend reports whether the --to backend accepts TCP connections,
// so that a backend that is down at startup is said at once (WARN), not
// at the first client.
func probeBackend(ctx context.Context, raw string) error {
	u, _ := url.Parse(raw)
	host := hostPort(u)
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(dctx, "tcp", host)
	if err != nil {
		return err
	}
	return c.Close()
}

// forwardedHeaders are the handshake headers for the backend: the
// client's Origin, Cookie and User-Agent, and where the client came from.
func forwardedHeaders(r *sdk.Request) http.Header {
	h := http.Header{}
	var host string
	var xff, fwd []string
	for _, x := range r.Headers {
		switch http.CanonicalHeaderKey(x.Name) {
		case "Origin", "Cookie", "User-Agent":
			h.Add(x.Name, x.Value)
		case "Host":
			host = x.Value
		case "X-Forwarded-For":
			xff = append(xff, x.Value)
		case "Forwarded":
			fwd = append(fwd, x.Value)
		}
	}
	proto := "http"
	if strings.HasPrefix(r.Target, "wss://") {
		proto = "https"
	}
	ip := r.Remote
	if ap, err := netip.ParseAddrPort(r.Remote); err == nil {
		ip = ap.Addr().Unmap().String()
	}
	h.Set("X-Forwarded-For", strings.Join(append(xff, ip), ", "))
	h.Set("X-Forwarded-Proto", proto)
	if host != "" {
		h.Set("X-Forwarded-Host", host)
	}
	node := ip
	if strings.Contains(ip, ":") { // RFC 7239 section 6: IPv6 quoted in brackets
		node = `"[` + ip + `]"`
	}
	el := "for=" + node + ";proto=" + proto
	if host != "" {
		el += ";host=" + quoteForwarded(host)
	}
	h.Set("Forwarded", strings.Join(append(fwd, el), ", "))
	return h
}

// quoteForwarded quotes a Forwarded value unless it is an RFC 7230 token.
func quoteForwarded(v string) string {
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", c)) {
			return strconv.Quote(v)
		}
	}
	return v
}

func (m *toMode) open(ctx context.Context, svc *service, r *sdk.Request) (local, string, error) {
	svc.mu.Lock()
	scope := svc.scope
	svc.mu.Unlock()
	u, err := forwardURL(m.base, scope, r.Target)
	if err != nil {
		return nil, "", err
	}
	var offered []string
	for _, p := range r.Protocols {
		if svc.chooseProtocol([]string{p}) != "" {
			offered = append(offered, p)
		}
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, proto, err := dialClient(dctx, u, offered, forwardedHeaders(r), m.tlsConfig)
	if err != nil {
		if answered(err) {
			return nil, "", fmt.Errorf("dial %s: %w", u, err)
		}
		// No HTTP answer: the backend is down (or not the server meant).
		return nil, "", fmt.Errorf("%w: dial %s: %v", errBackendDown, u, err)
	}
	return &toLocal{c: c}, proto, nil
}

// answered reports whether a failed dial got an HTTP answer from the
// backend: another status than 101, or a 101 that breaks the handshake's
// rules (the server is up, but refuses or is no WebSocket server).
func answered(err error) bool {
	var refused *refusedError
	if errors.As(err, &refused) {
		return true
	}
	for _, e := range []error{ws.ErrHandshakeBadProtocol, ws.ErrHandshakeBadUpgrade, ws.ErrHandshakeBadConnection,
		ws.ErrHandshakeBadSecAccept, ws.ErrHandshakeBadSubProtocol, ws.ErrHandshakeBadExtensions} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (m *toMode) resume(*sdk.Request) local { return nil }

// forwardURL is base with the target's path after scope (and its query)
// appended. The path is taken in canonical form (dot segments resolved,
// package scope) and must stay under base's path: "/pre/../../private",
// "%2e%2e" and an encoded slash or backslash ("..%2f", which a backend may
// decode and resolve) never reach the backend outside --to's base.
func forwardURL(base, sc, target string) (string, error) {
	t, err := url.Parse(target)
	if err != nil {
		return "", fmt.Errorf("target %q: %w", target, err)
	}
	if i := strings.IndexByte(sc, '/'); i > 0 {
		sc = sc[i:] // host-matched scope: "host/path/"
	}
	path, err := scope.CanonicalPath(t.EscapedPath())
	if err != nil {
		return "", fmt.Errorf("target %q: %w", target, err)
	}
	rest, ok := strings.CutPrefix(path, sc)
	if !ok {
		if path+"/" != sc { // not even the scope without its final "/"
			return "", fmt.Errorf("target %q is outside scope %s", target, sc)
		}
		rest = ""
	}
	if u := strings.ToUpper(rest); strings.Contains(u, "%2F") || strings.Contains(u, "%5C") || strings.Contains(rest, "\\") {
		return "", fmt.Errorf("target %q: an encoded / or \\ is not forwarded", target)
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("--to %q: %w", base, err)
	}
	basePath := strings.TrimSuffix(b.EscapedPath(), "/") + "/"
	joined, err := scope.CanonicalPath(basePath + rest)
	if err != nil || !strings.HasPrefix(joined, basePath) {
		return "", fmt.Errorf("target %q leaves --to's base path %s", target, basePath)
	}
	b.Path, err = url.PathUnescape(joined)
	if err != nil {
		return "", fmt.Errorf("target %q: %w", target, err)
	}
	b.RawPath = joined
	if t.RawQuery != "" {
		b.RawQuery = t.RawQuery
	}
	return b.String(), nil
}

// toLocal is the forwarded connection of one client, on clientConn: when
// the client closes, its close goes to the local server, and what the
// local server sends until its own close still reaches the client.
type toLocal struct {
	c       *clientConn
	discard atomic.Bool // the client's connection broke: nobody reads what the local server sends
	cut     atomic.Bool // the local server did not answer our close within closeWait: c was closed
	stopped atomic.Bool // stop closed c

	mu      sync.Mutex
	stopCut func() bool // cancels the cut after closeWait; guarded by mu
}

func (t *toLocal) deliver(_ context.Context, _ *sdk.Channel, typ websocket.MessageType, p []byte) error {
	if err := t.c.write(ws.OpCode(typ), p); err != nil { // MessageText and MessageBinary are RFC 6455's opcodes
		return fmt.Errorf("forward to local server: %w", err)
	}
	return nil
}

// run relays the local server's messages to the client until the local
// server's close (which it relays, or which answers the client's close),
// or until the connection ends otherwise.
func (t *toLocal) run(_ context.Context, s *session) {
	defer func() {
		t.c.conn.Close()
		t.mu.Lock()
		if t.stopCut != nil {
			t.stopCut()
		}
		t.mu.Unlock()
	}()
	for {
		op, p, err := t.c.read()
		if err != nil {
			t.ended(s, err)
			return
		}
		if t.discard.Load() {
			continue
		}
		if err := s.send(websocket.MessageType(op), p); err != nil {
			if errors.Is(err, sdk.ErrTooBig) {
				s.svc.log.Warn("--to backend sent a message over the broker's limit", "channel", s.id, "size", len(p))
				t.c.sendClose(ws.StatusMessageTooBig, "message too big")
				s.finish(websocket.StatusMessageTooBig, "message too big")
				return
			}
			// The channel ended (or the session was stopped): nobody reads on.
			s.remove()
			return
		}
	}
}

// ended closes the channel as the local connection's end says: the local
// server's close code and reason (1000 for a close without a code; after
// the client's close, finish answers it), or 1011 when it broke.
func (t *toLocal) ended(s *session, err error) {
	var ce websocket.CloseError
	switch {
	case errors.As(err, &ce):
		code := ce.Code
		if code == websocket.StatusNoStatusRcvd {
			code = websocket.StatusNormalClosure
		}
		s.finish(code, ce.Reason)
	case t.c.closeSent.Load() && (t.cut.Load() || t.stopped.Load()):
		// Cut after closeWait (by clientClosed's timer or the session's), or
		// listen is stopping.
		s.svc.log.Warn("--to backend did not answer the client's close; connection closed", "channel", s.id, "wait", closeWait)
		s.finish(websocket.StatusNormalClosure, "") // the answer echoes the client's close
	case errors.Is(err, wsutil.ErrMessageTooLarge):
		s.svc.log.Warn("--to backend sent a message over the limit", "channel", s.id, "limit", maxRead)
		t.c.sendClose(ws.StatusMessageTooBig, "message too big")
		s.finish(websocket.StatusInternalError, "local server message too big")
	default:
		s.svc.log.Warn("--to backend connection lost", "channel", s.id, "err", err)
		s.finish(websocket.StatusInternalError, "local server connection lost")
	}
}

// clientClosed sends the client's close to the local server; run relays
// what the local server sends until its own close, which finish turns
// into the answer to the client's close. A local server that does not
// close within closeWait is cut. When the client's connection broke, what
// comes meanwhile is dropped.
func (t *toLocal) clientClosed(_ *session, code websocket.StatusCode, reason string) {
	if code == websocket.StatusAbnormalClosure {
		t.discard.Store(true)
	}
	if t.c.sendClose(ws.StatusCode(sendable(code)), reason) != nil {
		t.c.conn.Close() // run ends with the connection lost
		return
	}
	t.mu.Lock()
	t.stopCut = t.c.cutAfter(closeWait, &t.cut)
	t.mu.Unlock()
}

func (t *toLocal) stop() {
	t.stopped.Store(true)
	t.c.conn.Close()
}
