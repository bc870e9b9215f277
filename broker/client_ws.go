package broker

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/internal/bufpool"
)

// wsClient runs a client connection on coder/websocket: the goroutine that
// called Serve reads, a second goroutine writes, for the life of the
// connection; a third lives while a ping waits for its pong.
type wsClient struct {
	b       *Broker
	ch      *Channel
	conn    *websocket.Conn
	raw     net.Conn      // the hijacked connection under conn, to cut a stalled close; may be nil
	hold    *CloseHold    // raw, when it holds back the client's close frame; may be nil
	wakeC   chan struct{} // cap 1: the channel has messages for the writer
	resumeC chan struct{} // cap 1: the channel took the message it held
	pinging atomic.Bool
	closing atomic.Bool // the client's close frame is held: no pings (its pong could not be read)
}

func newWSClient(b *Broker, ch *Channel, conn *websocket.Conn, raw net.Conn) *wsClient {
	c := &wsClient{b: b, ch: ch, conn: conn, raw: raw, wakeC: make(chan struct{}, 1), resumeC: make(chan struct{}, 1)}
	if h, ok := raw.(*CloseHold); ok {
		c.hold = h
		h.setOnClose(c.clientClosing)
	}
	return c
}

// clientClosing is told by the CloseHold that the client sent its close
// frame, which it holds: the service gets the Close, and the frame goes to
// the library (which answers it) when the service's Close arrives or
// after the close timeout.
func (c *wsClient) clientClosing(code websocket.StatusCode, reason string) {
	c.closing.Store(true)
	c.ch.clientClosing(code, reason)
	time.AfterFunc(c.b.cfg.Limits.CloseTimeout, func() {
		c.ch.clientEnded() // before the library answers: a client that reconnects finds its channel gone
		c.hold.Release()
	})
}

func (c *wsClient) wake() {
	select {
	case c.wakeC <- struct{}{}:
	default:
	}
}

func (c *wsClient) resume() {
	select {
	case c.resumeC <- struct{}{}:
	default:
	}
}

func (c *wsClient) abort() {
	c.conn.CloseNow()
	if c.raw != nil {
		c.raw.Close() // CloseNow waits instead of closing while a close handshake runs
	}
}

// ping runs one ping in a goroutine of its own, so that the keepalive
// sends every ping at once and a silent client is cut after timeout
// whatever the number of silent clients.
func (c *wsClient) ping(timeout time.Duration) {
	if c.closing.Load() || !c.pinging.CompareAndSwap(false, true) {
		return
	}
	started := c.b.track(func() {
		defer c.pinging.Store(false)
		ctx, cancel := context.WithTimeout(c.b.stopCtx, timeout)
		defer cancel()
		err := c.conn.Ping(ctx)
		if err == nil || c.b.stopCtx.Err() != nil {
			return
		}
		c.ch.mu.Lock()
		blocked := c.ch.blocked // its pong may wait unread behind a held message
		c.ch.mu.Unlock()
		if !blocked {
			c.b.log.Debug("client keepalive failed", "channel", c.ch.id, "err", err)
			c.abort() // the reader reports 1006 to the service
		}
	})
	if !started {
		c.pinging.Store(false)
	}
}

// run relays until the connection ends.
func (c *wsClient) run() {
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop(stop)
	}()
	c.readLoop()
	close(stop)
	<-writerDone
	c.conn.CloseNow() // after a close handshake, a no-op; otherwise the connection is not left open
}

// readLoop reads client messages into pooled buffers until the client goes
// or the channel closes.
func (c *wsClient) readLoop() {
	max := c.b.cfg.Limits.MaxMessage
	for {
		typ, r, err := c.conn.Reader(ioCtx)
		if err != nil {
			c.readFailed(err)
			return
		}
		data, err := bufpool.ReadAll(r, bufpool.Get(2048))
		if err != nil {
			bufpool.Put(data)
			c.readFailed(err)
			return
		}
		binary := typ == websocket.MessageBinary
		if code, reason := checkMessage(binary, *data, max); code != 0 {
			bufpool.Put(data)
			c.ch.clientClosed(code, reason)
			c.closeLinger(code, reason)
			return
		}
		switch c.ch.received(messageFlags(binary), data) {
		case recvClosed:
			return // the service or broker closed the channel; the writer closes the client
		case recvHeld:
			select {
			case <-c.resumeC:
			case <-c.b.shutdown:
				return
			}
		}
	}
}

// readFailed tells the service how the client's connection ended.
func (c *wsClient) readFailed(err error) {
	var ce websocket.CloseError
	switch {
	case errors.As(err, &ce):
		// The library answered the client's close (coder/websocket writes
		// the answer before Read returns; a CloseHold under it made it wait
		// for the service's Close or the close timeout).
		c.ch.clientClosed(ce.Code, ce.Reason)
	case errors.Is(err, websocket.ErrMessageTooBig): // the library sent 1009
		c.ch.clientClosed(websocket.StatusMessageTooBig, "message too big")
		c.closeLinger(websocket.StatusMessageTooBig, "message too big")
	case connGone(err):
		c.conn.CloseNow()
		c.ch.clientClosed(websocket.StatusAbnormalClosure, "")
	default: // the library found a protocol violation, and mostly sent 1002 already
		_, reason := closeFrame(websocket.StatusProtocolError, "protocol error: "+err.Error())
		c.ch.clientClosed(websocket.StatusProtocolError, reason)
		c.closeLinger(websocket.StatusProtocolError, "protocol error")
	}
}

// closeLinger closes a client that broke a rule with code (unless a close
// frame went out already) and finishes the closing handshake, discarding
// what the client still sends, so that the client reads the close frame
// before the connection closes; a client that does not answer within
// lingerTime is cut.
func (c *wsClient) closeLinger(code websocket.StatusCode, reason string) {
	var cut *time.Timer
	if c.raw != nil {
		cut = time.AfterFunc(lingerTime, func() { c.raw.Close() })
	}
	_ = c.conn.Close(code, reason)
	if cut != nil {
		cut.Stop()
	}
}

// writeLoop is the client connection's only writer. It drains the queue on
// each wake-up and returns once stop is closed and nothing is left to
// write, or the client is gone.
func (c *wsClient) writeLoop(stop <-chan struct{}) {
	for {
		select {
		case <-c.wakeC:
		case <-stop:
			// The reader ended. What is still queued (a close frame from
			// the service above all) is written unless the client is gone.
			c.drain()
			c.ch.outDone()
			return
		}
		if !c.drain() {
			return
		}
	}
}

// drain writes queued messages until the queue is empty. It returns false
// when the client is gone.
func (c *wsClient) drain() bool {
	for {
		m, ok, gone := c.ch.nextOut()
		if !ok {
			return !gone
		}
		if m.close {
			if c.hold != nil {
				if c.closing.Load() {
					// This close answers the client's: the library answers it
					// (echoing the client's code) once it reads the held frame.
					c.ch.clientEnded()
					c.hold.Release()
					continue
				}
				c.hold.Release() // a close frame the client sends in answer goes to the library at once
			}
			code, reason := closeFrame(m.code, m.reason)
			_ = c.conn.Close(code, reason)
			continue
		}
		err := c.conn.Write(ioCtx, m.typ, *m.data)
		c.ch.wroteOut(m, err)
		bufpool.Put(m.data)
	}
}
