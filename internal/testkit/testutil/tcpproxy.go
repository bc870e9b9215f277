package testutil

import (
	"io"
	"net"
	"sync"
	"testing"
)

// TCPProxy forwards connections to a target address and can cut them:
// while cut, open connections are closed and new ones refused. Tests put
// one cluster node's NATS connection through it to take that node alone
// off NATS.
type TCPProxy struct {
	ln     net.Listener
	mu     sync.Mutex
	target string // guarded by mu
	cut    bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// NewTCPProxy listens on 127.0.0.1 and forwards to target until the test
// ends; with target "" it refuses connections until SetTarget.
func NewTCPProxy(t testing.TB, target string) *TCPProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &TCPProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.SetCut(true); p.wg.Wait() })
	return p
}

// SetTarget sets where new connections go (for a target that listens on
// a port of its choosing, known only once the proxy's address was given
// to it).
func (p *TCPProxy) SetTarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

// Addr is the proxy's host:port.
func (p *TCPProxy) Addr() string { return p.ln.Addr().String() }

func (p *TCPProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut || p.target == "" {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		go pipe(up, c)
		go pipe(c, up)
	}
}

// SetCut cuts (closing every open connection) or restores the proxy.
func (p *TCPProxy) SetCut(cut bool) {
	p.cutWith(cut, false)
}

// Reset cuts the proxy as SetCut(true) does, but resets its connections
// (TCP RST) instead of closing them: both ends see the connection reset,
// as when a host between them fails, rather than an orderly close.
func (p *TCPProxy) Reset() {
	p.cutWith(true, true)
}

func (p *TCPProxy) cutWith(cut, reset bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			if tc, ok := c.(*net.TCPConn); ok && reset {
				_ = tc.SetLinger(0)
			}
			c.Close()
		}
		p.conns = map[net.Conn]struct{}{}
	}
}
