//go:build linux

package broker

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"golang.org/x/sys/unix"

	"github.com/switchboard-dev/switchboard/internal/bufpool"
	"github.com/switchboard-dev/switchboard/internal/netpoll"
)

// pollClient runs a client connection on the broker's epoll loops
// (internal/netpoll), with gobwas/ws's rules for frames and close codes.
// An idle client holds no goroutine and no buffer: a read takes a pooled
// buffer and gives it back once its bytes are parsed, a message is
// assembled in a pooled buffer sized to it, and a write that the socket
// does not take whole waits, with the rest of its message, for the socket
// to be writable. All of its I/O runs on its loop's goroutine; other
// goroutines ask for work through req and Schedule.
type pollClient struct {
	b       *Broker
	ch      *Channel
	conn    net.Conn // the hijacked connection (under TLS, the one under it); closing it releases what the server holds for it
	fd      int
	tls     *tls.Conn // a wss:// client's TLS session; nil for ws://
	wire    *tlsWire  // under tls: the socket, read and written by the loop
	desc    *netpoll.Desc
	release func() // the server's per-connection accounting, when the connection ends

	live   atomic.Bool   // ServePolled has finished setting up: callbacks may run
	req    atomic.Uint32 // req* bits
	pingAt atomic.Int64  // unix ns of a ping not yet answered; 0: none

	// The loop's goroutine only.
	rbuf      *[]byte // bytes read and not yet parsed, from rpos; nil when none
	rpos      int
	msg       *[]byte // the data message being assembled
	msgBin    bool
	msgFlate  bool // the message is compressed (permessage-deflate)
	deflate   bool // permessage-deflate was negotiated (no context takeover)
	frag      bool // a message is open: its next data frame must be a continuation
	fin       bool // the frame being read ends its message
	left      int64
	mask      [4]byte
	moff      int
	out       outMsg // a data message being written
	outHdr    [10]byte
	outHdrN   int
	outOff    int     // bytes of out's frame (header included) written
	ctl       *[]byte // control frames to write, from ctlOff
	ctlOff    int
	iov       [2]unix.Iovec
	wblocked  bool          // a write met EAGAIN: EPOLLOUT resumes flushing
	paused    bool          // the channel holds a message: read nothing (backpressure)
	closeSent bool          // our close frame is queued: data from the client is dropped
	closeRecv bool          // the client's close frame arrived: the service's messages go on until its Close
	closeCode ws.StatusCode // the client's close code (StatusNoStatusRcvd: none), echoed at the close timeout
	closeWhy  string
	failed    bool // the client broke a rule: bytes are discarded unparsed
	reported  bool // the channel was told how the client ended
	half      bool // ... by its close frame alone (clientClosing): teardown tells it the rest (clientEnded)
	linger    *time.Timer
	dead      bool
}

const (
	reqRead   = 1 << iota // parse what is buffered and read
	reqResume             // the channel took the message it held: read again
	reqWrite
	reqPing
	reqAbort
	reqCloseTimeout // the service did not answer the client's close in time
)

// pollReadSize is the pooled buffer a read takes.
const pollReadSize = 8 << 10

// ServePolled relays an accepted client on the broker's epoll loops and
// returns at once; conn is the hijacked connection after the handshake,
// buffered what the handshake's reader had already read past it, deflate
// whether permessage-deflate was negotiated (without context takeover:
// the client's compressed messages are inflated, the broker's go out
// uncompressed), and release (may be nil) is called once the connection
// is closed. conn must implement syscall.Conn. A client that runs over TLS
// is served by Serve instead.
func (b *Broker) ServePolled(d Decision, conn net.Conn, buffered []byte, deflate bool, release func()) {
	ch := d.channel
	end := func(code ws.StatusCode, reason string) {
		_, _ = conn.Write(ws.MustCompileFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(code, reason))))
		conn.Close()
		if release != nil {
			release()
		}
	}
	if ch == nil {
		end(ws.StatusInternalServerError, "")
		return
	}
	if !b.enter() {
		end(ws.StatusGoingAway, "broker shutting down")
		b.Abandon(d)
		return
	}
	c := &pollClient{b: b, ch: ch, conn: conn, release: release, deflate: deflate}
	p, err := b.poller()
	if err == nil {
		if tc, ok := conn.(*tls.Conn); ok {
			c.conn, err = c.polledTLS(tc)
		} else {
			c.fd, err = connFD(conn)
		}
	}
	if err != nil {
		b.log.Error("client connection cannot be polled", "err", err)
		end(ws.StatusInternalServerError, "")
		b.Abandon(d)
		b.wg.Done()
		return
	}
	if len(buffered) > 0 {
		c.rbuf = bufpool.Get(max(pollReadSize, len(buffered)))
		*c.rbuf = append((*c.rbuf)[:0], buffered...)
	}
	c.paused = true
	// Registered for writing only until the channel knows its connection,
	// so that it can tell it to read again after backpressure.
	if c.desc, err = p.Add(c.fd, c, false); err != nil {
		b.log.Error("client connection cannot be polled", "err", err)
		bufpool.Put(c.rbuf)
		end(ws.StatusInternalServerError, "")
		b.Abandon(d)
		b.wg.Done()
		return
	}
	ch.mu.Lock()
	ch.conn = c
	ch.startWriterLocked()
	ch.mu.Unlock()
	b.m.clients.Inc()
	c.live.Store(true)
	c.request(reqResume) // on the loop: poll for reading, and parse what came with the handshake
}

// connFD returns the descriptor under conn, which stays conn's: it is
// closed by conn.Close.
func connFD(conn net.Conn) (int, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return 0, errors.New("connection has no descriptor (not a syscall.Conn)")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	fd := -1
	if err := raw.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return 0, err
	}
	return fd, nil
}

func (c *pollClient) request(r uint32) {
	c.req.Or(r)
	c.desc.Schedule()
}

func (c *pollClient) wake()   { c.request(reqWrite) }
func (c *pollClient) resume() { c.request(reqResume) }
func (c *pollClient) abort()  { c.request(reqAbort) }

// ping sends a ping unless one is unanswered; a client that has not
// answered the previous one by now (a ping interval later) is cut.
func (c *pollClient) ping(timeout time.Duration) {
	now := time.Now().UnixNano()
	if at := c.pingAt.Load(); at != 0 {
		if now-at >= int64(timeout)*9/10 { // the ticker's jitter aside, a whole interval
			c.b.log.Debug("client keepalive failed", "channel", c.ch.id)
			c.request(reqAbort)
		}
		return
	}
	c.pingAt.Store(now)
	c.request(reqPing)
}

// Ready handles readiness of the socket.
func (c *pollClient) Ready(events uint32) {
	if c.dead || !c.live.Load() { // before set-up, only the first EPOLLOUT: Run flushes then
		return
	}
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		// Data alone: a short read drains the socket. An end (or an
		// error) may have come with it: read until it shows.
		c.readReady(events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) == 0)
	}
	if !c.dead && (c.ctl != nil || c.wblocked && events&unix.EPOLLOUT != 0 || c.wire != nil && c.wire.pending != nil) { // a pong to send, room again, or TLS answered a record of the client's
		c.flush()
	}
}

// Run does what other goroutines asked for.
func (c *pollClient) Run() {
	if c.dead {
		return
	}
	r := c.req.Swap(0)
	if r&reqAbort != 0 {
		c.teardown()
		return
	}
	if r&reqPing != 0 {
		if c.closeSent || c.closeRecv { // closing: the close timeout bounds it, not pings
			c.pingAt.Store(0)
		} else {
			c.queueControl(ws.OpPing, nil)
		}
	}
	if r&reqCloseTimeout != 0 && c.closeRecv && !c.closeSent {
		c.b.log.Debug("service did not close within the close timeout", "channel", c.ch.id)
		c.sendClose(websocket.StatusCode(c.closeCode), c.closeWhy)
	}
	if r&reqResume != 0 && c.paused {
		c.paused = false
		if err := c.desc.SetRead(true); err != nil {
			c.gone()
			return
		}
		r |= reqRead
	}
	if r&reqRead != 0 {
		c.readReady(false)
	}
	if !c.dead {
		c.flush()
	}
}

// readReady parses what is buffered, then reads until the socket has no
// more, the channel holds a message, or the connection ends. edge says the
// call comes from an edge of readable data alone: a read that does not
// fill the buffer then took all there was (more data brings a new edge),
// so it spares the read that would return EAGAIN, as nginx does.
func (c *pollClient) readReady(edge bool) {
	drained := false
	for !c.dead && !c.paused {
		if c.rbuf != nil && c.rpos < len(*c.rbuf) && !c.parse() {
			break
		}
		if c.dead || c.paused || drained {
			break
		}
		if c.rbuf == nil {
			c.rbuf = bufpool.Get(pollReadSize)
		} else if c.rpos > 0 { // keep the unparsed tail at the front
			n := copy(*c.rbuf, (*c.rbuf)[c.rpos:])
			*c.rbuf = (*c.rbuf)[:n]
			c.rpos = 0
		}
		b := *c.rbuf
		var n int
		var err error
		if c.tls == nil {
			n, err = netpoll.Read(c.fd, b[len(b):cap(b)])
		} else {
			n, err = c.readTLS(b[len(b):cap(b)])
		}
		if n > 0 {
			// (A TLS read returns one record's bytes: only EAGAIN says
			// the socket is drained.)
			drained = edge && n < cap(b)-len(b) && c.tls == nil
			*c.rbuf = b[:len(b)+n]
			c.pingAt.Store(0) // it is alive
			if c.failed || c.closeRecv {
				*c.rbuf = (*c.rbuf)[:0] // discarded: only the end of the connection matters now
			}
			continue
		}
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			break
		}
		c.gone() // EOF, or the connection broke
		return
	}
	if c.rbuf != nil && c.rpos >= len(*c.rbuf) {
		bufpool.Put(c.rbuf)
		c.rbuf, c.rpos = nil, 0
	}
}

// parse handles the frames in rbuf[rpos:]. It returns false when it must
// stop before the end: the channel holds a message, the client broke a
// rule, or it closed.
func (c *pollClient) parse() bool {
	max := int64(c.b.cfg.Limits.MaxMessage)
	for {
		avail := (*c.rbuf)[c.rpos:]
		if c.left > 0 { // the payload of a data frame
			n := int(min(int64(len(avail)), c.left))
			if n == 0 {
				return true
			}
			p := avail[:n]
			if !c.closeSent {
				ws.Cipher(p, c.mask, c.moff)
				*c.msg = append(*c.msg, p...)
			}
			c.moff += n
			c.rpos += n
			c.left -= int64(n)
			if c.left > 0 {
				return true
			}
			if !c.frameEnd() {
				return false
			}
			continue
		}
		h, hn, ok := decodeHeader(avail)
		if !ok {
			return true // the rest of the header is still to come
		}
		state := ws.StateServerSide
		if c.frag {
			state = state.Set(ws.StateFragmented)
		}
		compressed := false
		if c.deflate && h.Rsv != 0 { // RSV1 marks a compressed message, on its first frame only
			if h.Rsv != 4 || h.OpCode.IsControl() || h.OpCode == ws.OpContinuation {
				c.fail(websocket.StatusProtocolError, wsflate.ErrUnexpectedCompressionBit.Error())
				return false
			}
			compressed, h.Rsv = true, 0
		}
		if err := ws.CheckHeader(h, state); err != nil {
			c.fail(websocket.StatusProtocolError, err.Error())
			return false
		}
		if h.OpCode.IsControl() {
			if len(avail) < hn+int(h.Length) {
				return true
			}
			p := avail[hn : hn+int(h.Length)]
			ws.Cipher(p, h.Mask, 0)
			c.rpos += hn + len(p)
			if !c.control(h.OpCode, p) {
				return false
			}
			continue
		}
		c.rpos += hn
		c.left, c.mask, c.moff, c.fin = h.Length, h.Mask, 0, h.Fin
		c.frag = !h.Fin
		if c.closeSent { // closing: data is dropped
			if c.left == 0 && !c.frameEnd() {
				return false
			}
			continue
		}
		have := 0
		if c.msg != nil {
			have = len(*c.msg)
		}
		if h.Length < 0 || int64(have)+h.Length > max {
			c.fail(websocket.StatusMessageTooBig, "message too big")
			return false
		}
		if h.OpCode != ws.OpContinuation {
			c.msgBin, c.msgFlate = h.OpCode == ws.OpBinary, compressed
			c.msg = bufpool.Get(int(h.Length))
		} else if need := have + int(h.Length); need > cap(*c.msg) {
			nb := bufpool.Get(need)
			*nb = append((*nb)[:0], *c.msg...)
			bufpool.Put(c.msg)
			c.msg = nb
		}
		if c.left == 0 && !c.frameEnd() {
			return false
		}
	}
}

// frameEnd ends a data frame: a final one hands the message to the channel.
func (c *pollClient) frameEnd() bool {
	if !c.fin || c.closeSent {
		return true
	}
	m := c.msg
	c.msg = nil
	if c.msgFlate {
		var code websocket.StatusCode
		var reason string
		if m, code, reason = inflate(m, c.b.cfg.Limits.MaxMessage); code != 0 {
			c.fail(code, reason)
			return false
		}
	}
	if code, reason := checkMessage(c.msgBin, *m, c.b.cfg.Limits.MaxMessage); code != 0 {
		bufpool.Put(m)
		c.fail(code, reason)
		return false
	}
	if c.ch.received(messageFlags(c.msgBin), m) == recvHeld {
		c.paused = true
		if err := c.desc.SetRead(false); err != nil {
			c.gone()
		}
		return false
	}
	return true // recvClosed too: the client's close reply is still to be read
}

// control handles a control frame whose payload p is unmasked.
func (c *pollClient) control(op ws.OpCode, p []byte) bool {
	switch op {
	case ws.OpPing:
		if !c.closeSent {
			c.queueControl(ws.OpPong, p)
		}
		return true
	case ws.OpPong:
		c.pingAt.Store(0)
		return true
	}
	code, reason := ws.StatusNoStatusRcvd, ""
	if len(p) == 1 {
		c.fail(websocket.StatusProtocolError, "close frame with a one-byte payload")
		return false
	}
	if len(p) >= 2 {
		code, reason = ws.ParseCloseFrameData(p)
		err := ws.CheckCloseFrameData(code, reason)
		if err == nil && code >= 5000 {
			err = ws.ErrProtocolStatusCodeUnknown // gobwas/ws lets codes past 4999 through
		}
		if err != nil {
			if errors.Is(err, ws.ErrProtocolInvalidUTF8) {
				c.fail(websocket.StatusInvalidFramePayloadData, err.Error())
			} else {
				c.fail(websocket.StatusProtocolError, err.Error())
			}
			return false
		}
	}
	c.closeRecv = true
	if c.rbuf != nil { // what follows a close frame is not parsed
		*c.rbuf, c.rpos = (*c.rbuf)[:0], 0
	}
	if c.closeSent { // the client answered our close: the connection ends
		c.report(websocket.StatusCode(code), reason)
		c.flush()
		return false
	}
	// The client closed first. The service gets the Close after what the
	// client sent before it, and may still send: its messages reach the
	// client until its own Close, which becomes our close frame (RFC 6455
	// lets an endpoint that received a close send what it has left), or
	// until the close timeout, when the broker echoes the client's close.
	c.closeCode, c.closeWhy = code, reason
	c.reported, c.half = true, true
	c.ch.clientClosing(websocket.StatusCode(code), reason)
	c.linger = time.AfterFunc(c.b.cfg.Limits.CloseTimeout, func() { c.request(reqCloseTimeout) })
	c.flush()
	return false
}

// fail closes a client that broke a rule with code, tells the service,
// and discards what the client still sends until it closes (or the linger
// timer cuts it), so that it reads the close frame before the connection
// ends.
func (c *pollClient) fail(code websocket.StatusCode, reason string) {
	if c.msg != nil {
		bufpool.Put(c.msg)
		c.msg = nil
	}
	reason = closeReason(reason)
	if code == websocket.StatusProtocolError {
		reason = closeReason("protocol error: " + reason)
	}
	c.report(code, reason)
	c.failed = true
	if c.rbuf != nil {
		*c.rbuf, c.rpos = (*c.rbuf)[:0], 0
	}
	if !c.closeSent {
		c.sendClose(code, reason)
	}
	c.flush()
}

// report tells the channel once how the client ended.
func (c *pollClient) report(code websocket.StatusCode, reason string) {
	if c.reported {
		return
	}
	c.reported = true
	c.ch.clientClosed(code, reason)
}

// sendClose queues our close frame and starts the linger timer. A close
// that answers the client's (closeRecv) and was given no code of its own
// (1005) goes without a body, as the client's did.
func (c *pollClient) sendClose(code websocket.StatusCode, reason string) {
	c.closeSent = true
	if c.half { // this close answers the client's: the channel is done with, before the client can see it is
		c.half = false
		c.ch.clientEnded()
	}
	if c.closeRecv && code == websocket.StatusNoStatusRcvd {
		c.queueControl(ws.OpClose, nil)
	} else {
		code, reason = closeFrame(code, reason)
		c.queueControl(ws.OpClose, ws.NewCloseFrameBody(ws.StatusCode(code), reason))
	}
	if c.linger != nil {
		c.linger.Stop()
	}
	c.linger = time.AfterFunc(lingerTime, func() { c.request(reqAbort) })
}

// closeReason cuts a reason to what a close frame carries.
func closeReason(reason string) string {
	_, r := closeFrame(websocket.StatusNormalClosure, reason)
	return r
}

// gone ends a connection that broke or reached its end.
func (c *pollClient) gone() {
	c.report(websocket.StatusAbnormalClosure, "")
	c.teardown()
}

// teardown unregisters and closes the connection and frees what it holds.
func (c *pollClient) teardown() {
	if c.dead {
		return
	}
	c.dead = true
	if c.half {
		c.ch.clientEnded() // the client closed first (clientClosing): its connection is gone now
	}
	c.report(websocket.StatusAbnormalClosure, "")
	if c.linger != nil {
		c.linger.Stop()
	}
	c.desc.Remove()
	_ = c.conn.Close()
	bufpool.Put(c.rbuf)
	bufpool.Put(c.msg)
	bufpool.Put(c.ctl)
	c.rbuf, c.msg, c.ctl = nil, nil, nil
	if c.wire != nil {
		c.wire.free()
	}
	if c.out.data != nil {
		c.ch.wroteOut(c.out, net.ErrClosed)
		bufpool.Put(c.out.data)
		c.out = outMsg{}
	}
	c.ch.outDone()
	if c.release != nil {
		c.release()
	}
	c.b.wg.Done()
}

// decodeHeader reads a frame header from the front of b; ok is false when
// b does not hold all of it yet.
func decodeHeader(b []byte) (h ws.Header, n int, ok bool) {
	if len(b) < 2 {
		return h, 0, false
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = (b[0] & 0x70) >> 4
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	n = 2
	switch l := b[1] & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return h, 0, false
		}
		h.Length, n = int64(binary.BigEndian.Uint16(b[2:4])), 4
	case 127:
		if len(b) < 10 {
			return h, 0, false
		}
		u := binary.BigEndian.Uint64(b[2:10])
		h.Length, n = int64(u&(1<<63-1)), 10
		if u>>63 != 0 {
			h.Length = -1 // past any limit
		}
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		if len(b) < n+4 {
			return h, 0, false
		}
		copy(h.Mask[:], b[n:n+4])
		n += 4
	}
	return h, n, true
}

// encodeHeader writes an unmasked server frame header into dst.
func encodeHeader(dst *[10]byte, op ws.OpCode, n int) int {
	dst[0] = 0x80 | byte(op)
	switch {
	case n < 126:
		dst[1] = byte(n)
		return 2
	case n < 1<<16:
		dst[1] = 126
		binary.BigEndian.PutUint16(dst[2:4], uint16(n))
		return 4
	default:
		dst[1] = 127
		binary.BigEndian.PutUint64(dst[2:10], uint64(n))
		return 10
	}
}

// queueControl queues a control frame (payload of at most 125 bytes).
func (c *pollClient) queueControl(op ws.OpCode, p []byte) {
	if c.ctl == nil {
		c.ctl = bufpool.Get(512)
	}
	var h [10]byte
	n := encodeHeader(&h, op, len(p))
	*c.ctl = append(append(*c.ctl, h[:n]...), p...)
}

// flush writes what is queued, control frames first between messages,
// until the socket takes no more (the next EPOLLOUT resumes it).
func (c *pollClient) flush() {
	for !c.dead {
		if c.wire != nil && !c.sendWire() {
			return // the socket is full, or broke
		}
		if c.out.data != nil {
			if !c.writeOut() && (c.dead || c.wblocked) {
				return
			}
			continue
		}
		if c.ctl != nil && c.ctlOff < len(*c.ctl) {
			n, err := c.write((*c.ctl)[c.ctlOff:], nil)
			c.ctlOff += n
			if err != nil || c.dead {
				return
			}
			if c.ctlOff < len(*c.ctl) {
				if c.wblocked {
					return
				}
				continue
			}
		}
		if c.ctl != nil {
			bufpool.Put(c.ctl)
			c.ctl, c.ctlOff = nil, 0
		}
		if c.closeSent {
			switch {
			case c.closeRecv: // the closing handshake is complete
				c.teardown()
			case c.failed: // no more to say: the client reads our close, then EOF
				_ = unix.Shutdown(c.fd, unix.SHUT_WR)
			}
			return
		}
		m, ok, _ := c.ch.nextOut()
		if !ok {
			return
		}
		if m.close {
			c.sendClose(m.code, m.reason)
			continue
		}
		op := ws.OpText
		if m.typ == websocket.MessageBinary {
			op = ws.OpBinary
		}
		c.out, c.outOff = m, 0
		c.outHdrN = encodeHeader(&c.outHdr, op, len(*m.data))
	}
}

// writeOut writes what is left of out's frame; true once it is all written.
func (c *pollClient) writeOut() bool {
	data := *c.out.data
	var n int
	var err error
	if c.outOff < c.outHdrN {
		n, err = c.write(c.outHdr[c.outOff:c.outHdrN], data)
	} else {
		n, err = c.write(data[c.outOff-c.outHdrN:], nil)
	}
	c.outOff += n
	if c.dead {
		return false
	}
	if c.outOff < c.outHdrN+len(data) {
		return false
	}
	m := c.out
	c.out = outMsg{}
	c.ch.wroteOut(m, err)
	bufpool.Put(m.data)
	return true
}

// write writes a then b with one writev. It returns how much was written;
// a broken connection is torn down (err set), EAGAIN returns no error.
func (c *pollClient) write(a, b []byte) (int, error) {
	if c.tls != nil {
		return c.writeTLS(a, b)
	}
	for {
		c.iov[0].Base = &a[0]
		c.iov[0].SetLen(len(a))
		cnt := 1
		if len(b) > 0 {
			c.iov[1].Base = &b[0]
			c.iov[1].SetLen(len(b))
			cnt = 2
		}
		r, e := netpoll.Writev(c.fd, c.iov[:cnt])
		c.iov[0].Base, c.iov[1].Base = nil, nil
		switch e {
		case nil:
			c.wblocked = r < len(a)+len(b)
			if c.wblocked {
				c.b.m.writeWaits.Inc()
			}
			return r, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			c.wblocked = true
			c.b.m.writeWaits.Inc()
			return 0, nil
		}
		c.gone()
		return 0, e
	}
}

// poller returns the broker's epoll loops, started on first use; Shutdown
// stops them once every client is gone.
func (b *Broker) poller() (*netpoll.Poller, error) {
	b.pollOnce.Do(func() { b.poll, b.pollErr = netpoll.New(runtime.GOMAXPROCS(0)) })
	return b.poll, b.pollErr
}

// stopPoller stops the loops (after every client ended).
func (b *Broker) stopPoller() {
	b.pollOnce.Do(func() {}) // none started from here on
	if b.poll != nil {
		b.poll.Close()
	}
}
