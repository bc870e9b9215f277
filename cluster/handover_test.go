package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/sdk"
)

// TestMain lets the test binary run as a service process (an SDK echo
// service) that the tests kill with SIGKILL.
func TestMain(m *testing.M) {
	if u := os.Getenv("SB_TEST_ECHO_SERVICE"); u != "" {
		runEchoProcess(u)
		return
	}
	os.Exit(m.Run())
}

func runEchoProcess(scopeURL string) {
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

// startEchoProcess runs an echo service process attached through node n.
func startEchoProcess(t *testing.T, n *node, scope string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SB_TEST_ECHO_SERVICE="+n.ws+scope)
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

// streamer sends numbered messages without pause and records what comes
// back; it fails on any gap, reordering, or connection loss.
type streamer struct {
	c       *websocket.Conn
	mu      sync.Mutex
	sent    int
	highest int // highest number seen back, first appearances strictly increasing
	mark    int // highest when the test last marked it
	err     error
	done    chan struct{}
}

func stream(t *testing.T, c *websocket.Conn) *streamer {
	s := &streamer{c: c, done: make(chan struct{})}
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

// resumed reports whether numbers came back since the last call... of
// mark; tests call mark before an outage.
func (s *streamer) resumed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.highest > s.mark+100
	return r
}

func (s *streamer) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

func (s *streamer) progress() (sent, highest int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent, s.highest, s.err
}

// waitProgress waits until every streamer got back at least `more` new
// numbers.
func waitProgress(t *testing.T, ss []*streamer, more int) {
	t.Helper()
	base := make([]int, len(ss))
	for i, s := range ss {
		_, base[i], _ = s.progress()
	}
	waitFor(t, "streams to make progress", 30*time.Second, func() bool {
		for i, s := range ss {
			_, h, err := s.progress()
			if err != nil {
				t.Fatalf("stream %d: %v", i, err)
			}
			if h < base[i]+more {
				return false
			}
		}
		return true
	})
}

// TestKillCycleAcrossNodes: clients on every node stream numbered messages
// to a service; the service process is SIGKILLed and a new one attaches to
// another node, several times. Every client gets every number, in order,
// and no client connection breaks.
func TestKillCycleAcrossNodes(t *testing.T) {
	nodes := threeNodes(t, broker.Limits{})
	proc := startEchoProcess(t, nodes[2], "/kc/")
	var ss []*streamer
	for i, n := range nodes {
		for j := 0; j < 2; j++ {
			ss = append(ss, stream(t, dial(t, n, fmt.Sprintf("/kc/c%d-%d", i, j))))
		}
	}
	waitProgress(t, ss, 200)
	for cycle := 0; cycle < 4; cycle++ {
		if err := proc.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = proc.Wait()
		proc = startEchoProcess(t, nodes[cycle%3], "/kc/") // a different node each time
		waitProgress(t, ss, 200)
	}
	for i, s := range ss {
		sent, h, err := s.progress()
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		t.Logf("stream %d: sent %d, echoed up to %d", i, sent, h)
	}
}

// TestNodeLossUnderLoad: a node dies while clients on the others stream
// through a service on a surviving node; their streams go on untouched,
// and the service's client list drops the dead node's clients.
func TestNodeLossUnderLoad(t *testing.T) {
	nodes := threeNodes(t, broker.Limits{})
	l, _ := echo(t, nodes[0], "/nl/", "")
	var survivors []*streamer
	for _, n := range nodes[:2] {
		survivors = append(survivors, stream(t, dial(t, n, "/nl/s")))
	}
	doomed := dial(t, nodes[2], "/nl/d")
	if got := roundTrip(t, doomed, "x"); got != "x" {
		t.Fatalf("got %q", got)
	}
	waitProgress(t, survivors, 100)
	nodes[2].kill()
	waitProgress(t, survivors, 300)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitFor(t, "the lost node's client to leave the list", 10*time.Second, func() bool {
		list, err := l.Clients(ctx)
		return err == nil && len(list) == 2
	})
}

// TestNATSRestart: NATS goes away mid-stream and comes back on the same
// address. Local traffic never stops; the node reports the outage
// (Ready, hence /readyz); a cross-node stream resumes with nothing lost,
// or, if NATS lost frames of it in the restart, is closed with 1012, never
// silently skipped; cross-node connections work again afterwards.
func TestNATSRestart(t *testing.T) {
	port := freePort(t)
	ns := startNATS(t, port)
	url := ns.ClientURL()
	n1 := startNode(t, "r1", url, broker.Limits{})
	n2 := startNode(t, "r2", url, broker.Limits{})
	waitFor(t, "peers", 10*time.Second, func() bool { return len(n1.c.Peers()) == 1 && len(n2.c.Peers()) == 1 })
	echo(t, n2, "/nr/", "")
	local := stream(t, dial(t, n2, "/nr/local"))
	remote := stream(t, dial(t, n1, "/nr/remote"))
	waitProgress(t, []*streamer{local, remote}, 100)

	remote.mu.Lock()
	remote.mark = remote.highest
	remote.mu.Unlock()
	ns.Shutdown()
	ns.WaitForShutdown()
	waitFor(t, "node to notice", 10*time.Second, func() bool { return n1.c.Ready() != nil })
	waitProgress(t, []*streamer{local}, 200) // local traffic goes on without NATS

	startNATS(t, port)
	waitFor(t, "node to reconnect", 20*time.Second, func() bool { return n1.c.Ready() == nil && n2.c.Ready() == nil })
	waitProgress(t, []*streamer{local}, 200)
	waitFor(t, "the cross-node stream to resume or be closed with 1012", 30*time.Second, func() bool {
		_, h, err := remote.progress()
		if err != nil {
			if websocket.CloseStatus(errors.Unwrap(err)) != websocket.StatusServiceRestart {
				t.Fatalf("cross-node stream: %v", err)
			}
			t.Logf("cross-node stream closed with 1012 after %d echoes (NATS lost frames in its restart)", h)
			return true
		}
		return h > 0 && remote.resumed()
	})
	fresh := dial(t, n1, "/nr/fresh")
	if got := roundTrip(t, fresh, "after"); got != "after" {
		t.Fatalf("got %q", got)
	}
}
