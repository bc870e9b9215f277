// Package streamtest holds helpers for handover tests: a client that
// streams numbered messages through an echo service and checks that every
// number comes back in order with no gap, and an echo service that runs as a
// separate process so that tests can SIGKILL it.
package streamtest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/sdk"
)

const echoEnv = "SB_TEST_ECHO_SERVICE"

// MaybeRunEchoProcess runs the echo service and exits when this process was
// started by StartEchoProcess; call it first in TestMain.
func MaybeRunEchoProcess() {
	if u := os.Getenv(echoEnv); u != "" {
		RunEchoProcess(u)
		os.Exit(0)
	}
}

// Mark remembers how far the stream got, for Resumed.
func (s *Streamer) Mark() {
	s.mu.Lock()
	s.mark = s.highest
	s.mu.Unlock()
}

// Err is why the stream failed, or nil.
func (s *Streamer) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// RunEchoProcess attaches an SDK echo service to scopeURL, prints
// "attached", and serves until killed.
func RunEchoProcess(scopeURL string) {
	ctx := context.Background()
	l, err := sdk.Listen(ctx, scopeURL, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	fmt.Println("attached")
	for {
		req, err := l.Accept(ctx)
		if err != nil {
			os.Exit(0)
		}
		ch, err := req.Accept(ctx, "", nil)
		if err != nil {
			continue
		}
		go func() {
			for {
				typ, p, err := ch.Read(ctx)
				if err != nil || ch.Write(ctx, typ, p) != nil {
					return
				}
			}
		}()
	}
}

// StartEchoProcess runs this test binary as an echo service process
// attached to scopeURL (the test's TestMain calls MaybeRunEchoProcess).
func StartEchoProcess(t *testing.T, scopeURL string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), echoEnv+"="+scopeURL)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 9)
	if _, err := out.Read(buf); err != nil || string(buf[:8]) != "attached" {
		t.Fatalf("echo process did not attach: %q %v", buf, err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// Streamer sends numbered messages without pause and records what comes
// back; it fails on any gap, reordering, or connection loss.
type Streamer struct {
	c       *websocket.Conn
	mu      sync.Mutex
	sent    int
	highest int // highest number seen back, first appearances strictly increasing
	mark    int // highest when the test last marked it
	dups    int // numbers that came back again
	err     error
	done    chan struct{}
}

// Stream starts streaming on c until the test ends.
func Stream(t *testing.T, c *websocket.Conn) *Streamer {
	s := &Streamer{c: c, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { // writer
		for i := 1; ; i++ {
			select {
			case <-ctx.Done():
				return
			default:
			}
			if err := c.Write(ctx, websocket.MessageText, []byte(strconv.Itoa(i))); err != nil {
				return // the reader reports why the connection ended
			}
			s.mu.Lock()
			s.sent = i
			s.mu.Unlock()
			if i%50 == 0 {
				time.Sleep(time.Millisecond) // keep the stream steady rather than a flood
			}
		}
	}()
	go func() { // reader
		defer close(s.done)
		for {
			_, p, err := c.Read(ctx)
			if err != nil {
				if ctx.Err() == nil {
					s.fail(fmt.Errorf("read: %w", err))
				}
				return
			}
			n, _ := strconv.Atoi(string(p))
			s.mu.Lock()
			switch {
			case n == s.highest+1:
				s.highest = n
			case n <= s.highest: // a duplicate of a message the lost instance had not acknowledged
				s.dups++
			default:
				s.mu.Unlock()
				s.fail(fmt.Errorf("gap: got %d after %d", n, s.highest))
				return
			}
			s.mu.Unlock()
		}
	}()
	return s
}

// Resumed reports whether more than 100 numbers came back since Mark.
func (s *Streamer) Resumed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.highest > s.mark+100
	return r
}

// Duplicates is how many numbers came back more than once: what an
// instance had not acknowledged is sent again after a handover or a loss,
// and only then.
func (s *Streamer) Duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dups
}

func (s *Streamer) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

// Progress returns the last number sent, the highest echoed back in
// order, and why the stream failed, if it did.
func (s *Streamer) Progress() (sent, highest int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent, s.highest, s.err
}

// WaitProgress waits until every streamer got back at least more new
// numbers, failing the test on a stream error or after 30 s.
func WaitProgress(t *testing.T, ss []*Streamer, more int) {
	t.Helper()
	base := make([]int, len(ss))
	for i, s := range ss {
		_, base[i], _ = s.Progress()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		for i, s := range ss {
			_, h, err := s.Progress()
			if err != nil {
				t.Fatalf("stream %d: %v", i, err)
			}
			if h < base[i]+more {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("streams made no progress for 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Echo attaches an in-process SDK echo service to scopeURL until the test
// ends: every client (and every channel handed over to it) gets its
// messages back, prefixed with tag+":" when tag is not empty.
func Echo(t testing.TB, scopeURL, tag string) *sdk.Listener {
	t.Helper()
	return echo(t, scopeURL, tag, tag, nil)
}

// EchoTLS is Echo without a tag on a wss:// broker, its link dialled with
// conf (the test CA's roots).
func EchoTLS(t testing.TB, scopeURL string, conf *tls.Config) *sdk.Listener {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = conf
	return echo(t, scopeURL, "", "", &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
}

// EchoLabelled is Echo without a prefix, for Stream, from an instance
// labelled version.
func EchoLabelled(t testing.TB, scopeURL, version string) *sdk.Listener {
	t.Helper()
	return echo(t, scopeURL, version, "", nil)
}

func echo(t testing.TB, scopeURL, version, tag string, dial *websocket.DialOptions) *sdk.Listener {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l, err := sdk.Listen(ctx, scopeURL, &sdk.ListenOptions{Version: version, Dial: dial})
	if err != nil {
		cancel()
		t.Fatalf("echo service on %s: %v", scopeURL, err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); _ = l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			req, err := l.Accept(ctx)
			if err != nil {
				return
			}
			ch, err := req.Accept(ctx, "", nil)
			if err != nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					typ, p, err := ch.Read(ctx)
					if err != nil {
						return
					}
					if tag != "" {
						p = append([]byte(tag+":"), p...)
					}
					if ch.Write(ctx, typ, p) != nil {
						return
					}
				}
			}()
		}
	}()
	return l
}
