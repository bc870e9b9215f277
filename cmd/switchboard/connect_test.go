package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// TestConnectLikeWebsocat: on a production broker, `connect` at end of
// input prints every reply still on its way and closes once the server is
// quiet (not after a fixed delay); it is quiet on a normal close;
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
