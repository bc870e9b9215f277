package server

import (
	"container/list"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/switchboard-dev/switchboard/internal/rawconn"
)

// ListenerLimits bound the connections the broker's listener accepts, from
// accept on, before any byte is read (slowloris). Zero fields: no limit.
type ListenerLimits struct {
	// MaxConnsPerAddr bounds open connections per client IP address
	// (clients, service links and admin calls alike); beyond it a new
	// connection gets 429 and is closed.
	MaxConnsPerAddr int
	// MaxHandshakes bounds connections whose request headers have not
	// arrived yet, over all addresses; beyond it the oldest such
	// connection is closed to make room.
	MaxHandshakes int
	// MaxFiles is the process's file-descriptor limit (0: RLIMIT_NOFILE),
	// and FDReserve how many of them the listener leaves to the rest of
	// the broker (its files, cluster and outgoing connections). Once open
	// connections reach MaxFiles-FDReserve, a new one closes the oldest
	// handshake in progress, or is itself closed with 503 when there is
	// none: established clients, links and the admin API keep working.
	MaxFiles, FDReserve int
	// TLS says the connections will carry TLS: refused ones are closed
	// without a plain-HTTP answer.
	TLS bool
}

// Listener wraps ln (a TCP listener; put TLS around the result) with the
// limits. Connections it returns release their slot when closed; they
// implement syscall.Conn and NetConn() like the connections of ln. The
// Server must be served through HTTPServer, whose ConnContext tells the
// listener when a connection's first request headers arrived. On Linux a
// plain TCP connection reads and writes with raw system calls inside Go's
// poller (internal/rawconn): a service link's batched writes no longer hand the
// scheduler's P to another thread.
func (s *Server) Listener(ln net.Listener, lim ListenerLimits) net.Listener {
	if lim.MaxFiles <= 0 {
		lim.MaxFiles = fileLimit()
	}
	l := &limitListener{Listener: ln, lim: lim, log: s, perAddr: map[netip.Addr]int{}, shaking: list.New()}
	s.perAddrAtAccept = lim.MaxConnsPerAddr > 0
	return l
}

type limitListener struct {
	net.Listener
	lim ListenerLimits // static
	log *Server        // static

	mu      sync.Mutex
	perAddr map[netip.Addr]int // open connections by address; guarded by mu
	open    int                // open connections; guarded by mu
	shaking *list.List         // *limitConn whose headers have not arrived, oldest first; guarded by mu
}

// limitConn is an accepted connection counted by its listener.
type limitConn struct {
	net.Conn
	l    *limitListener
	addr netip.Addr
	raw  *rawconn.IO // Linux, plain TCP: reads and writes (see rawconn); nil: Conn's

	// detour, once set, reads and writes instead (broker.Detourer): a
	// wss:// client handed to the broker's loops, which then own it.
	detour atomic.Pointer[io.ReadWriter]

	once  sync.Once
	shake *list.Element // in l.shaking while the handshake is in progress; guarded by l.mu
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc := l.admit(c); lc != nil {
			return lc, nil
		}
	}
}

// admit counts c, or refuses it (answering and closing it) and returns nil.
func (l *limitListener) admit(c net.Conn) *limitConn {
	addr := netip.Addr{}
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		addr = ta.AddrPort().Addr().Unmap()
	}
	var evict *limitConn
	l.mu.Lock()
	switch {
	case l.lim.MaxConnsPerAddr > 0 && l.perAddr[addr] >= l.lim.MaxConnsPerAddr:
		l.mu.Unlock()
		l.log.rejects.note("per_address_limit", "", c.RemoteAddr().String())
		l.refuse(c, "429 Too Many Requests", "too many connections from your address\n")
		return nil
	case l.lim.MaxFiles > 0 && l.open >= l.lim.MaxFiles-l.lim.FDReserve,
		l.lim.MaxHandshakes > 0 && l.shaking.Len() >= l.lim.MaxHandshakes:
		if e := l.shaking.Front(); e != nil {
			evict = e.Value.(*limitConn)
			l.shaking.Remove(e)
			evict.shake = nil
		} else {
			l.mu.Unlock()
			l.log.rejects.note("file_limit", "", c.RemoteAddr().String())
			l.refuse(c, "503 Service Unavailable", "the broker is at its connection limit\n")
			return nil
		}
	}
	lc := &limitConn{Conn: c, l: l, addr: addr, raw: rawconn.New(c)}
	l.perAddr[addr]++
	l.open++
	lc.shake = l.shaking.PushBack(lc)
	l.mu.Unlock()
	if evict != nil {
		l.log.rejects.note("handshake_evicted", "", evict.RemoteAddr().String())
		_ = evict.Close() // the oldest handshake in progress makes room
	}
	return lc
}

// refuse answers a connection that is not read (unless it carries TLS)
// and closes it.
func (l *limitListener) refuse(c net.Conn, status, body string) {
	if l.lim.TLS {
		_ = c.Close()
		return
	}
	refuseRaw(c, status, body)
}

func refuseRaw(c net.Conn, status, body string) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write([]byte("HTTP/1.1 " + status + "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: " +
		itoa(len(body)) + "\r\n\r\n" + body))
	_ = c.Close()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}

func (c *limitConn) Read(p []byte) (int, error) {
	if d := c.detour.Load(); d != nil {
		return (*d).Read(p)
	}
	if c.raw == nil {
		return c.Conn.Read(p)
	}
	return c.raw.Read(p)
}

func (c *limitConn) Write(p []byte) (int, error) {
	if d := c.detour.Load(); d != nil {
		return (*d).Write(p)
	}
	if c.raw == nil {
		return c.Conn.Write(p)
	}
	return c.raw.Write(p)
}

// Detour sends Read and Write to rw from now on (broker.Detourer): the
// TLS session above this connection goes on, its bytes read and written
// by the broker's loop.
func (c *limitConn) Detour(rw io.ReadWriter) { c.detour.Store(&rw) }

// handshaken marks the connection's first request headers as arrived: it
// no longer counts as a handshake in progress.
func (c *limitConn) handshaken() {
	c.l.mu.Lock()
	if c.shake != nil {
		c.l.shaking.Remove(c.shake)
		c.shake = nil
	}
	c.l.mu.Unlock()
}

// Close closes the connection and releases its slots, once.
func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		l := c.l
		l.mu.Lock()
		if c.shake != nil {
			l.shaking.Remove(c.shake)
			c.shake = nil
		}
		l.open--
		if l.perAddr[c.addr] <= 1 {
			delete(l.perAddr, c.addr)
		} else {
			l.perAddr[c.addr]--
		}
		l.mu.Unlock()
	})
	return err
}

// NetConn returns the underlying connection.
func (c *limitConn) NetConn() net.Conn { return c.Conn }

// SyscallConn delegates to the underlying connection (a *net.TCPConn).
func (c *limitConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, syscall.EINVAL
}

// connKey is the context key under which ConnContext stores the conn.
type connKey struct{}

// connContext remembers the accepted connection (under TLS, the
// underlying one) for handshakeDone.
func connContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// handshakeDone tells r's connection's listener that its headers arrived.
func handshakeDone(r *http.Request) {
	c, _ := r.Context().Value(connKey{}).(net.Conn)
	for c != nil {
		if lc, ok := c.(*limitConn); ok {
			lc.handshaken()
			return
		}
		nc, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return
		}
		c = nc.NetConn()
	}
}

// fileLimit is the process's RLIMIT_NOFILE soft limit, or 0 if unknown.
func fileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 0
	}
	return int(rl.Cur)
}
