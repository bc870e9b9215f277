//go:build linux

package broker

import (
	"crypto/tls"
	"errors"
	"io"
	"net"

	"golang.org/x/sys/unix"

	"github.com/switchboard-dev/switchboard/internal/bufpool"
	"github.com/switchboard-dev/switchboard/internal/netpoll"
)

// tlsWire is the connection under a polled client's *tls.Conn: its Read
// is a non-blocking read of the socket, which answers errWouldBlock when
// the socket has nothing (crypto/tls keeps a partial record for the next
// call on a temporary error), and its Write keeps the ciphertext for the
// loop to send (sendWire), so that a full socket never blocks the loop.
// The loop's goroutine is its only user.
type tlsWire struct {
	fd      int
	pending *[]byte // ciphertext not yet written, from off; nil when none
	off     int
}

// tlsChunk bounds the plaintext a polled TLS client's write encrypts at
// once, and so the ciphertext it keeps waiting for the socket.
const tlsChunk = 32 << 10

// errWouldBlock is the wire's "the socket has nothing now": a temporary
// net.Error, which crypto/tls does not keep as the connection's error.
var errWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "tls wire: the socket has no data" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

func (w *tlsWire) Read(p []byte) (int, error) {
	for {
		n, err := netpoll.Read(w.fd, p)
		switch {
		case err == nil && n == 0:
			return 0, io.EOF
		case err == nil:
			return n, nil
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, errWouldBlock
		}
		return 0, err
	}
}

func (w *tlsWire) Write(p []byte) (int, error) {
	if w.pending == nil {
		w.pending = bufpool.Get(len(p))
	}
	for cap(*w.pending)-len(*w.pending) < len(p) {
		w.pending = bufpool.Grow(w.pending)
	}
	*w.pending = append(*w.pending, p...)
	return len(p), nil
}

// free gives back the ciphertext buffer (the connection ended).
func (w *tlsWire) free() {
	bufpool.Put(w.pending)
	w.pending, w.off = nil, 0
}

// polledTLS sets c up to run conn, a TLS connection whose handshake is
// done, on the loop: it returns the connection under it (closed at the
// end, without a close_notify through the wire: as for a plain client, the
// WebSocket close is the goodbye) after detouring it to c's wire.
func (c *pollClient) polledTLS(conn *tls.Conn) (net.Conn, error) {
	raw := conn.NetConn()
	d, ok := raw.(Detourer)
	if !ok {
		return nil, errors.New("the connection under TLS cannot be detoured (not the server's listener's)")
	}
	fd, err := connFD(raw)
	if err != nil {
		return nil, err
	}
	c.fd, c.tls, c.wire = fd, conn, &tlsWire{fd: fd}
	d.Detour(c.wire)
	return raw, nil
}

// readTLS reads decrypted bytes into p, as netpoll.Read would read plain
// ones: (0, EAGAIN) when the socket has no more, (0, nil) at the end.
func (c *pollClient) readTLS(p []byte) (int, error) {
	n, err := c.tls.Read(p)
	switch {
	case n > 0:
		return n, nil // an error after data (an alert) comes again with the next read
	case errors.Is(err, errWouldBlock):
		return 0, unix.EAGAIN
	case err == nil || errors.Is(err, io.EOF):
		return 0, nil
	}
	c.b.log.Debug("tls client connection failed", "channel", c.ch.id, "err", err)
	return 0, err
}

// writeTLS encrypts a then b (up to tlsChunk bytes, in one record where
// they fit) and sends the ciphertext, after what is left of the last. It
// returns how much of a and b it took: 0 while the wire still holds
// ciphertext the socket did not take (wblocked is then set).
func (c *pollClient) writeTLS(a, b []byte) (int, error) {
	if !c.sendWire() {
		return 0, nil
	}
	n := min(len(a)+len(b), tlsChunk)
	var err error
	if len(b) == 0 || len(a) >= n {
		_, err = c.tls.Write(a[:n])
	} else { // a frame's header and payload: one record, not two
		scratch := bufpool.Get(n)
		*scratch = append(append(*scratch, a...), b[:n-len(a)]...)
		_, err = c.tls.Write(*scratch)
		bufpool.Put(scratch)
	}
	if err != nil { // cannot happen with the wire's Write: it only keeps bytes
		c.gone()
		return 0, err
	}
	c.sendWire()
	return n, nil
}

// sendWire writes the ciphertext the wire holds; true once it holds none.
// A socket that takes less sets wblocked (EPOLLOUT resumes); a broken one
// tears the connection down.
func (c *pollClient) sendWire() bool {
	w := c.wire
	for w.pending != nil {
		b := (*w.pending)[w.off:]
		n, err := netpoll.Write(c.fd, b)
		switch err {
		case nil:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			c.wblocked = true
			c.b.m.writeWaits.Inc()
			return false
		default:
			c.gone()
			return false
		}
		w.off += n
		if n < len(b) {
			c.wblocked = true
			c.b.m.writeWaits.Inc()
			return false
		}
		w.free()
	}
	c.wblocked = false
	return true
}
