package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/daemon"
	"github.com/switchboard-dev/switchboard/sdk"
)

// acceptAll attaches a Go SDK service on /svc/ that accepts every client.
func acceptAll(t *testing.T, addr, secret string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l, err := sdk.Listen(ctx, "ws://"+addr+"/svc/", &sdk.ListenOptions{Credential: secret})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); l.Close() })
	go func() {
		for {
			req, err := l.Accept(ctx)
			if err != nil {
				return
			}
			_, _ = req.Accept(ctx, "", nil)
		}
	}()
}

// TestHeaderLimitIsExact: headers over max_header_bytes get 431 even in
// the 4 KiB net/http lets through beyond its MaxHeaderBytes; headers
// under it are served.
func TestHeaderLimitIsExact(t *testing.T) {
	addr, secret := prodBroker(t, daemon.Settings{RefusalFloor: -1})
	acceptAll(t, addr, secret)
	if status, _ := timedHandshake(t, addr, "/svc/x", "X-Pad: "+strings.Repeat("a", 15<<10)); !strings.HasPrefix(status, "HTTP/1.1 101") {
		t.Fatalf("15 KiB of headers: %s", status)
	}
	for _, n := range []int{16<<10 + 10, 19 << 10} {
		if status, _ := timedHandshake(t, addr, "/svc/x", "X-Pad: "+strings.Repeat("a", n)); !strings.HasPrefix(status, "HTTP/1.1 431") {
			t.Errorf("%d bytes of headers (limit 16 KiB): %s", n, status)
		}
	}
}

// TestVersionMustBeOnly13: a second Sec-WebSocket-Version, or a list, is
// refused with 426 like any version other than 13.
func TestVersionMustBeOnly13(t *testing.T) {
	addr, secret := prodBroker(t, daemon.Settings{RefusalFloor: -1})
	acceptAll(t, addr, secret)
	for _, extra := range [][]string{
		{"Sec-WebSocket-Version: 8"},
		{"Sec-WebSocket-Version: 13, 8"},
	} {
		// timedHandshake sends "Sec-WebSocket-Version: 13" itself.
		status, _ := timedHandshake(t, addr, "/svc/x", extra...)
		if !strings.HasPrefix(status, "HTTP/1.1 426") {
			t.Errorf("13 plus %q: %s", extra, status)
		}
	}
}
