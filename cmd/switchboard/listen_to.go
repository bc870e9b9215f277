package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

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
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "wss" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
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
	c, resp, err := websocket.Dial(dctx, u, &websocket.DialOptions{Subprotocols: offered, HTTPHeader: forwardedHeaders(r)})
	if err != nil {
		if resp == nil { // no HTTP answer: the backend is down, not refusing
			return nil, "", fmt.Errorf("%w: dial %s: %v", errBackendDown, u, err)
		}
		return nil, "", fmt.Errorf("dial %s: %s", u, resp.Status)
	}
	c.SetReadLimit(64 << 20)
	lctx, lcancel := context.WithCancel(context.Background())
	return &toLocal{c: c, ctx: lctx, cancel: lcancel}, c.Subprotocol(), nil
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

// toLocal is the forwarded connection of one client.
type toLocal struct {
	c      *websocket.Conn
	ctx    context.Context // the connection's life: cancelling it closes c
	cancel context.CancelFunc
}

func (t *toLocal) deliver(_ context.Context, _ *sdk.Channel, typ websocket.MessageType, p []byte) error {
	if err := t.c.Write(t.ctx, typ, p); err != nil {
		return fmt.Errorf("forward to local server: %w", err)
	}
	return nil
}

func (t *toLocal) run(_ context.Context, s *session) {
	defer t.cancel()
	for {
		typ, p, err := t.c.Read(t.ctx)
		if err != nil {
			var ce websocket.CloseError
			switch code := websocket.CloseStatus(err); {
			case code == -1:
				s.svc.log.Warn("--to backend connection lost", "channel", s.id, "err", err)
				s.finish(websocket.StatusInternalError, "local server connection lost")
			case code == websocket.StatusNoStatusRcvd:
				s.finish(websocket.StatusNormalClosure, "")
			default:
				reason := ""
				if errors.As(err, &ce) {
					reason = ce.Reason
				}
				s.finish(code, reason)
			}
			return
		}
		if err := s.send(typ, p); err != nil {
			t.c.CloseNow()
			return
		}
	}
}

// clientClosed closes the forwarded connection with the client's code;
// what the local server sends before its answer still goes to the client
// (run reads it), and run's finish then answers the client's close.
func (t *toLocal) clientClosed(_ *session, code websocket.StatusCode, reason string) {
	t.c.Close(sendable(code), reason)
	t.cancel()
}

func (t *toLocal) stop() {
	t.cancel()
	t.c.CloseNow()
}
