package sdk_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/daemon"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/sdk"
)

// testBroker is a real in-process broker on a loopback port.
type testBroker struct {
	t   *testing.T
	b   *broker.Broker
	url string // ws://127.0.0.1:PORT
	log *slog.Logger
}

// secret is the credential testBroker accepts; "" is refused.
const secret = "test-secret"

func startBroker(t *testing.T, limits broker.Limits) *testBroker {
	t.Helper()
	log := testutil.TestLogger(t)
	b, ws := testutil.StartBroker(t, daemon.Settings{Limits: limits, Dev: true}, daemon.Options{
		Logger: log,
		Authorize: func(_ context.Context, req broker.AuthRequest) (string, error) {
			if req.Credential != secret {
				return "", errors.New("scope " + req.Scope.String() + " needs a credential that owns it")
			}
			return "tester", nil
		},
	})
	return &testBroker{t: t, b: b, url: ws, log: log}
}

// listen attaches a listener to scope (a path such as "/echo/") and closes
// it at the end of the test.
func (tb *testBroker) listen(scope string, opts *sdk.ListenOptions) *sdk.Listener {
	tb.t.Helper()
	if opts == nil {
		opts = &sdk.ListenOptions{}
	}
	if opts.Credential == "" {
		opts.Credential = secret
	}
	opts.Logger = tb.log
	// These tests hand channels over from one listener to a newer one of
	// the same label: a deliberate takeover (TestServiceSameLabelStandsBy
	// covers the default, a standby).
	opts.Takeover = true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := sdk.Listen(ctx, tb.url+scope, opts)
	if err != nil {
		tb.t.Fatalf("listen %s: %v", scope, err)
	}
	tb.t.Cleanup(func() { l.Close() })
	return l
}

// dial connects a plain WebSocket client.
func (tb *testBroker) dial(path string, protocols ...string) *websocket.Conn {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, tb.url+path, &websocket.DialOptions{Subprotocols: protocols})
	if err != nil {
		tb.t.Fatalf("dial %s: %v", path, err)
	}
	tb.t.Cleanup(func() { c.CloseNow() })
	return c
}

// serve runs handler for every request of l until l ends; errors go to the
// returned channel. The goroutine stops when the listener is closed.
func serve(t *testing.T, l *sdk.Listener, handler func(*sdk.Request) error) <-chan error {
	errc := make(chan error, 16)
	done := make(chan struct{})
	t.Cleanup(func() { l.Close(); <-done })
	go func() {
		defer close(done)
		for {
			r, err := l.Accept(context.Background())
			if err != nil {
				return
			}
			go func() {
				if err := handler(r); err != nil {
					select {
					case errc <- err:
					default:
					}
				}
			}()
		}
	}()
	return errc
}

// echo accepts r (choosing the first offered protocol) and echoes until the
// channel ends.
func echo(r *sdk.Request) error {
	proto := ""
	if len(r.Protocols) > 0 {
		proto = r.Protocols[0]
	}
	ctx := context.Background()
	ch, err := r.Accept(ctx, proto, nil)
	if err != nil {
		return err
	}
	for {
		typ, p, err := ch.Read(ctx)
		if err != nil {
			return nil
		}
		if err := ch.Write(ctx, typ, p); err != nil {
			return nil
		}
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustWrite(t *testing.T, c *websocket.Conn, typ websocket.MessageType, s string) {
	t.Helper()
	if err := c.Write(ctxT(t), typ, []byte(s)); err != nil {
		t.Fatalf("client write: %v", err)
	}
}

func mustRead(t *testing.T, c *websocket.Conn, wantType websocket.MessageType, want string) {
	t.Helper()
	typ, p, err := c.Read(ctxT(t))
	if err != nil {
		t.Fatalf("client read: %v", err)
	}
	if typ != wantType || string(p) != want {
		t.Fatalf("client read %v %q, want %v %q", typ, p, wantType, want)
	}
}

// connect dials path while l accepts the connect request; it returns the
// client connection and the service's channel.
func (tb *testBroker) connect(l *sdk.Listener, path string) (*websocket.Conn, *sdk.Channel, *sdk.Request) {
	tb.t.Helper()
	type result struct {
		c   *websocket.Conn
		err error
	}
	res := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, tb.url+path, nil)
		res <- result{c, err}
	}()
	ctx := ctxT(tb.t)
	r, err := l.Accept(ctx)
	if err != nil {
		tb.t.Fatalf("accept %s: %v", path, err)
	}
	ch, err := r.Accept(ctx, "", nil)
	if err != nil {
		tb.t.Fatalf("accept %s: %v", path, err)
	}
	got := <-res
	if got.err != nil {
		tb.t.Fatalf("dial %s: %v", path, got.err)
	}
	tb.t.Cleanup(func() { got.c.CloseNow() })
	return got.c, ch, r
}
