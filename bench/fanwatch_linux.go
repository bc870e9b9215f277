//go:build linux

package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fanWatch holds the fan-out's clients and times a fan-out by the
// kernel's receive timestamps (SO_TIMESTAMPNS) on their sockets: a client
// has the message when its socket has the whole frame, whenever the load
// generator gets to read it.
//
// The clients are plain blocking sockets that did the WebSocket handshake
// and are in no poller but the watch's own epoll instance, which nothing
// waits on: the watch looks every few milliseconds and reads only the
// sockets with data. So a frame's arrival wakes no thread of the load
// generator, which stays off the two cores the target fans out on, as
// clients on other machines would; what the figure still includes is the
// receiving side of loopback TCP, which the kernel runs in the sender's
// system call for every target alike.
type fanWatch struct {
	epfd int
	fds  []int
	got  []int   // bytes received per client
	at   []int64 // unix ns the kernel received a client's last byte
}

// dialFan opens n WebSocket clients to url (ws://HOST:PORT/PATH) with up
// to par handshakes at once, spread over the harness's source addresses,
// arms their receive timestamps and registers them with the watch.
func dialFan(ctx context.Context, url string, n, par int) (*fanWatch, error) {
	host, path, ok := strings.Cut(strings.TrimPrefix(url, "ws://"), "/")
	if !ok || !strings.HasPrefix(url, "ws://") {
		return nil, fmt.Errorf("fan-out clients: %q is not a ws:// URL with a path", url)
	}
	ap, err := netip.ParseAddrPort(host)
	if err != nil || !ap.Addr().Is4() {
		return nil, fmt.Errorf("fan-out clients: %q is not an IPv4 address and port", host)
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fan-out watch: epoll_create1: %w", err)
	}
	w := &fanWatch{epfd: epfd, fds: make([]int, n), got: make([]int, n), at: make([]int64, n)}
	for i := range w.fds {
		w.fds[i] = -1
	}
	req := []byte("GET /" + path + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	var next atomic.Int64
	errs := make([]error, par)
	var wg sync.WaitGroup
	for k := range min(par, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fd, err := fanClient(ap, i, req)
				if err == nil {
					err = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(i)})
				}
				if fd >= 0 {
					w.fds[i] = fd
				}
				if err != nil {
					errs[k] = fmt.Errorf("fan-out client %d of %d: %w", i+1, n, err)
					next.Store(int64(n)) // stop the others
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(append(errs, ctx.Err())...); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// fanClient connects from source address number i%sourceAddrs, sends the
// handshake req, reads the 101 response, and arms receive timestamps.
// It returns the socket even with an error (-1 when there is none).
func fanClient(to netip.AddrPort, i int, req []byte) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	// Closed with SO_LINGER 0 (a reset), as the other clients: no TIME_WAIT.
	if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
		return fd, fmt.Errorf("SO_LINGER: %w", err)
	}
	tv := unix.Timeval{Sec: 30}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fd, fmt.Errorf("SO_RCVTIMEO: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, byte(2 + i%sourceAddrs)}}); err != nil {
		return fd, fmt.Errorf("bind: %w", err)
	}
	if err := connectRetrying(fd, &unix.SockaddrInet4{Addr: to.Addr().As4(), Port: int(to.Port())}); err != nil {
		return fd, fmt.Errorf("connect: %w", err)
	}
	// These are blocking system calls on a raw socket: the runtime's
	// preemption signal may interrupt them (EINTR), and they are retried.
	for b := req; len(b) > 0; {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fd, fmt.Errorf("send the handshake: %w", err)
		}
		b = b[n:]
	}
	// Read the response a byte at a time up to its blank line, so that
	// nothing past it is taken from the socket.
	var resp []byte
	var c [1]byte
	for !bytes.HasSuffix(resp, []byte("\r\n\r\n")) {
		if len(resp) > 8<<10 {
			return fd, errors.New("handshake response too long")
		}
		n, err := unix.Read(fd, c[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return fd, fmt.Errorf("read the handshake response (%q so far): %w", resp, errors.Join(err, io.ErrUnexpectedEOF))
		}
		resp = append(resp, c[0])
	}
	if !bytes.HasPrefix(resp, []byte("HTTP/1.1 101 ")) {
		line, _, _ := bytes.Cut(resp, []byte("\r\n"))
		return fd, fmt.Errorf("handshake refused: %s", line)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fd, fmt.Errorf("SO_TIMESTAMPNS: %w", err)
	}
	return fd, nil
}

// wait reads what the clients received until each has frameLen bytes or
// the deadline passes, and returns the kernel's receive time of each
// client's last byte (0: not all of the frame came).
func (w *fanWatch) wait(ctx context.Context, frameLen int, deadline time.Time) []int64 {
	events := make([]unix.EpollEvent, 4096)
	buf := make([]byte, 4096)
	oob := make([]byte, 256)
	pending := len(w.fds)
	for pending > 0 && time.Now().Before(deadline) {
		select {
		case <-time.After(5 * time.Millisecond): // the watch's period: the timestamps are the kernel's
		case <-ctx.Done():
			return w.done(frameLen)
		}
		for {
			n, err := unix.EpollWait(w.epfd, events, 0)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return w.done(frameLen)
			}
			for _, ev := range events[:n] {
				i := int(ev.Fd)
				before := w.got[i]
				w.drain(i, buf, oob)
				if before < frameLen && w.got[i] >= frameLen {
					pending--
				}
			}
			if n < len(events) {
				break
			}
		}
	}
	return w.done(frameLen)
}

// drain reads everything client i's socket holds, keeping the receive
// timestamp of the last data.
func (w *fanWatch) drain(i int, buf, oob []byte) {
	for {
		n, oobn, _, _, err := unix.Recvmsg(w.fds[i], buf, oob, unix.MSG_DONTWAIT)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return
		}
		w.got[i] += n
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
					ts := *(*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
					w.at[i] = ts.Nano()
				}
			}
		}
	}
}

func (w *fanWatch) done(frameLen int) []int64 {
	out := make([]int64, len(w.at))
	for i, t := range w.at {
		if w.got[i] >= frameLen {
			out[i] = t
		}
	}
	return out
}

// close closes the clients (with a reset) and the watch.
func (w *fanWatch) close() {
	for _, fd := range w.fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	unix.Close(w.epfd)
}

// connectRetrying connects the blocking socket fd to sa. A connect
// interrupted by a signal (EINTR) goes on in the kernel: it waits for the
// socket to become writable and takes the outcome from SO_ERROR.
func connectRetrying(fd int, sa unix.Sockaddr) error {
	err := unix.Connect(fd, sa)
	if err != unix.EINTR {
		return err
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	for {
		if _, err := unix.Poll(pfd, 30_000); err != unix.EINTR {
			if err != nil {
				return err
			}
			break
		}
	}
	if pfd[0].Revents == 0 {
		return errors.New("no answer within 30s")
	}
	soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return err
	}
	if soErr != 0 {
		return unix.Errno(soErr)
	}
	return nil
}
