package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/sdk"
)

// TestConnectLikeWebsocat: on a production broker, `connect` at end of
// input prints every reply still on its way before the server's close; it
// is quiet on a normal close;
// --binary relays raw bytes; --ping-interval keeps pinging without
// disturbing the exchange; -H is --header.
func TestConnectLikeWebsocat(t *testing.T) {
	b := startProdBroker(t)
	testutil.StartListen(t, b.ws+"/svc/echo/", "--echo", "--credential", b.secret)

	var in strings.Builder
	for i := 0; i < 300; i++ {
		fmt.Fprintf(&in, "line %d\n", i)
	}
	out, stderr, code := testutil.Run(t, in.String(), nil, "connect", b.ws+"/svc/echo/x", "--ping-interval", "20ms", "-H", "X-Test: 1")
	if code != 0 || out != in.String() {
		t.Fatalf("connect exited %d and printed %d of %d bytes; stderr %q", code, len(out), in.Len(), stderr)
	}
	if stderr != "" {
		t.Fatalf("connect was not quiet on a normal close: %q", stderr)
	}

	payload := []byte{0, 1, 2, 0xff, '\n', 0x80}
	out, stderr, code = testutil.Run(t, string(payload), nil, "connect", b.ws+"/svc/echo/bin", "--binary")
	if code != 0 || !bytes.Equal([]byte(out), payload) {
		t.Fatalf("--binary: exit %d, got %x want %x; %s", code, out, payload, stderr)
	}
}

// TestConnectPingTimeout: a server that stops answering (the broker
// process stopped with SIGSTOP, its socket open) is detected by
// --ping-interval/--ping-timeout: connect says no pong came, and exits 1,
// well before TCP would notice.
func TestConnectPingTimeout(t *testing.T) {
	b := startProdBroker(t)
	testutil.StartListen(t, b.ws+"/svc/echo/", "--echo", "--credential", b.secret)
	// An os.Pipe: exec hands its end to the process (an io.Pipe would keep
	// Wait waiting for a copy from it).
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdinW.Close() })
	defer stdinR.Close()
	outR, outW := io.Pipe()
	cmd := testutil.Command(t, "connect", b.ws+"/svc/echo/p", "--ping-interval", "100ms", "--ping-timeout", "400ms")
	cmd.Stdin, cmd.Stdout = stdinR, outW
	cp := testutil.StartProcess(t, cmd)
	// The connection is up (an echo came back) while pings are answered.
	fmt.Fprintln(stdinW, "hello")
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil || line != "hello\n" {
		t.Fatalf("echo: %q %v", line, err)
	}
	go io.Copy(io.Discard, outR)
	b.p.Signal(syscall.SIGSTOP)
	t.Cleanup(func() { b.p.Signal(syscall.SIGCONT) })
	stopped := time.Now()
	if code := cp.Wait(); code != 1 {
		t.Fatalf("connect exited %d, want 1", code)
	}
	if d := time.Since(stopped); d > 8*time.Second {
		t.Fatalf("connect noticed the silent server after %v", d)
	}
	cp.WaitLine(`switchboard: no pong within 400ms: closing`)
}

// TestConnectWaitsForLateReplies: on a production broker, `connect` sends
// its lines and, at end of input, its close at once; services that reply
// late still get every reply to it before the close, because the broker
// holds the client's close until the service answers it: a `listen
// --exec` script that answers each line after a delay (its replies come
// after the client's close reached it), and a Go SDK service whose handler
// takes its time over each message (Read answers the close after it).
// connect prints them all, in order, and exits 0 quietly; a --linger left
// in a script is accepted with a warning.
func TestConnectWaitsForLateReplies(t *testing.T) {
	b := startProdBroker(t)
	testutil.StartListen(t, b.ws+"/svc/slow/", "--exec", `while read l; do sleep 0.3; echo "late $l"; done`, "--credential", b.secret)
	sdkSlowEcho(t, b.ws+"/svc/sdk/", b.secret)

	in := "one\ntwo\nthree\n"
	for _, tc := range []struct{ path, want string }{
		{"/svc/slow/x", "late one\nlate two\nlate three\n"},
		{"/svc/sdk/x", "one\ntwo\nthree\n"},
	} {
		start := time.Now()
		out, stderr, code := testutil.Run(t, in, nil, "connect", b.ws+tc.path)
		if code != 0 || out != tc.want || stderr != "" {
			t.Fatalf("%s: connect exited %d after %v, printed %q (want %q), stderr %q", tc.path, code, time.Since(start), out, tc.want, stderr)
		}
	}

	out, stderr, code := testutil.Run(t, in, nil, "connect", b.ws+"/svc/slow/y", "--linger", "2s")
	if code != 0 || out != "late one\nlate two\nlate three\n" || !strings.Contains(stderr, "--linger is deprecated and ignored") {
		t.Fatalf("--linger: exit %d, out %q, stderr %q", code, out, stderr)
	}
	if _, stderr, code := testutil.Run(t, "", nil, "connect", b.ws+"/svc/slow/z", "--close-timeout", "6s"); code != 2 || !strings.Contains(stderr, "--close-timeout") {
		t.Fatalf("--close-timeout past 5s: exit %d, stderr %q", code, stderr)
	}
}

// sdkSlowEcho serves scope with the Go SDK: each message is echoed after
// 300 ms, by the handler that read it.
func sdkSlowEcho(t *testing.T, scope, credential string) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l, err := sdk.Listen(ctx, scope, &sdk.ListenOptions{Credential: credential})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			r, err := l.Accept(ctx)
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
					if err != nil {
						return
					}
					time.Sleep(300 * time.Millisecond) // the work the reply takes, not a wait for a condition
					if ch.Write(ctx, typ, p) != nil {
						return
					}
				}
			}()
		}
	}()
}
