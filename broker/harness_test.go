package broker_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/daemon"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/protocol"
)

// env is a broker behind a real HTTP server on 127.0.0.1.
type env struct {
	t    testing.TB
	b    *broker.Broker
	ws   string      // ws://127.0.0.1:PORT (wss:// from newEnvTLS)
	addr string      // 127.0.0.1:PORT, for raw sockets
	tls  *tls.Config // newEnvTLS: trusts the broker's certificate
}

func newEnv(t testing.TB, limits broker.Limits) *env {
	t.Helper()
	return newEnvWith(t, daemon.Settings{Limits: limits})
}

// newEnvWith starts a broker with the given settings (the daemon's
// defaults fill in the rest).
func newEnvWith(t testing.TB, s daemon.Settings) *env {
	t.Helper()
	b, ws := testutil.StartBroker(t, s, daemon.Options{})
	return &env{t: t, b: b, ws: ws, addr: strings.TrimPrefix(ws, "ws://")}
}

// newEnvTLS is newEnv serving wss:// only: clients and service links
// run over TLS, the clients on the epoll loops as plain ones do.
func newEnvTLS(t testing.TB, limits broker.Limits) *env {
	t.Helper()
	b, wss, conf := testutil.StartBrokerTLS(t, daemon.Settings{Limits: limits}, daemon.Options{})
	return &env{t: t, b: b, ws: wss, addr: strings.TrimPrefix(wss, "wss://"), tls: conf}
}

// dialOptions returns opts (a copy; nil: empty) with the env's TLS roots.
func (e *env) dialOptions(opts *websocket.DialOptions) *websocket.DialOptions {
	o := websocket.DialOptions{}
	if opts != nil {
		o = *opts
	}
	if e.tls != nil && o.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = e.tls
		o.HTTPClient = &http.Client{Transport: tr}
	}
	return &o
}

// svc is a service written against the raw protocol, so these tests check
// the broker against PROTOCOL.md rather than against the SDK.
type svc struct {
	t       testing.TB
	conn    *websocket.Conn
	welcome protocol.Welcome
	frames  chan frame
	done    chan struct{}

	wmu sync.Mutex
}

type frame struct {
	typ protocol.Type
	v   any
}

func (e *env) attach(hello protocol.Hello) *svc {
	e.t.Helper()
	s, err := e.tryAttach(hello)
	if err != nil {
		e.t.Fatalf("attach %s: %v", hello.Scope, err)
	}
	return s
}

func (e *env) tryAttach(hello protocol.Hello) (*svc, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, e.ws+protocol.LinkPath, e.dialOptions(&websocket.DialOptions{Subprotocols: []string{protocol.Subprotocol}}))
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(8 << 20)
	if hello.Version == 0 {
		hello.Version = protocol.Version
	}
	if !strings.Contains(hello.Scope, "://") {
		hello.Scope = e.ws + hello.Scope
	}
	s := &svc{t: e.t, conn: conn, frames: make(chan frame, 10000), done: make(chan struct{})}
	if err := conn.Write(ctx, websocket.MessageBinary, hello.Append(nil)); err != nil {
		return nil, err
	}
	_, msg, err := conn.Read(ctx)
	if err != nil {
		return nil, err
	}
	typ, body, rest, err := protocol.Next(msg)
	if err != nil {
		return nil, err
	}
	if typ == protocol.TypeError {
		var f protocol.Error
		_ = f.Decode(body)
		conn.CloseNow()
		return nil, &linkErr{f}
	}
	if err := s.welcome.Decode(body); err != nil {
		return nil, err
	}
	s.dispatch(rest)
	go s.read()
	e.t.Cleanup(func() { s.conn.CloseNow() })
	return s, nil
}

type linkErr struct{ f protocol.Error }

func (e *linkErr) Error() string { return e.f.Message }

func (s *svc) read() {
	defer close(s.done)
	for {
		_, msg, err := s.conn.Read(context.Background())
		if err != nil {
			return
		}
		s.dispatch(msg)
	}
}

func (s *svc) dispatch(msg []byte) {
	for len(msg) > 0 {
		typ, body, rest, err := protocol.Next(msg)
		if err != nil {
			s.t.Errorf("bad frame from broker: %v", err)
			return
		}
		var v interface{ Decode([]byte) error }
		switch typ {
		case protocol.TypeConnect:
			v = new(protocol.Connect)
		case protocol.TypeData:
			v = new(protocol.Data)
		case protocol.TypeClose:
			v = new(protocol.Close)
		case protocol.TypeCredit:
			v = new(protocol.Credit)
		case protocol.TypeOpen:
			v = new(protocol.ChannelInfo)
		case protocol.TypeState:
			v = new(protocol.State)
		case protocol.TypeClients:
			v = new(protocol.Clients)
		case protocol.TypeError:
			v = new(protocol.Error)
		default:
			s.t.Errorf("unexpected frame %s", typ)
			return
		}
		if err := v.Decode(body); err != nil {
			s.t.Errorf("decode %s: %v", typ, err)
			return
		}
		if d, ok := v.(*protocol.Data); ok {
			d.Payload = append([]byte(nil), d.Payload...)
		}
		s.frames <- frame{typ, v}
		msg = rest
	}
}

// next returns the next frame of type typ, skipping Credit frames and
// failing on any other type.
func (s *svc) next(typ protocol.Type) any {
	s.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case f := <-s.frames:
			if f.typ == typ {
				return f.v
			}
			if f.typ == protocol.TypeCredit {
				continue
			}
			s.t.Fatalf("got %s frame %+v, want %s", f.typ, f.v, typ)
		case <-deadline:
			s.t.Fatalf("no %s frame within 5s", typ)
		}
	}
}

func (s *svc) send(frames ...[]byte) {
	s.t.Helper()
	var msg []byte
	for _, f := range frames {
		msg = append(msg, f...)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.conn.Write(ctx, websocket.MessageBinary, msg); err != nil {
		s.t.Fatalf("service write: %v", err)
	}
}

// acceptNext answers the next connect request with Accept.
func (s *svc) acceptNext(protocolName string, headers ...protocol.Header) *protocol.Connect {
	s.t.Helper()
	c := s.next(protocol.TypeConnect).(*protocol.Connect)
	s.send((&protocol.Accept{Channel: c.Channel, Protocol: protocolName, Headers: headers}).Append(nil))
	return c
}

// open connects a client to path and has s accept it, returning the
// connect request and the client.
func (e *env) open(s *svc, path string) (*protocol.Connect, *websocket.Conn) {
	e.t.Helper()
	res := e.dialAsync(path, nil)
	c := s.acceptNext("")
	r := <-res
	if r.err != nil {
		e.t.Fatalf("dial %s: %v", path, r.err)
	}
	return c, r.c
}

// dial connects a client; it fails the test on error.
func (e *env) dial(path string, opts *websocket.DialOptions) *websocket.Conn {
	e.t.Helper()
	c, err := e.tryDial(path, opts)
	if err != nil {
		e.t.Fatalf("dial %s: %v", path, err)
	}
	return c
}

func (e *env) tryDial(path string, opts *websocket.DialOptions) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, e.ws+path, e.dialOptions(opts))
	if err == nil {
		e.t.Cleanup(func() { c.CloseNow() })
	}
	return c, err
}

// dialAsync dials in the background, so a test can answer the connect
// request meanwhile.
func (e *env) dialAsync(path string, opts *websocket.DialOptions) <-chan dialResult {
	ch := make(chan dialResult, 1)
	go func() {
		c, err := e.tryDial(path, opts)
		ch <- dialResult{c, err}
	}()
	return ch
}

type dialResult struct {
	c   *websocket.Conn
	err error
}

func waitDial(t *testing.T, ch <-chan dialResult) *websocket.Conn {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("dial: %v", r.err)
		}
		return r.c
	case <-time.After(10 * time.Second):
		t.Fatal("dial did not finish")
	}
	return nil
}

func readMsg(t *testing.T, c *websocket.Conn) (websocket.MessageType, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("client read: %v", err)
	}
	return typ, string(b)
}

func writeMsg(t *testing.T, c *websocket.Conn, typ websocket.MessageType, s string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, typ, []byte(s)); err != nil {
		t.Fatalf("client write: %v", err)
	}
}
