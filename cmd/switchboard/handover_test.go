package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// streamer sends numbered messages without pause on one client connection
// and checks the echoes: first appearances 1, 2, 3, … with no gap;
// repeats (after a handover) only of numbers seen before.
type streamer struct {
	c        *websocket.Conn
	sent     atomic.Int64
	highest  atomic.Int64
	stop     atomic.Bool
	errc     chan error
	progress chan struct{} // cap 1: highest grew
	wg       sync.WaitGroup
}

// maxAhead bounds the messages a streamer has sent and not seen echoed.
const maxAhead = 2000

func startStreamer(t *testing.T, c *websocket.Conn) *streamer {
	s := &streamer{c: c, errc: make(chan error, 2), progress: make(chan struct{}, 1)}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		for n := int64(1); !s.stop.Load(); n++ {
			// At most maxAhead unechoed messages, so that the backlog after
			// the last kill drains quickly.
			for n-s.highest.Load() > maxAhead && !s.stop.Load() {
				<-s.progress
			}
			if err := c.Write(context.Background(), websocket.MessageText, []byte(strconv.FormatInt(n, 10))); err != nil {
				s.errc <- fmt.Errorf("write %d: %w", n, err)
				return
			}
			s.sent.Store(n)
		}
	}()
	go func() {
		defer s.wg.Done()
		for {
			_, p, err := c.Read(context.Background())
			if err != nil {
				if !s.stop.Load() {
					s.errc <- fmt.Errorf("read after %d: %w", s.highest.Load(), err)
				}
				return
			}
			n, err := strconv.ParseInt(string(p), 10, 64)
			if err != nil {
				s.errc <- fmt.Errorf("echo %q: %w", p, err)
				return
			}
			switch h := s.highest.Load(); {
			case n == h+1:
				s.highest.Store(n)
				select {
				case s.progress <- struct{}{}:
				default:
				}
			case n > h+1:
				s.errc <- fmt.Errorf("gap: got %d after %d", n, h)
				return
			}
		}
	}()
	t.Cleanup(func() {
		s.stop.Store(true)
		c.CloseNow()
		select {
		case s.progress <- struct{}{}:
		default:
		}
		s.wg.Wait()
	})
	return s
}

func (s *streamer) check(t *testing.T) {
	t.Helper()
	select {
	case err := <-s.errc:
		t.Fatal(err)
	default:
	}
}

// SIGKILL the active `listen --echo` while clients stream; a new one takes
// the channels over; nothing is lost and no client is disconnected.
func TestListenEchoSurvivesKill(t *testing.T) {
	base := startServe(t)
	l, _ := testutil.StartListen(t, base+"/k/", "--echo")
	var ss []*streamer
	for i := range 3 {
		ss = append(ss, startStreamer(t, dial(t, fmt.Sprintf("%s/k/%d", base, i))))
	}
	progress := func(what string) {
		t.Helper()
		marks := make([]int64, len(ss))
		for i, s := range ss {
			marks[i] = s.highest.Load()
		}
		testutil.Eventually(t, what, func() bool {
			for i, s := range ss {
				s.check(t)
				if s.highest.Load() < marks[i]+50 {
					return false
				}
			}
			return true
		})
	}
	for cycle := range 3 {
		progress(fmt.Sprintf("echoes before kill %d", cycle))
		l.Signal(syscall.SIGKILL)
		l.Wait()
		l, _ = testutil.StartListen(t, base+"/k/", "--echo")
	}
	progress("echoes after the last kill")
	for _, s := range ss {
		s.stop.Store(true)
	}
	for _, s := range ss {
		// The writer stops after at most one more message.
		testutil.WaitFor(t, "every message sent to be echoed", 10*time.Second, func() bool {
			s.check(t)
			return s.highest.Load() >= s.sent.Load() && s.sent.Load() != 0
		})
		t.Logf("client: %d messages echoed in order across 3 kills", s.highest.Load())
	}
}
