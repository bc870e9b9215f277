//go:build linux

// Package rawconn reads and writes TCP connections with raw system calls
// inside Go's poller (Linux; elsewhere it wraps nothing), for the broker's
// accepted connections and the SDK's service link.
package rawconn

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/switchboard-dev/switchboard/internal/netpoll"
)

// IO reads and writes a plain TCP connection with raw system calls
// made inside Go's poller (syscall.RawConn): the descriptor is held and
// deadlines and closing work as for net.Conn, and a read or write that
// would block waits in the poller as usual, but the call itself does not
// enter the scheduler's system-call state. A service link's writes are
// batches of frames, and on loopback a write also runs the receiver's TCP
// input: long enough for the scheduler's monitor to take the P away and
// wake another thread, and to keep polling every 20 µs instead of backing
// off, which cost the broker a tenth of its CPU per relayed message (and
// the service's SDK as much).
//
// Reads and writes may run at once, as net.Conn allows: reads are taken
// one at a time (rmu), as are writes (wmu), each keeping its state here, so
// that no call allocates.
type IO struct {
	c  net.Conn
	rc syscall.RawConn

	rmu    sync.Mutex
	rp     []byte
	rn     int
	rerr   error
	readFn func(uintptr) bool

	wmu     sync.Mutex
	wp      []byte
	wn      int
	werr    error
	writeFn func(uintptr) bool
}

// New returns c's raw I/O, or nil when c is not a *net.TCPConn.
func New(c net.Conn) *IO {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &IO{c: c, rc: rc}
	r.readFn, r.writeFn = r.doRead, r.doWrite
	return r
}

func (r *IO) doRead(fd uintptr) bool {
	for {
		r.rn, r.rerr = netpoll.Read(int(fd), r.rp)
		if r.rerr != unix.EINTR {
			return r.rerr != unix.EAGAIN
		}
	}
}

// Read reads as net.Conn.Read does.
func (r *IO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.rmu.Lock()
	defer r.rmu.Unlock()
	r.rp = p
	err := r.rc.Read(r.readFn)
	r.rp = nil
	switch {
	case err != nil: // the poller's: closed, or a deadline
		return 0, err
	case r.rerr != nil:
		return 0, r.opErr("read", r.rerr)
	case r.rn == 0:
		return 0, io.EOF
	}
	return r.rn, nil
}

func (r *IO) doWrite(fd uintptr) bool {
	for r.wn < len(r.wp) {
		n, err := netpoll.Write(int(fd), r.wp[r.wn:])
		switch err {
		case nil:
			r.wn += n
		case unix.EINTR:
		case unix.EAGAIN:
			return false // wait until the socket takes more
		default:
			r.werr = err
			return true
		}
	}
	return true
}

// Write writes as net.Conn.Write does.
func (r *IO) Write(p []byte) (int, error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.wp, r.wn, r.werr = p, 0, nil
	err := r.rc.Write(r.writeFn)
	n, werr := r.wn, r.werr
	r.wp = nil
	if err != nil {
		return n, err
	}
	if werr != nil {
		return n, r.opErr("write", werr)
	}
	return n, nil
}

func (r *IO) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: r.c.LocalAddr(), Addr: r.c.RemoteAddr(), Err: os.NewSyscallError(op, err)}
}

// Wrap returns c reading and writing through New(c), or c itself when it
// is not a *net.TCPConn. The result still offers c's SyscallConn and, as
// NetConn, c.
func Wrap(c net.Conn) net.Conn {
	r := New(c)
	if r == nil {
		return c
	}
	return &conn{Conn: c, io: r}
}

type conn struct {
	net.Conn
	io *IO
}

func (c *conn) Read(p []byte) (int, error)  { return c.io.Read(p) }
func (c *conn) Write(p []byte) (int, error) { return c.io.Write(p) }
func (c *conn) NetConn() net.Conn           { return c.Conn }
func (c *conn) SyscallConn() (syscall.RawConn, error) {
	return c.io.rc, nil
}
