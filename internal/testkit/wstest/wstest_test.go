package wstest

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

const testLimit = 100 << 10

// TestKitAgainstReferenceEcho runs every case against the reference echo,
// which follows the policy, so every case must pass.
func TestKitAgainstReferenceEcho(t *testing.T) {
	s := startEcho(t, testLimit)
	Run(t, s.URL+"/echo", Options{
		MaxMessageSize: testLimit,
		Skip: map[string]string{
			// coder/websocket v1.8.15 echoes a close reason without checking
			// its UTF-8 (close.go parseClosePayload), and a library user
			// cannot intervene: the reference echo, like anything built on
			// it, cannot pass this case.
			"close/reason-invalid-utf8": "coder/websocket v1.8.15 does not validate close reasons",
		},
	})
}

func TestCasesWellFormed(t *testing.T) {
	for _, limit := range []int{1 << 10, 32 << 10, testLimit, 1 << 20} {
		seen := map[string]bool{}
		cs := Cases(Options{MaxMessageSize: limit})
		if len(cs) < 200 {
			t.Errorf("limit %d: only %d cases", limit, len(cs))
		}
		for _, c := range cs {
			if seen[c.Name] {
				t.Errorf("limit %d: case name %q repeated", limit, c.Name)
			}
			seen[c.Name] = true
			if strings.Count(c.Name, "/") != 1 || strings.ContainsAny(c.Name, " \t") {
				t.Errorf("case name %q is not category/what", c.Name)
			}
			if c.Want.End == EndFail && len(c.Want.Codes) == 0 {
				t.Errorf("case %q fails with no close code allowed", c.Name)
			}
			for _, m := range c.Want.Replies {
				if m.Opcode == OpText || m.Opcode == OpBinary {
					if len(m.Payload) > limit {
						t.Errorf("limit %d: case %q expects an echo of %d bytes", limit, c.Name, len(m.Payload))
					}
				}
			}
		}
	}
}

// TestKitDetectsBrokenEndpoints proves the cases can fail: each broken
// behaviour must make the named case report an error.
func TestKitDetectsBrokenEndpoints(t *testing.T) {
	s := startEcho(t, testLimit)
	silent := startSilent(t)
	byName := map[string]Case{}
	for _, c := range Cases(Options{MaxMessageSize: testLimit}) {
		byName[c.Name] = c
	}
	tests := []struct {
		what, url, cas, want string
		limit                int
	}{
		{"echo of invalid UTF-8", s.URL + "/lax", "utf8/invalid-byte-ff", "want a close frame with a code in [1007]", testLimit},
		{"echo altered", s.URL + "/mangle", "framing/text-125", "reply 1 of 1", testLimit},
		{"limit larger than announced", s.URL + "/echo", "limit/text-over", "want a close frame with a code in [1009]", testLimit / 2},
		{"echo of nothing where one is due", s.URL + "/close?code=4000&reason=gone", "ping/empty", "want pong", testLimit},
		{"no answer at all", silent, "ping/empty", "i/o timeout", testLimit},
		{"no close after data", silent, "close/empty", "i/o timeout", testLimit},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			c, ok := byName[tt.cas]
			if !ok {
				t.Fatalf("no case %q", tt.cas)
			}
			opts := Options{MaxMessageSize: tt.limit, Timeout: 300 * time.Millisecond}
			if tt.limit != testLimit {
				c = caseNamed(t, Cases(opts), tt.cas)
			}
			err := RunCase(t, tt.url, opts, c)
			if err == nil {
				t.Fatalf("case %s passed against a broken endpoint", tt.cas)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("case %s: error %q does not mention %q", tt.cas, err, tt.want)
			}
		})
	}
}

func caseNamed(t *testing.T, cs []Case, name string) Case {
	t.Helper()
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no case %q", name)
	return Case{}
}

// startSilent starts an endpoint that completes the handshake and then
// neither reads nor writes; it returns its ws:// URL.
func startSilent(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, nc) // owned by this goroutine until done
			req, err := http.ReadRequest(bufio.NewReader(nc))
			if err != nil {
				continue
			}
			_, _ = nc.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Accept: " + AcceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n"))
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		for _, nc := range conns {
			_ = nc.Close()
		}
	})
	return "ws://" + ln.Addr().String()
}

func TestRawHandshake(t *testing.T) {
	s := startEcho(t, testLimit)
	h := http.Header{"Sec-Websocket-Protocol": {"superchat, chat"}, "X-Test": {"hello"}}
	nc, br, resp := RawHandshake(t, s.Addr, "/echo", h)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %s, want 101", resp.Status)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "chat" {
		t.Errorf("subprotocol %q, want chat (the server's first choice)", got)
	}
	if got := resp.Header.Get("X-Test-Echo"); got != "hello" {
		t.Errorf("X-Test-Echo %q, want hello", got)
	}
	c := &Conn{NetConn: nc, Reader: br}
	if err := c.WriteFrames(textF("over the raw handshake")); err != nil {
		t.Fatal(err)
	}
	m, err := c.ReadMessage()
	if err != nil || m.Opcode != OpText || string(m.Payload) != "over the raw handshake" {
		t.Fatalf("echo: %v, %v", m, err)
	}

	_, _, resp = RawHandshake(t, s.Addr, "/reject?status=404", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("rejection status %s, want 404", resp.Status)
	}
}

func TestRawResponse(t *testing.T) {
	s := startEcho(t, testLimit)
	for _, path := range []string{"/reject?status=403", "/reject-chunked?status=401"} {
		a := RawResponse(t, s.Addr, path, nil)
		b := RawResponse(t, s.Addr, path, nil)
		if !bytes.Equal(StripHeader(a, "Date"), StripHeader(b, "Date")) {
			t.Errorf("%s: two rejections differ beyond Date:\n%q\n%q", path, a, b)
		}
		if bytes.Contains(StripHeader(a, "date"), []byte("\r\nDate:")) {
			t.Errorf("%s: StripHeader left the Date header: %q", path, a)
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(a)), nil)
		if err != nil {
			t.Fatalf("%s: raw response does not parse: %v\n%q", path, err, a)
		}
		var body bytes.Buffer
		if _, err := body.ReadFrom(resp.Body); err != nil {
			t.Fatalf("%s: raw response body incomplete: %v\n%q", path, err, a)
		}
		want := "rejected\n"
		if strings.HasPrefix(path, "/reject-chunked") {
			want += "second chunk\n"
			if resp.TransferEncoding == nil {
				t.Errorf("%s: expected a chunked response, got %q", path, a)
			}
		}
		if body.String() != want {
			t.Errorf("%s: body %q, want %q", path, body.String(), want)
		}
	}
	// Different requests give different responses: the helper is not blind.
	if bytes.Equal(StripHeader(RawResponse(t, s.Addr, "/reject?status=403", nil), "Date"),
		StripHeader(RawResponse(t, s.Addr, "/reject?status=404", nil), "Date")) {
		t.Error("403 and 404 rejections compare equal")
	}
}

func TestHandshakeRequestHeaders(t *testing.T) {
	req := string(HandshakeRequest("h:1", "/p", http.Header{"Upgrade": nil, "X-B": {"2"}, "X-A": {"1"}}, "k"))
	want := "GET /p HTTP/1.1\r\nHost: h:1\r\nConnection: Upgrade\r\nSec-WebSocket-Key: k\r\nSec-WebSocket-Version: 13\r\nX-A: 1\r\nX-B: 2\r\n\r\n"
	if req != want {
		t.Errorf("request\n%q\nwant\n%q", req, want)
	}
}
