package main

import (
	"bufio"
	"context"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/sdk"
)

// reconnectingClient is a Python websockets client: it gets an echo, waits
// for the connection to be lost, then reconnects (retrying while the
// service is not back) and gets an echo again.
const reconnectingClient = `
import asyncio, sys, websockets

async def echo(url, text):
    async with websockets.connect(url, open_timeout=5) as ws:
        await ws.send(text)
        got = await asyncio.wait_for(ws.recv(), 5)
        assert got == text, got
        return ws

async def main(url):
    async with websockets.connect(url, open_timeout=5) as ws:
        await ws.send("before")
        assert await asyncio.wait_for(ws.recv(), 5) == "before"
        print("up", flush=True)
        try:
            await asyncio.wait_for(ws.recv(), 120)
        except websockets.ConnectionClosed:
            pass
    print("lost", flush=True)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        try:
            await echo(url, "after")
            print("back", flush=True)
            return
        except Exception as e:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.1)

asyncio.run(main(sys.argv[1]))
`

// pyClient runs reconnectingClient against url and reports its lines.
func pyClient(t *testing.T, url string) <-chan string {
	t.Helper()
	cmd := exec.Command("/usr/bin/python3", "-c", reconnectingClient, url)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("python3 websockets client: %v (scripts/install-test-deps.sh installs python3-websockets)", err)
	}
	lines := make(chan string, 8)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		wg.Wait()
		if err := cmd.Wait(); err != nil && t.Failed() {
			t.Logf("python client %s: %v\n%s", url, err, stderr.String())
		}
	})
	return lines
}

func expectLine(t *testing.T, lines <-chan string, who, want string) {
	t.Helper()
	select {
	case got := <-lines:
		if got != want {
			t.Fatalf("%s: client said %q, want %q", who, got, want)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: client did not say %q within 60 s", who, want)
	}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago, so that a restarted broker can take the same one.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// The broker process is killed and started again on the same port under a
// Go service (sdk.Attach), a `switchboard listen --echo` service, and a
// Python websockets client of each: both services come back by
// themselves, and the clients reconnect to them.
func TestBrokerRestartUnderServices(t *testing.T) {
	addr := freeAddr(t)
	broker, _ := testutil.StartServe(t, "--dev", "--listen", addr)
	base := "ws://" + addr

	attaches := make(chan string, 8)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	svc, err := sdk.Attach(actx, base+"/go/", &sdk.AttachOptions{
		MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second,
		OnAttach: func(l *sdk.Listener) { attaches <- l.URL() },
	})
	acancel()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { // an echo service, written as for one link
		defer close(done)
		for {
			r, err := svc.Accept(ctx)
			if err != nil {
				return
			}
			ch, err := r.Accept(ctx, "", nil)
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
	}()
	defer func() { svc.Close(); <-done }()
	<-attaches
	cli, _ := testutil.StartListen(t, base+"/cli/", "--echo")

	goClient := pyClient(t, base+"/go/x")
	cliClient := pyClient(t, base+"/cli/x")
	expectLine(t, goClient, "go service", "up")
	expectLine(t, cliClient, "cli service", "up")

	broker.Signal(syscall.SIGKILL)
	broker.Wait()
	expectLine(t, goClient, "go service", "lost")
	expectLine(t, cliClient, "cli service", "lost")
	waitState(t, svc, sdk.Reattaching)

	broker, _ = testutil.StartServe(t, "--dev", "--listen", addr)
	select {
	case u := <-attaches:
		if u != base+"/go/" {
			t.Fatalf("reattached at %s", u)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the Go service did not reattach within 30 s")
	}
	expectLine(t, goClient, "go service", "back")
	expectLine(t, cliClient, "cli service", "back")
	if n := len(cli.Lines()); n == 0 {
		t.Fatal("no output from switchboard listen")
	}
	cli.WaitLine(`service link lost; reattaching`)
	if st := svc.State(); st != sdk.Attached {
		t.Fatalf("Go service state %s, want attached", st)
	}
}

// waitState waits until svc is in state st.
func waitState(t *testing.T, svc *sdk.Service, st sdk.ServiceState) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		changed := svc.StateChanged()
		if svc.State() == st {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("service state %s, want %s", svc.State(), st)
		}
	}
}
