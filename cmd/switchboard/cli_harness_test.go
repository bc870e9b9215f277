package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// switchboardBin is the binary built once for the tests that run it
// (testutil.BuildSwitchboard, shared by every suite that runs it).
var switchboardBin string

func TestMain(m *testing.M) {
	bin, err := testutil.BuildSwitchboard()
	if err != nil {
		fmt.Fprintln(os.Stderr, "build switchboard:", err)
		os.Exit(1)
	}
	switchboardBin = bin
	code := m.Run()
	testutil.RemoveBuilt()
	os.Exit(code)
}

// proc is a running switchboard process whose stderr is collected.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process was waited for
	err  error         // its exit; valid after done

	mu     sync.Mutex
	stderr []string // guarded by mu
}

// startProc runs the binary with args; stdin, if not nil, feeds it. The
// process is killed at the end of the test.
func startProc(t *testing.T, stdin io.Reader, stdout io.Writer, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(switchboardBin, args...)
	cmd.Stdin, cmd.Stdout = stdin, stdout
	return runProc(t, cmd, args[0])
}

// runProc starts cmd (the switchboard binary, however it is wrapped),
// collects its stderr, and kills it at the end of the test, logging its
// stderr if the test failed.
func runProc(t *testing.T, cmd *exec.Cmd, name string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, cmd: cmd, done: make(chan struct{})}
	if p.cmd.Env == nil {
		p.cmd.Env = os.Environ()
	}
	p.cmd.Env = append(p.cmd.Env, "SWITCHBOARD_CREDENTIAL=")
	errPipe, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	lines := make(chan struct{})
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr = append(p.stderr, sc.Text())
			p.mu.Unlock()
		}
	}()
	go func() {
		<-lines
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill() // under ip netns exec, this is switchboard itself (exec'd)
		<-p.done
		if t.Failed() {
			for _, l := range p.lines() {
				t.Logf("%s: %s", p.name, l)
			}
		}
	})
	return p
}

func (p *proc) lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.stderr...)
}

// waitLine polls stderr for a line matching re and returns its submatches.
func (p *proc) waitLine(re string) []string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, l := range p.lines() {
			if m := rx.FindStringSubmatch(l); m != nil {
				return m
			}
		}
		select {
		case <-p.done:
			p.t.Fatalf("%s exited (%v) before printing %q", p.name, p.err, re)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s did not print %q", p.name, re)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.t.Fatalf("%s did not exit", p.name)
	}
	if p.err == nil {
		return 0
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	p.t.Fatalf("%s: %v", p.name, p.err)
	return -1
}

func (p *proc) signal(sig syscall.Signal) { p.cmd.Process.Signal(sig) }

// startServe runs `switchboard serve --dev` on a free loopback port and
// returns its ws:// base URL.
func startServe(t *testing.T) string {
	p := startProc(t, nil, nil, "serve", "--dev", "--listen", "127.0.0.1:0")
	m := p.waitLine(`switchboard: listening on http://(\S+)`)
	return "ws://" + m[1]
}

// startListen runs `switchboard listen` and waits until it is attached.
func startListen(t *testing.T, args ...string) *proc {
	p := startProc(t, nil, nil, append([]string{"listen"}, args...)...)
	p.waitLine(`switchboard: listening on ws://`)
	return p
}

func dial(t *testing.T, url string, protocols ...string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: protocols})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func send(t *testing.T, c *websocket.Conn, typ websocket.MessageType, s string) {
	t.Helper()
	if err := c.Write(tctx(t), typ, []byte(s)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func expect(t *testing.T, c *websocket.Conn, typ websocket.MessageType, want string) {
	t.Helper()
	got, p, err := c.Read(tctx(t))
	if err != nil {
		t.Fatalf("read (want %q): %v", want, err)
	}
	if got != typ || string(p) != want {
		t.Fatalf("read %v %q, want %v %q", got, p, typ, want)
	}
}

func expectClose(t *testing.T, c *websocket.Conn, code websocket.StatusCode, reasonPrefix string) {
	t.Helper()
	_, p, err := c.Read(tctx(t))
	var ce websocket.CloseError
	if err == nil {
		t.Fatalf("read %q, want close %d", p, code)
	}
	if !errors.As(err, &ce) || ce.Code != code || !strings.HasPrefix(ce.Reason, reasonPrefix) {
		t.Fatalf("read error %v, want close %d %q", err, code, reasonPrefix)
	}
}
