package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

func TestListenEchoAndConnect(t *testing.T) {
	base := startServe(t)
	l, _ := testutil.StartListen(t, base+"/echo/", "--echo", "--protocol", "chat", "--label", "v1")
	c := dial(t, base+"/echo/x", "other", "chat")
	if c.Subprotocol() != "chat" {
		t.Fatalf("subprotocol %q, want chat", c.Subprotocol())
	}
	send(t, c, websocket.MessageText, "hello ✓")
	expect(t, c, websocket.MessageText, "hello ✓")
	send(t, c, websocket.MessageBinary, "\x00\xff")
	expect(t, c, websocket.MessageBinary, "\x00\xff")
	c.Close(4001, "bye")
	l.WaitLine(`channel closed by client.* code=4001 reason=bye`)

	// connect: stdin lines out, messages in, normal close → exit 0.
	stdinR, stdinW := io.Pipe()
	outR, outW := io.Pipe()
	cmd := testutil.Command(t, "connect", base+"/echo/y", "--protocol", "chat")
	cmd.Stdin, cmd.Stdout = stdinR, outW
	cp := testutil.StartProcess(t, cmd)
	fmt.Fprintln(stdinW, "line one")
	buf := make([]byte, 64)
	n, err := io.ReadAtLeast(outR, buf, len("line one\n"))
	if err != nil || string(buf[:n]) != "line one\n" {
		t.Fatalf("connect printed %q %v", buf[:n], err)
	}
	stdinW.Close()
	go io.Copy(io.Discard, outR)
	if code := cp.Wait(); code != 0 {
		t.Fatalf("connect exited %d", code)
	}
	for _, l := range cp.Lines() {
		if strings.Contains(l, "closed") {
			t.Fatalf("connect was not quiet on a normal close: %s", l)
		}
	}

	l.Signal(syscall.SIGTERM)
	if code := l.Wait(); code != 0 {
		t.Fatalf("listen exited %d after SIGTERM", code)
	}
}

func TestConnectReportsAbnormalClose(t *testing.T) {
	base := startServe(t)
	testutil.StartListen(t, base+"/sh/", "--exec", "exit 3")
	cmd := testutil.Command(t, "connect", base+"/sh/")
	// stdin stays open: at EOF connect would close normally itself, racing
	// the service's 1011. An *os.File, so that Wait does not wait for a
	// copy from it.
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdinW.Close()
	defer stdinR.Close()
	cmd.Stdin = stdinR
	cp := testutil.StartProcess(t, cmd)
	if code := cp.Wait(); code != 1 {
		t.Fatalf("connect exited %d, want 1", code)
	}
	cp.WaitLine(`closed with 1011 exit status 3`)
}

func TestListenRefusedWithReason(t *testing.T) {
	base := startServe(t)
	p := testutil.Start(t, "listen", base+"/.switchboard/x/", "--echo")
	if code := p.Wait(); code != 1 {
		t.Fatalf("listen on a reserved scope exited %d, want 1", code)
	}
	p.WaitLine(`error 4`)
}

func TestListenExec(t *testing.T) {
	base := startServe(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	script := `echo "start $SWITCHBOARD_PROTOCOL"; echo $$ > ` + pidFile + `; while read l; do echo "got $l"; done`
	l, _ := testutil.StartListen(t, base+"/sh/", "--exec", script, "--protocol", "p1")
	c := dial(t, base+"/sh/a", "p1")
	expect(t, c, websocket.MessageText, "start p1")
	send(t, c, websocket.MessageText, "x")
	expect(t, c, websocket.MessageText, "got x")
	send(t, c, websocket.MessageBinary, "y")
	expect(t, c, websocket.MessageText, "got y")

	// The client closing kills the process group.
	var pid int
	testutil.Eventually(t, "pid file", func() bool {
		b, err := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	c.Close(websocket.StatusNormalClosure, "")
	testutil.Eventually(t, "the process to end", func() bool { return syscall.Kill(pid, 0) == syscall.ESRCH })
	l.WaitLine(`channel closed by client`)

	// A process that exits 0 closes its channel with 1000.
	l.Signal(syscall.SIGINT)
	if code := l.Wait(); code != 0 {
		t.Fatalf("listen exited %d", code)
	}
	testutil.StartListen(t, base+"/once/", "--exec", "echo only")
	c2 := dial(t, base+"/once/")
	expect(t, c2, websocket.MessageText, "only")
	expectClose(t, c2, websocket.StatusNormalClosure, "")
}

// localServer is a WebSocket server standing for the service that
// `listen --to` forwards to: it greets with the path and subprotocol it
// saw, echoes, closes with 4003 on "close me", and reports the close code
// the client sent.
func localServer(t *testing.T) (url string, closes <-chan string) {
	got := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"chat"}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := context.Background()
		c.Write(ctx, websocket.MessageText, []byte("at "+r.URL.RequestURI()+" proto "+c.Subprotocol()))
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				got <- fmt.Sprint(websocket.CloseStatus(err))
				return
			}
			if string(p) == "close me" {
				c.Close(4003, "as you wish")
				return
			}
			c.Write(ctx, typ, p)
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/base/", got
}

func TestListenTo(t *testing.T) {
	base := startServe(t)
	local, closes := localServer(t)
	testutil.StartListen(t, base+"/app/", "--to", local)
	c := dial(t, base+"/app/x/y?q=1", "chat")
	if c.Subprotocol() != "chat" {
		t.Fatalf("subprotocol %q", c.Subprotocol())
	}
	expect(t, c, websocket.MessageText, "at /base/x/y?q=1 proto chat")
	send(t, c, websocket.MessageBinary, "\x01\x02")
	expect(t, c, websocket.MessageBinary, "\x01\x02")
	c.Close(4001, "client leaves")
	select {
	case code := <-closes:
		if code != "StatusCode(4001)" {
			t.Fatalf("local server saw close %s, want 4001", code)
		}
	case <-tctx(t).Done():
		t.Fatal("local server never saw the close")
	}

	c2 := dial(t, base+"/app/")
	expect(t, c2, websocket.MessageText, "at /base/ proto ")
	send(t, c2, websocket.MessageText, "close me")
	expectClose(t, c2, 4003, "as you wish")

	// A local server that is down: the client is rejected (404).
	testutil.StartListen(t, base+"/down/", "--to", "ws://127.0.0.1:1/")
	_, resp, err := websocket.Dial(tctx(t), base+"/down/", nil)
	if err == nil || resp == nil || resp.StatusCode != 404 {
		t.Fatalf("dial through a dead --to: %v %v", err, resp)
	}
}

// A newer `listen` takes over: the older one finishes, detaches and exits
// 0; the client keeps its connection and is served by the newer one.
func TestListenTakeover(t *testing.T) {
	base := startServe(t)
	old, _ := testutil.StartListen(t, base+"/t/", "--exec", "while read l; do echo old $l; done")
	c := dial(t, base+"/t/")
	send(t, c, websocket.MessageText, "1")
	expect(t, c, websocket.MessageText, "old 1")
	testutil.StartListen(t, base+"/t/", "--echo", "--label", "v2")
	if code := old.Wait(); code != 0 {
		t.Fatalf("superseded listen exited %d", code)
	}
	old.WaitLine(`newer instance took over`)
	send(t, c, websocket.MessageText, "3") // the same connection, now served by the newer one
	expect(t, c, websocket.MessageText, "3")
	c2 := dial(t, base+"/t/new")
	send(t, c2, websocket.MessageText, "2")
	expect(t, c2, websocket.MessageText, "2")
}

// When the broker goes away, listen reattaches with backoff once it is
// back on the same address.
func TestListenReattaches(t *testing.T) {
	p, httpBase := testutil.StartServe(t, "--dev")
	addr := strings.TrimPrefix(httpBase, "http://")
	l, _ := testutil.StartListen(t, "ws://"+addr+"/r/", "--echo")
	p.Signal(syscall.SIGKILL)
	p.Wait()
	l.WaitLine(`attach failed; retrying`)
	testutil.StartServe(t, "--dev", "--listen", addr)
	testutil.Eventually(t, "a second attach", func() bool {
		n := 0
		for _, line := range l.Lines() {
			if strings.Contains(line, "switchboard: listening on") {
				n++
			}
		}
		return n == 2
	})
	c := dial(t, "ws://"+addr+"/r/")
	send(t, c, websocket.MessageText, "back")
	expect(t, c, websocket.MessageText, "back")
}

// Without --dev, listen needs a credential; the broker's reason is shown.
func TestListenNeedsCredential(t *testing.T) {
	_, httpBase := testutil.StartServe(t)
	base := testutil.WS(httpBase)
	l := testutil.Start(t, "listen", base+"/e/", "--echo")
	if code := l.Wait(); code != 1 {
		t.Fatalf("listen without a credential exited %d, want 1", code)
	}
	l.WaitLine(`needs a credential.*error 3.*pass --credential`)
}
