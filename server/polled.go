package server

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/netip"
	"runtime"
	"sync"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"

	"github.com/switchboard-dev/switchboard/broker"
)

// pollable says whether an accepted client runs on the broker's epoll
// loops (Broker.ServePolled: no goroutine and no buffer while idle) rather
// than on coder/websocket with two goroutines (Broker.Serve). A wss://
// client does when its TLS connection came from the server's Listener,
// whose connections the loops can take over (broker.Detourer), over
// HTTP/1.1.
func (s *Server) pollable(r *http.Request) bool {
	if runtime.GOOS != "linux" || s.cfg.GoroutineClients {
		return false
	}
	if r.TLS == nil {
		return true
	}
	tc, ok := r.Context().Value(connKey{}).(*tls.Conn)
	if !ok || r.ProtoMajor != 1 {
		return false
	}
	_, ok = tc.NetConn().(broker.Detourer)
	return ok
}

// servePolled writes the 101 with gobwas/ws on the hijacked connection and
// hands the connection to the broker's loops. The per-address slot is
// released when the broker closes the connection, not when this handler
// returns.
func (s *Server) servePolled(w http.ResponseWriter, r *http.Request, d broker.Decision, hs *broker.Handshake) {
	h := http.Header{}
	for _, x := range d.Headers {
		h.Add(x.Name, x.Value)
	}
	u := ws.HTTPUpgrader{Header: h}
	if d.Protocol != "" {
		u.Protocol = func(p string) bool { return p == d.Protocol }
	}
	// permessage-deflate without context takeover either way: every
	// message stands alone, so no compression state stays with a client.
	ext := wsflate.Extension{Parameters: wsflate.Parameters{ServerNoContextTakeover: true, ClientNoContextTakeover: true}}
	if s.cfg.Compression {
		u.Negotiate = ext.Negotiate
	}
	conn, rw, _, err := u.Upgrade(r, w)
	if err != nil {
		s.log.Debug("client handshake failed after accept", "target", hs.Target, "err", err)
		if conn != nil {
			conn.Close()
		}
		s.b.Abandon(d)
		return
	}
	var buffered []byte
	if n := rw.Reader.Buffered(); n > 0 {
		p, _ := rw.Reader.Peek(n)
		buffered = append([]byte(nil), p...)
	}
	_, deflate := ext.Accepted()
	s.b.ServePolled(d, conn, buffered, deflate, slotOf(r).handOff())
}

// addrSlot is one connection counted against its address's limit.
type addrSlot struct {
	s    *Server
	addr netip.Addr
	once sync.Once
	kept bool // handed off: released by whoever took it
}

func (s *Server) holdAddr(addr netip.Addr) *addrSlot { return &addrSlot{s: s, addr: addr} }

// release releases the slot when the handler returns, unless it was handed
// off.
func (a *addrSlot) release() {
	if a == nil || a.kept {
		return
	}
	a.once.Do(func() { a.s.releaseAddr(a.addr) })
}

// handOff returns the function that releases the slot, for the connection
// that outlives its handler; release becomes a no-op.
func (a *addrSlot) handOff() func() {
	if a == nil {
		return nil
	}
	a.kept = true
	return func() { a.once.Do(func() { a.s.releaseAddr(a.addr) }) }
}

type slotKey struct{}

func withSlot(r *http.Request, a *addrSlot) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), slotKey{}, a))
}

func slotOf(r *http.Request) *addrSlot {
	a, _ := r.Context().Value(slotKey{}).(*addrSlot)
	return a
}
