package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/sdk"
)

// toMode forwards each client to a local WebSocket server: the client's
// path after the scope is appended to base, its subprotocols are offered,
// and the client is accepted only if that dial succeeds.
type toMode struct {
	base string
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
	c, _, err := websocket.Dial(dctx, u, &websocket.DialOptions{Subprotocols: offered})
	if err != nil {
		return nil, "", fmt.Errorf("dial %s: %w", u, err)
	}
	c.SetReadLimit(64 << 20)
	lctx, lcancel := context.WithCancel(context.Background())
	return &toLocal{c: c, ctx: lctx, cancel: lcancel}, c.Subprotocol(), nil
}

func (m *toMode) resume(*sdk.Request) local { return nil }

// forwardURL is base with the target's path after scope (and its query)
// appended.
func forwardURL(base, scope, target string) (string, error) {
	t, err := url.Parse(target)
	if err != nil {
		return "", fmt.Errorf("target %q: %w", target, err)
	}
	if i := strings.IndexByte(scope, '/'); i > 0 {
		scope = scope[i:] // host-matched scope: "host/path/"
	}
	rest := strings.TrimPrefix(t.Path, scope)
	if rest == t.Path { // the scope without its final "/"
		rest = ""
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("--to %q: %w", base, err)
	}
	b.Path = strings.TrimSuffix(b.Path, "/") + "/" + rest
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

func (t *toLocal) clientClosed(code websocket.StatusCode, reason string) {
	t.c.Close(sendable(code), reason)
	t.cancel()
}

func (t *toLocal) stop() {
	t.cancel()
	t.c.CloseNow()
}
