//go:build linux

// Package netpoll runs epoll loops for connections that should hold no
// goroutine while idle. Each loop is one goroutine with its own epoll
// instance; a descriptor belongs to one loop, and every callback for it
// (readiness and queued work) runs on that loop's goroutine, one at a time,
// so a handler needs no lock of its own for its socket.
//
// Descriptors are registered edge-triggered: a handler reads (and writes)
// until EAGAIN, and gets a new event when more data (or room) arrives.
//
// A loop waits in Go's own network poller, not in a blocking epoll_wait:
// its epoll descriptor is itself registered with the runtime (an epoll
// instance is readable while it has events), and the loop takes its events
// with a non-blocking epoll_wait once the runtime says there are some. An
// idle loop is then a parked goroutine that holds no thread and no P, so the
// scheduler does not have to take a P back from a thread blocked in
// epoll_wait (and wake another thread) before other goroutines, such as a
// service link's reader and writer, can run. Where the runtime cannot poll
// the epoll descriptor, the loop blocks in epoll_wait instead.
package netpoll

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Handler is what a loop calls for a registered descriptor.
type Handler interface {
	// Ready is called when the descriptor may be read, written, or has hung
	// up (events is the epoll mask). It may be called spuriously.
	Ready(events uint32)
	// Run is called for each Schedule.
	Run()
}

// Poller is a set of loops.
type Poller struct {
	loops  []*loop
	next   atomic.Uint32
	wg     sync.WaitGroup
	closed atomic.Bool
}

type loop struct {
	p     *Poller
	epfd  int
	epf   *os.File        // owns epfd
	eprc  syscall.RawConn // epf's, when Go's poller has it: the loop waits there; nil: in epoll_wait
	evfd  int             // eventfd: wakes the loop for queued work
	mu    sync.Mutex
	descs map[int32]*Desc // guarded by mu
	queue []*Desc         // guarded by mu: descriptors whose Run is due
	spare []*Desc         // the loop's own: the queue it drains
	woken atomic.Bool     // an eventfd write is pending
	busy  atomic.Bool     // the loop is awake and runs the queue before it waits again: no wake needed; set false under mu
	shut  bool            // guarded by mu: evfd is closed (or about to be)
}

// Desc is a registered descriptor.
type Desc struct {
	fd     int
	l      *loop
	h      Handler
	queued atomic.Bool
}

// New starts n loops.
func New(n int) (*Poller, error) {
	p := &Poller{}
	for i := 0; i < n; i++ {
		l, err := newLoop(p)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.loops = append(p.loops, l)
	}
	for _, l := range p.loops {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			l.run()
		}()
	}
	return p, nil
}

func newLoop(p *Poller) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("netpoll: epoll_create1: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("netpoll: eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, fmt.Errorf("netpoll: register eventfd: %w", err)
	}
	l := &loop{p: p, epfd: epfd, evfd: evfd, descs: map[int32]*Desc{}}
	l.pollable()
	return l, nil
}

// pollable hands the epoll descriptor to an os.File, which registers it
// with Go's poller when the runtime takes it (then the loop waits there);
// otherwise the loop blocks in epoll_wait. The File owns the descriptor
// from here: Close closes it.
func (l *loop) pollable() {
	nonblock := unix.SetNonblock(l.epfd, true) == nil
	l.epf = os.NewFile(uintptr(l.epfd), "epoll")
	if !nonblock {
		return
	}
	// Only a file in Go's poller takes a deadline.
	if err := l.epf.SetReadDeadline(time.Time{}); err != nil {
		_ = unix.SetNonblock(l.epfd, false)
		return
	}
	if rc, err := l.epf.SyscallConn(); err == nil {
		l.eprc = rc
	}
}

// Close stops the loops and waits for them. Descriptors still registered
// get no more callbacks.
func (p *Poller) Close() {
	if p.closed.Swap(true) {
		return
	}
	for _, l := range p.loops {
		l.mu.Lock()
		l.woken.Store(false)
		l.wakeLocked()
		l.mu.Unlock()
	}
	p.wg.Wait()
	for _, l := range p.loops {
		l.mu.Lock()
		l.shut = true
		l.queue = nil
		l.mu.Unlock()
		l.epf.Close()
		unix.Close(l.evfd)
	}
}

// ErrClosed is returned by Add after Close.
var ErrClosed = errors.New("netpoll: closed")

// Add registers fd (non-blocking) for reading and writing, edge-triggered,
// with its own loop. read false registers it for writing only.
func (p *Poller) Add(fd int, h Handler, read bool) (*Desc, error) {
	if p.closed.Load() {
		return nil, ErrClosed
	}
	l := p.loops[int(p.next.Add(1))%len(p.loops)]
	d := &Desc{fd: fd, l: l, h: h}
	l.mu.Lock()
	l.descs[int32(fd)] = d
	l.mu.Unlock()
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: mask(read), Fd: int32(fd)}); err != nil {
		l.mu.Lock()
		delete(l.descs, int32(fd))
		l.mu.Unlock()
		return nil, fmt.Errorf("netpoll: epoll_ctl add: %w", err)
	}
	return d, nil
}

func mask(read bool) uint32 {
	m := uint32(unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET)
	if read {
		m |= unix.EPOLLIN
	}
	return m
}

// SetRead turns polling for readability on or off. Turning it on while
// data is waiting brings a Ready call.
func (d *Desc) SetRead(on bool) error {
	if err := unix.EpollCtl(d.l.epfd, unix.EPOLL_CTL_MOD, d.fd, &unix.EpollEvent{Events: mask(on), Fd: int32(d.fd)}); err != nil {
		return fmt.Errorf("netpoll: epoll_ctl mod: %w", err)
	}
	return nil
}

// Remove unregisters the descriptor; call it on the loop's goroutine
// (from Ready or Run) before closing the descriptor.
func (d *Desc) Remove() {
	_ = unix.EpollCtl(d.l.epfd, unix.EPOLL_CTL_DEL, d.fd, nil)
	d.l.mu.Lock()
	if d.l.descs[int32(d.fd)] == d {
		delete(d.l.descs, int32(d.fd))
	}
	d.l.mu.Unlock()
}

// Schedule has the loop call the handler's Run soon, once however often it
// is scheduled before that. It never blocks and may be called from any
// goroutine.
func (d *Desc) Schedule() {
	if d.queued.Swap(true) {
		return
	}
	l := d.l
	l.mu.Lock()
	if !l.shut {
		l.queue = append(l.queue, d)
		if !l.busy.Load() {
			l.wakeLocked()
		}
	}
	l.mu.Unlock()
}

// wakeLocked makes epoll_wait return; l.mu is held, so that evfd is not
// closed (and its number reused) under the write.
func (l *loop) wakeLocked() {
	if l.shut || l.woken.Swap(true) {
		return
	}
	var one = [8]byte{1}
	_, _ = Write(l.evfd, one[:])
}

func (l *loop) run() {
	events := make([]unix.EpollEvent, 256)
	if l.eprc == nil {
		l.runBlocking(events)
		return
	}
	// serve takes the events there are, without waiting, handles them and
	// the queue, and again while a batch filled events; then false has Go's
	// poller park the goroutine until the epoll descriptor is readable
	// (events that came meanwhile have made it so). Working inside one
	// Read spares the epoll_wait that would find nothing before parking.
	done := false
	serve := func(uintptr) bool {
		for {
			n, err := waitNow(l.epfd, events)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				done = true // the epoll descriptor is gone
				return true
			}
			l.handle(events[:n])
			if l.p.closed.Load() {
				done = true
				return true
			}
			if n < len(events) {
				return false
			}
		}
	}
	for !done && !l.p.closed.Load() {
		if err := l.eprc.Read(serve); err != nil {
			return // the epoll descriptor is gone
		}
	}
}

// runBlocking is run for an epoll descriptor Go's poller does not take.
func (l *loop) runBlocking(events []unix.EpollEvent) {
	for !l.p.closed.Load() {
		n, err := unix.EpollWait(l.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return // the epoll descriptor is gone
		}
		l.handle(events[:n])
	}
}

// handle calls the handlers of events, then runs the queue.
func (l *loop) handle(events []unix.EpollEvent) {
	var drain [8]byte
	l.busy.Store(true)
	for i := range events {
		ev := &events[i]
		if int(ev.Fd) == l.evfd {
			_, _ = Read(l.evfd, drain[:])
			l.woken.Store(false)
			continue
		}
		l.mu.Lock()
		d := l.descs[ev.Fd]
		l.mu.Unlock()
		if d != nil {
			d.h.Ready(ev.Events)
		}
	}
	l.runQueue()
}

// runQueue calls Run for every descriptor scheduled so far, and for those
// scheduled meanwhile (Schedule does not wake a busy loop).
func (l *loop) runQueue() {
	for {
		l.mu.Lock()
		q := l.queue
		if len(q) == 0 {
			l.busy.Store(false) // under mu: a Schedule from here on wakes the loop
			l.mu.Unlock()
			return
		}
		l.queue = l.spare[:0]
		l.mu.Unlock()
		for i, d := range q {
			d.queued.Store(false)
			d.h.Run()
			q[i] = nil
		}
		l.spare = q
	}
}

// Read, Write and Writev are the system calls on a non-blocking descriptor,
// made raw: they never block, so the goroutine keeps its P instead of
// entering and leaving a system call, and the scheduler never hands the P
// to another thread while one runs (on loopback a write also runs the
// receiver's TCP input, long enough for that). n is 0 on an error.
func Read(fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// Write: see Read.
func Write(fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	r, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// Writev: see Read.
func Writev(fd int, iov []unix.Iovec) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// waitNow takes the events epfd has, without waiting (epoll_pwait with a
// zero timeout, raw as in Read).
func waitNow(epfd int, events []unix.EpollEvent) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
