//go:build linux

package server

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// rawPair returns a connection through the limited listener (with raw I/O)
// and its peer.
func rawPair(t *testing.T) (*limitConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	l := (&Server{}).Listener(ln, ListenerLimits{}).(*limitListener)
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	lc := c.(*limitConn)
	if lc.raw == nil {
		t.Fatal("a plain TCP connection got no raw I/O")
	}
	return lc, peer
}

// TestRawIOBehavesAsNetConn: reads and writes with raw system calls keep
// net.Conn's contract: data both ways (a write larger than the socket
// buffer waits for the reader), a read deadline, EOF once the peer
// closes, net.ErrClosed after Close, and no allocation per call.
func TestRawIOBehavesAsNetConn(t *testing.T) {
	c, peer := rawPair(t)

	big := make([]byte, 8<<20) // more than the socket buffers hold: the write must wait in the poller
	for i := range big {
		big[i] = byte(i)
	}
	done := make(chan error, 1)
	go func() {
		n, err := c.Write(big)
		if err == nil && n != len(big) {
			err = errors.New("short write")
		}
		done <- err
	}()
	got := make([]byte, len(big))
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatalf("peer read: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("raw write of 8 MiB: %v", err)
	}
	for i := range got {
		if got[i] != big[i] {
			t.Fatalf("byte %d differs", i)
		}
	}

	if _, err := peer.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := io.ReadAtLeast(c, buf, 5)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("raw read: %q, %v", buf[:n], err)
	}

	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	_ = c.SetReadDeadline(time.Time{})

	msg := []byte("x")
	if allocs := testing.AllocsPerRun(200, func() {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(peer, buf[:1]); err != nil {
			t.Fatal(err)
		}
		if _, err := peer.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(buf[:1]); err != nil {
			t.Fatal(err)
		}
	}); allocs > 0 {
		t.Errorf("%v allocations per raw write and read (and the peer's)", allocs)
	}

	// Two reads at once (net/http's transport and server do that): each
	// gets its own bytes.
	got2 := make(chan string, 2)
	for range 2 {
		go func() {
			b := make([]byte, 1)
			n, err := c.Read(b)
			if err != nil {
				got2 <- err.Error()
				return
			}
			got2 <- string(b[:n])
		}()
	}
	if _, err := peer.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	first := <-got2
	if _, err := peer.Write([]byte("b")); err != nil {
		t.Fatal(err)
	}
	if both := first + <-got2; both != "ab" {
		t.Fatalf("two concurrent reads got %q, want a then b", both)
	}

	peer.Close()
	if _, err := c.Read(buf); err != io.EOF {
		t.Fatalf("read after the peer closed: %v, want io.EOF", err)
	}
	c.Close()
	if _, err := c.Write(msg); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v, want net.ErrClosed", err)
	}
}
