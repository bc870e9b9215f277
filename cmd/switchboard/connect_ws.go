package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// clientConn is the WebSocket client connection of `connect` and of
// `listen --to` (to the local server), on gobwas/ws (the frame rules the
// broker's polled transport uses too). Both need a closing handshake that
// coder/websocket does not offer: after sending their close they go on
// reading the server's messages until the server's close
// (coder/websocket's Close discards the messages that arrive meanwhile).
// One goroutine reads (read); writes, from any goroutine, are serialized.
type clientConn struct {
	conn      net.Conn
	rd        *wsutil.Reader // the reader's goroutine only
	wmu       sync.Mutex
	w         *bufio.Writer // guarded by wmu
	closeSent atomic.Bool   // our close frame went out: nothing more is written
	pong      chan struct{} // cap 1: a pong arrived
}

// maxRead bounds a message a clientConn reads (as coder/websocket's
// SetReadLimit did).
const maxRead = 64 << 20

// dialClient opens a WebSocket connection to target with the subprotocols
// offered in preference order and extra handshake headers; tlsConfig (nil:
// the system roots) is for wss://. It returns the subprotocol the server
// chose. It goes through the HTTP proxy the environment names for
// target, if any (proxyNetDial), as net/http's clients do. A server that
// answers the handshake with another status than 101 gives a
// *refusedError.
func dialClient(ctx context.Context, target string, protocols []string, h http.Header, tlsConfig *tls.Config) (*clientConn, string, error) {
	netDial, err := proxyNetDial(target, tlsConfig)
	if err != nil {
		return nil, "", err
	}
	var status string
	d := ws.Dialer{
		Protocols: protocols,
		Header:    ws.HandshakeHeaderHTTP(h),
		TLSConfig: tlsConfig,
		NetDial:   netDial, // nil: a direct connection
		OnStatusError: func(code int, reason []byte, _ io.Reader) {
			status = fmt.Sprintf("%d %s", code, reason)
		},
	}
	conn, br, hs, err := d.Dial(ctx, target)
	if err != nil {
		if status != "" {
			return nil, "", &refusedError{status: status}
		}
		return nil, "", err
	}
	src := io.Reader(conn)
	if br != nil { // bytes the server sent right after its handshake
		src = br
	}
	c := &clientConn{conn: conn, w: bufio.NewWriter(conn), pong: make(chan struct{}, 1)}
	c.rd = &wsutil.Reader{Source: src, State: ws.StateClientSide, MaxMessageSize: maxRead,
		OnIntermediate: func(h ws.Header, r io.Reader) error { // a control frame between fragments
			p, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			return c.control(h.OpCode, p)
		}}
	return c, hs.Protocol, nil
}

// refusedError is a server's answer to the handshake with another status
// than 101 ("404 Not Found").
type refusedError struct{ status string }

func (e *refusedError) Error() string { return e.status }

// write sends one message (or control frame), masked as a client's.
func (c *clientConn) write(op ws.OpCode, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent.Load() {
		return net.ErrClosed
	}
	return c.writeLocked(op, p)
}

func (c *clientConn) writeLocked(op ws.OpCode, p []byte) error {
	if err := wsutil.WriteClientMessage(c.w, op, p); err != nil {
		return err
	}
	return c.w.Flush()
}

// sendClose sends our close frame (once); a 1005 code goes as a close
// frame without a body. Nothing is written after it.
func (c *clientConn) sendClose(code ws.StatusCode, reason string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.closeSent.CompareAndSwap(false, true) {
		return nil
	}
	var body []byte
	if code != ws.StatusNoStatusRcvd {
		body = ws.NewCloseFrameBody(code, reason)
	}
	return c.writeLocked(ws.OpClose, body)
}

// ping sends a ping and waits for its pong (which the reader reports).
func (c *clientConn) ping(ctx context.Context) error {
	select {
	case <-c.pong: // a stale one
	default:
	}
	if err := c.write(ws.OpPing, nil); err != nil {
		return err
	}
	select {
	case <-c.pong:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// read returns the next data message. It answers pings on the way, and
// returns the server's close as a websocket.CloseError, after answering it
// with our own close unless ours went first.
func (c *clientConn) read() (ws.OpCode, []byte, error) {
	for {
		hdr, err := c.rd.NextFrame()
		if err != nil {
			return 0, nil, err
		}
		p, err := io.ReadAll(c.rd) // the whole message, through its continuation frames
		if err != nil {
			return 0, nil, err
		}
		if hdr.OpCode.IsControl() {
			if err := c.control(hdr.OpCode, p); err != nil {
				return 0, nil, err
			}
			continue
		}
		return hdr.OpCode, p, nil
	}
}

func (c *clientConn) control(op ws.OpCode, p []byte) error {
	switch op {
	case ws.OpPing:
		if err := c.write(ws.OpPong, p); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	case ws.OpPong:
		select {
		case c.pong <- struct{}{}:
		default:
		}
		return nil
	}
	code, reason := ws.StatusNoStatusRcvd, ""
	if len(p) >= 2 {
		code, reason = ws.ParseCloseFrameData(p)
	}
	_ = c.sendClose(code, reason) // echo it, unless ours went first
	return websocket.CloseError{Code: websocket.StatusCode(code), Reason: reason}
}

// cutAfter closes the connection if the server has not closed it within d
// of our close; stop cancels it.
func (c *clientConn) cutAfter(d time.Duration, cut *atomic.Bool) (stop func() bool) {
	t := time.AfterFunc(d, func() {
		cut.Store(true)
		c.conn.Close()
	})
	return t.Stop
}
