package server

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/protocol"
	"github.com/switchboard-dev/switchboard/scope"
)

// rejectBody is the body of the one rejection response. Unknown scope,
// refusal, timeout, origin and subprotocol mismatch all send exactly these
// bytes (the Date header aside), so a client cannot tell them apart.
const rejectBody = "Not Found\n"

// refuse answers a refused client handshake, whose headers were read at
// start, with the uniform rejection, no earlier than the refusal floor
// (plus jitter) after start. So the time a refusal takes does not tell
// its cause: no scope, a policy, or a service's answer, which arrives
// within the floor. A refusal decided after the floor (a service that
// holds its answer) is answered when decided. The wait is a timer in the
// handler's own goroutine: nothing else is held per waiting refusal.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, start time.Time) {
	s.holdRefusal(r, start)
	writeReject(w)
}

func (s *Server) holdRefusal(r *http.Request, start time.Time) {
	floor := s.cfg.RefusalFloor
	if floor <= 0 {
		return
	}
	d := floor - time.Since(start)
	if j := s.cfg.RefusalJitter; j > 0 {
		d += rand.N(j)
	}
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done(): // the client left
	}
}

func writeReject(w http.ResponseWriter) {
	h := w.Header()
	for k := range h {
		delete(h, k)
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(rejectBody)))
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(rejectBody))
}

// checkHandshake returns the HTTP status for a malformed client handshake,
// or 0 when it is well formed (RFC 6455 section 4.2.1).
func checkHandshake(w http.ResponseWriter, r *http.Request) (int, string) {
	if r.Method != http.MethodGet {
		return http.StatusMethodNotAllowed, "WebSocket handshakes use GET"
	}
	if !r.ProtoAtLeast(1, 1) {
		return http.StatusBadRequest, "WebSocket handshakes need HTTP/1.1"
	}
	if r.Host == "" {
		return http.StatusBadRequest, "missing Host header"
	}
	if v := r.Header.Values("Sec-WebSocket-Version"); len(v) != 1 || strings.TrimSpace(v[0]) != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		return http.StatusUpgradeRequired, "unsupported or repeated Sec-WebSocket-Version; this server speaks 13 only"
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return http.StatusBadRequest, "missing or repeated Sec-WebSocket-Key"
	}
	if k, err := base64.StdEncoding.DecodeString(keys[0]); err != nil || len(k) != 16 {
		return http.StatusBadRequest, "invalid Sec-WebSocket-Key"
	}
	if r.ContentLength > 0 || len(r.TransferEncoding) > 0 {
		return http.StatusBadRequest, "WebSocket handshakes carry no body"
	}
	return 0, ""
}

// serveClient runs the connect flow for a client handshake whose headers
// were read at start.
func (s *Server) serveClient(w http.ResponseWriter, r *http.Request, start time.Time) {
	remote, ok := s.admitHandshake(w, r)
	if !ok {
		return
	}
	slot := s.holdAddr(remote.Addr())
	defer slot.release()
	hs, err := handshakeOf(r, remote)
	if err != nil {
		s.rejects.note("bad_handshake", "", r.RemoteAddr)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	hs.Admit = s.manifestOnPlainRoute(r) // apps.go
	s.connect(w, withSlot(r, slot), hs, start)
}

// loggablePath is a request path as logs may show it: a wsapp path's
// authority is replaced by "TOKEN" when it is a chooser token.
func loggablePath(p string) string {
	rest, ok := strings.CutPrefix(p, appPrefix)
	if !ok {
		return p
	}
	authority, tail, _ := strings.Cut(rest, "/")
	if len(authority) > scope.MaxAppIDLen {
		return appPrefix + "TOKEN/" + tail
	}
	return p
}

// admitHandshake checks a client handshake and counts it against its
// address's limit, answering the error itself when it fails. On success
// the caller releases the address when the connection ends.
func (s *Server) admitHandshake(w http.ResponseWriter, r *http.Request) (netip.AddrPort, bool) {
	if status, msg := checkHandshake(w, r); status != 0 {
		s.rejects.note("bad_handshake", loggablePath(r.URL.Path), r.RemoteAddr)
		http.Error(w, msg, status)
		return netip.AddrPort{}, false
	}
	remote := remoteAddr(r)
	if !s.admitAddr(remote.Addr()) {
		s.rejects.note("per_address_limit", loggablePath(r.URL.Path), r.RemoteAddr)
		http.Error(w, "too many connections from your address", http.StatusTooManyRequests)
		return netip.AddrPort{}, false
	}
	return remote, true
}

// connect offers hs to the broker and answers the client: the uniform
// rejection, the service's own response, or the upgrade and the relay.
// Client handshakes by URL and by wsapp:// share it.
func (s *Server) connect(w http.ResponseWriter, r *http.Request, hs *broker.Handshake, start time.Time) {
	d := s.b.Offer(r.Context(), hs) // an Accept here has passed the broker's checks (checkAccept)
	s.serviceCookies(&d)
	switch d.Outcome {
	case broker.Rejected:
		s.rejects.note(d.Reason, hs.Path, r.RemoteAddr)
		s.refuse(w, r, start)
		return
	case broker.Responded:
		h := w.Header()
		for _, x := range d.Headers {
			h.Add(x.Name, x.Value)
		}
		h.Set("Content-Length", strconv.Itoa(len(d.Body)))
		w.WriteHeader(d.Status)
		_, _ = w.Write(d.Body)
		return
	}
	h := w.Header()
	for _, x := range d.Headers {
		h.Add(x.Name, x.Value)
	}
	opts := &websocket.AcceptOptions{InsecureSkipVerify: true} // origins are the service's policy, checked by the broker
	if d.Protocol != "" {
		opts.Subprotocols = []string{d.Protocol}
	}
	if s.cfg.Compression {
		opts.CompressionMode = websocket.CompressionNoContextTakeover
	}
	if s.pollable(r) {
		s.servePolled(w, r, d, hs)
		return
	}
	hj := &hijackRecorder{ResponseWriter: w}
	conn, err := websocket.Accept(hj, r, opts)
	if err != nil {
		s.log.Debug("client handshake failed after accept", "path", hs.Path, "err", err)
		s.b.Abandon(d)
		return
	}
	s.b.Serve(d, conn, hj.conn)
}

// hijackRecorder keeps the connection that the WebSocket library hijacks,
// so that the broker can cut a client that stalls its closing handshake.
type hijackRecorder struct {
	http.ResponseWriter
	conn net.Conn
}

// The library reads through a broker.CloseHold, which holds back the
// client's close frame until the broker answers it.
func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return conn, brw, err
	}
	var buffered []byte
	if n := brw.Reader.Buffered(); n > 0 {
		buffered, _ = brw.Reader.Peek(n)
	}
	hold := broker.NewCloseHold(conn, buffered) // copies buffered
	brw.Reader.Reset(hold)
	h.conn = hold
	return hold, brw, nil
}

// handshakeOf turns the request into the broker's Handshake. Go's HTTP
// server does not keep header order, so headers are listed by name. The
// host and path are put in the canonical form routing compares (package
// scope), and the service is told that same path in Target and FirstLine:
// "/a/b/../../x" reaches the scope of "/x" and is told as "/x", never as a
// path with dot segments outside the scope it was routed to.
func handshakeOf(r *http.Request, remote netip.AddrPort) (*broker.Handshake, error) {
	path, err := scope.CanonicalPath(r.URL.EscapedPath())
	if err != nil {
		return nil, err
	}
	host, err := scope.CanonicalHost(r.Host)
	if err != nil {
		return nil, fmt.Errorf("bad Host header: %w", err)
	}
	uri := path
	if r.URL.RawQuery != "" || r.URL.ForceQuery {
		uri += "?" + r.URL.RawQuery
	}
	scheme := "ws"
	if r.TLS != nil {
		scheme = "wss"
	}
	names := make([]string, 0, len(r.Header)+1)
	for k := range r.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	headers := make([]protocol.Header, 0, len(names)+1)
	headers = append(headers, protocol.Header{Name: "Host", Value: r.Host})
	for _, k := range names {
		for _, v := range r.Header[k] {
			if k == "Cookie" {
				if v = withoutBrokerCookies(v); v == "" {
					continue // the chooser's session is never a service's
				}
			}
			headers = append(headers, protocol.Header{Name: k, Value: v})
		}
	}
	return &broker.Handshake{
		Host:      host,
		Path:      path,
		Target:    scheme + "://" + r.Host + uri,
		Origin:    r.Header.Get("Origin"),
		Protocols: subprotocols(r),
		FirstLine: r.Method + " " + uri + " " + r.Proto,
		Headers:   headers,
		Remote:    remote,
	}, nil
}

// admitAddr counts a connection from addr against the per-address limit.
func (s *Server) admitAddr(addr netip.Addr) bool {
	if s.cfg.MaxConnsPerAddr <= 0 || s.perAddrAtAccept {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perAddr[addr] >= s.cfg.MaxConnsPerAddr {
		return false
	}
	s.perAddr[addr]++
	return true
}

func (s *Server) releaseAddr(addr netip.Addr) {
	if s.cfg.MaxConnsPerAddr <= 0 || s.perAddrAtAccept {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perAddr[addr] <= 1 {
		delete(s.perAddr, addr)
		return
	}
	s.perAddr[addr]--
}
