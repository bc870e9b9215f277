package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

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
