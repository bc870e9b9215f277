package broker_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/protocol"
)

// rawHandshake sends a handshake over a plain TCP socket and returns the
// response bytes exactly as they came, Date header blanked.
func rawHandshake(t *testing.T, e *env, path string, extra ...string) []byte {
	t.Helper()
	conn, raw := rawHandshakeConn(t, e, path, extra...)
	conn.Close()
	return raw
}

// rawHandshakeConn is rawHandshake that leaves the connection open.
func rawHandshakeConn(t *testing.T, e *env, path string, extra ...string) (net.Conn, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	req := "GET " + path + " HTTP/1.1\r\nHost: example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	for _, h := range extra {
		req += h + "\r\n"
	}
	req += "\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	var raw bytes.Buffer
	resp, err := http.ReadResponse(bufio.NewReader(io.TeeReader(br, &raw)), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	return conn, regexp.MustCompile(`(?m)^Date: .*\r\n`).ReplaceAll(raw.Bytes(), []byte("Date: X\r\n"))
}

func TestRejectionsAreByteIdentical(t *testing.T) {
	e := newEnv(t, broker.Limits{AcceptTimeout: 300 * time.Millisecond})
	strict := e.attach(protocol.Hello{Scope: "/strict/", Protocols: []string{"chat"}, Origins: []string{"https://good.example"}})
	refuser := e.attach(protocol.Hello{Scope: "/refuse/"})
	e.attach(protocol.Hello{Scope: "/silent/"}) // never answers
	go func() {
		for f := range refuser.frames {
			if c, ok := f.v.(*protocol.Connect); ok {
				refuser.send((&protocol.Reject{Channel: c.Channel}).Append(nil))
			}
		}
	}()
	go func() {
		for range strict.frames {
			t.Error("the strict service was asked about a client its policy refuses")
		}
	}()

	base := rawHandshake(t, e, "/nothing/here")
	if !bytes.HasPrefix(base, []byte("HTTP/1.1 404 Not Found\r\n")) {
		t.Fatalf("unknown scope gave:\n%s", base)
	}
	cases := map[string][]byte{
		"service rejects":      rawHandshake(t, e, "/refuse/x"),
		"accept timeout":       rawHandshake(t, e, "/silent/x"),
		"origin not admitted":  rawHandshake(t, e, "/strict/x", "Origin: https://evil.example", "Sec-WebSocket-Protocol: chat"),
		"subprotocol declined": rawHandshake(t, e, "/strict/x", "Origin: https://good.example", "Sec-WebSocket-Protocol: other"),
		"reserved prefix miss": rawHandshake(t, e, "/.switchboard/v1/nothing"),
	}
	for name, got := range cases {
		if name == "reserved prefix miss" {
			continue // not a scope lookup: a plain 404 for the broker's own namespace
		}
		if !bytes.Equal(got, base) {
			t.Errorf("%s differs from unknown scope:\n%q\n%q", name, got, base)
		}
	}
}

func TestCustomResponse(t *testing.T) {
	e := newEnv(t, broker.Limits{})
	s := e.attach(protocol.Hello{Scope: "/auth/"})
	go func() {
		f := (<-s.frames).v.(*protocol.Connect)
		s.send((&protocol.Respond{Channel: f.Channel, Status: 401, Headers: []protocol.Header{{Name: "WWW-Authenticate", Value: `Basic realm="x"`}}, Body: []byte("who?")}).Append(nil))
	}()
	got := string(rawHandshake(t, e, "/auth/"))
	if !strings.HasPrefix(got, "HTTP/1.1 401 Unauthorized\r\n") || !strings.Contains(got, "Www-Authenticate: Basic realm=\"x\"\r\n") || !strings.HasSuffix(got, "\r\n\r\nwho?") {
		t.Fatalf("response:\n%s", got)
	}
}

func TestMalformedHandshakes(t *testing.T) {
	e := newEnv(t, broker.Limits{})
	e.attach(protocol.Hello{Scope: "/x/"})
	cases := []struct {
		name   string
		req    string
		status string
	}{
		{"bad version", "GET /x/ HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n", "426"},
		{"missing key", "GET /x/ HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n", "400"},
		{"bad key", "GET /x/ HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n", "400"},
		{"post", "POST /x/ HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n", "405"},
		{"garbage", "\x16\x03\x01garbage\r\n\r\n", "400"},
		{"huge headers", "GET /x/ HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("a", 2<<20) + "\r\n\r\n", "431"},
	}
	for _, c := range cases {
		conn, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = conn.Write([]byte(c.req)) }()
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 "+c.status) {
			t.Errorf("%s: got %q %v, want %s", c.name, line, err, c.status)
		}
	}
}
