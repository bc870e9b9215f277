package server_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/daemon"
	"github.com/switchboard-dev/switchboard/sdk"
)

// fromAddr returns an HTTP client whose connections come from the
// loopback address local (127.0.0.X: all of 127/8 reaches lo on Linux).
func fromAddr(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 10 * time.Second}
}

// halfOpen opens a connection from local and sends half a request line.
func halfOpen(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", local, err)
	}
	t.Cleanup(func() { c.Close() })
	_, _ = c.Write([]byte("GET /svc/ HTTP/1.1\r\nHost: x\r\n"))
	return c
}

// TestSlowlorisIsBounded: half-open handshakes are counted per address
// from accept (the 50th connection of one address gets 429 before a full
// request arrives), handshakes in progress are capped in total (the
// oldest is closed), and with open connections at the file limit less
// the reserve, a client, a new service link and the admin API still get
// through while the flood holds on.
func TestSlowlorisIsBounded(t *testing.T) {
	addr, secret := prodBroker(t, daemon.Settings{RefusalFloor: -1, HandshakeTimeout: 30 * time.Second,
		MaxConnsPerAddr: 50, MaxHandshakes: 100, MaxFiles: 300, FDReserve: 50})
	acceptAll(t, addr, secret) // one connection of 127.0.0.1: the link

	for i := 0; i < 49; i++ {
		halfOpen(t, "127.0.0.1", addr)
	}
	over := halfOpen(t, "127.0.0.1", addr)
	_ = over.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(over).ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 429") {
		t.Fatalf("the 51st connection of one address (a half-open handshake) got %q, %v; want 429 at accept", line, err)
	}

	// A flood from many addresses: 8 × 45 more half-open handshakes.
	for a := 2; a < 10; a++ {
		for i := 0; i < 45; i++ {
			halfOpen(t, fmt.Sprintf("127.0.0.%d", a), addr)
		}
	}
	// A client, a new service link and the admin API get through.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/svc/x", &websocket.DialOptions{HTTPClient: fromAddr("127.0.0.20")})
	if err != nil {
		t.Fatalf("a client during the flood: %v", err)
	}
	c.CloseNow()
	l, err := sdk.Listen(ctx, "ws://"+addr+"/svc/other/", &sdk.ListenOptions{Credential: secret,
		Dial: &websocket.DialOptions{HTTPClient: fromAddr("127.0.0.21")}})
	if err != nil {
		t.Fatalf("a service link during the flood: %v", err)
	}
	l.Close()
	req, _ := http.NewRequest("GET", "http://"+addr+"/.switchboard/v1/status", nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err := fromAddr("127.0.0.22").Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the admin API during the flood: %v %v", resp, err)
	}
	resp.Body.Close()
}
