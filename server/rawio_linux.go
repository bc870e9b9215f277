//go:build linux

package server

import (
	"io"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/switchboard-dev/switchboard/internal/netpoll"
)

// rawIO reads and writes a plain TCP connection with raw system calls
// made inside Go's poller (syscall.RawConn): the descriptor is held and
// deadlines and closing work as for net.Conn, and a read or write that
// would block waits in the poller as usual, but the call itself does not
// enter the scheduler's system-call state. A service link's writes are
// batches of frames, and on loopback a write also runs the receiver's TCP
// input: long enough for the scheduler's monitor to take the P away and
// wake another thread, and to keep polling every 20 µs instead of backing
// off, which cost the broker a tenth of its CPU per relayed message.
//
// One read and one write may run at once (as net.Conn allows); each keeps
// its state here, so that no call allocates.
type rawIO struct {
	c  net.Conn
	rc syscall.RawConn

	rp     []byte
	rn     int
	rerr   error
	readFn func(uintptr) bool

	wp      []byte
	wn      int
	werr    error
	writeFn func(uintptr) bool
}

// newRawIO returns c's raw I/O, or nil when c is not a *net.TCPConn.
func newRawIO(c net.Conn) *rawIO {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &rawIO{c: c, rc: rc}
	r.readFn, r.writeFn = r.doRead, r.doWrite
	return r
}

func (r *rawIO) doRead(fd uintptr) bool {
	for {
		r.rn, r.rerr = netpoll.Read(int(fd), r.rp)
		if r.rerr != unix.EINTR {
			return r.rerr != unix.EAGAIN
		}
	}
}

func (r *rawIO) read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
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

func (r *rawIO) doWrite(fd uintptr) bool {
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

func (r *rawIO) write(p []byte) (int, error) {
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

func (r *rawIO) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: r.c.LocalAddr(), Addr: r.c.RemoteAddr(), Err: os.NewSyscallError(op, err)}
}
