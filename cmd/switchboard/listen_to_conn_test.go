package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gobwas/ws"

	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// lateReplies is how many messages the local server of
// TestListenToLateReplies sends after it received a close.
const lateReplies = 20

// lateServer is a local WebSocket server (gobwas/ws, server side) that
// says "ready" on each connection. On a close frame it reports the code
// and reason, sends lateReplies messages and only then its close (4001
// "done"); on "close first" it sends three messages and closes first
// (4002 "server done"); on "big" it sends a message over the broker's
// default limit (1 MiB).
func lateServer(t *testing.T) (url string, closes <-chan string) {
	got := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		if ws.WriteFrame(conn, ws.NewTextFrame([]byte("ready"))) != nil {
			return
		}
		for {
			f, err := ws.ReadFrame(conn)
			if err != nil {
				got <- "read: " + err.Error()
				return
			}
			f = ws.UnmaskFrameInPlace(f)
			switch {
			case f.Header.OpCode == ws.OpClose:
				code, reason := ws.ParseCloseFrameData(f.Payload)
				got <- fmt.Sprintf("%d %s", code, reason)
				for i := 1; i <= lateReplies; i++ {
					ws.WriteFrame(conn, ws.NewTextFrame(fmt.Appendf(nil, "late %d", i)))
				}
				ws.WriteFrame(conn, ws.NewCloseFrame(ws.NewCloseFrameBody(4001, "done")))
				io.Copy(io.Discard, conn) // until the peer closes the connection
				return
			case string(f.Payload) == "close first":
				for i := 1; i <= 3; i++ {
					ws.WriteFrame(conn, ws.NewTextFrame(fmt.Appendf(nil, "last %d", i)))
				}
				ws.WriteFrame(conn, ws.NewCloseFrame(ws.NewCloseFrameBody(4002, "server done")))
			case string(f.Payload) == "big":
				ws.WriteFrame(conn, ws.NewTextFrame(bytes.Repeat([]byte("x"), 1<<20+1)))
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/", got
}

// rawClient is a WebSocket client on gobwas/ws that writes frames as
// given and reads every frame, so that a test sees what arrives after
// its own close frame.
type rawClient struct {
	conn net.Conn
	r    io.Reader
}

func dialFrames(t *testing.T, url string) *rawClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, br, _, err := ws.Dial(ctx, url)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	c := &rawClient{conn: conn, r: conn}
	if br != nil {
		c.r = br // it reads on from conn past what it holds
	}
	return c
}

func (c *rawClient) write(t *testing.T, f ws.Frame) {
	t.Helper()
	if err := ws.WriteFrame(c.conn, ws.MaskFrameInPlace(f)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// readUntilClose returns the text of every message until the close frame,
// and that frame's code and reason.
func (c *rawClient) readUntilClose(t *testing.T) (msgs []string, closeFrame string) {
	t.Helper()
	for {
		f, err := ws.ReadFrame(c.r)
		if err != nil {
			t.Fatalf("read after %q: %v", msgs, err)
		}
		if f.Header.OpCode == ws.OpClose {
			code, reason := ws.ParseCloseFrameData(f.Payload)
			return msgs, fmt.Sprintf("%d %s", code, reason)
		}
		msgs = append(msgs, string(f.Payload))
	}
}

// TestListenToLateReplies: on a production broker, a client of `listen
// --to` that closes gets every message the local server sends after it
// received the client's close (code and reason passed on), then the
// close with the local server's code; a local server that closes first
// gets its messages and its close to the client, as they were sent; a
// message over the broker's limit closes both sides with 1009.
func TestListenToLateReplies(t *testing.T) {
	b := startProdBroker(t)
	local, closes := lateServer(t)
	testutil.StartListen(t, b.ws+"/svc/late/", "--to", local, "--credential", b.secret)

	c := dialFrames(t, b.ws+"/svc/late/x")
	if msgs := c.readN(t, 1); msgs[0] != "ready" {
		t.Fatalf("first message %q, want ready", msgs[0])
	}
	c.write(t, ws.NewCloseFrame(ws.NewCloseFrameBody(4000, "bye")))
	msgs, closed := c.readUntilClose(t)
	var want []string
	for i := 1; i <= lateReplies; i++ {
		want = append(want, fmt.Sprintf("late %d", i))
	}
	if strings.Join(msgs, ",") != strings.Join(want, ",") || closed != "4001 done" {
		t.Fatalf("after its close the client got %q and close %q, want %q and 4001 done", msgs, closed, want)
	}
	wantClose(t, closes, "4000 bye")

	c2 := dialFrames(t, b.ws+"/svc/late/y")
	c2.readN(t, 1)
	c2.write(t, ws.NewTextFrame([]byte("close first")))
	msgs, closed = c2.readUntilClose(t)
	if strings.Join(msgs, ",") != "last 1,last 2,last 3" || closed != "4002 server done" {
		t.Fatalf("the local server closed first: the client got %q and close %q", msgs, closed)
	}
	wantClose(t, closes, "4002 server done") // listen echoed it

	c3 := dialFrames(t, b.ws+"/svc/late/z")
	c3.readN(t, 1)
	c3.write(t, ws.NewTextFrame([]byte("big")))
	if msgs, closed = c3.readUntilClose(t); len(msgs) != 0 || closed != "1009 message too big" {
		t.Fatalf("a message over the broker's limit: the client got %d messages and close %q, want 1009", len(msgs), closed)
	}
	wantClose(t, closes, "1009 message too big")

	// The client's connection breaks (no close frame): the local server
	// gets a close (1000) all the same, and what it sends then is dropped.
	c4 := dialFrames(t, b.ws+"/svc/late/w")
	c4.readN(t, 1)
	c4.conn.Close()
	select {
	case got := <-closes:
		if !strings.HasPrefix(got, "1000") {
			t.Fatalf("the client's connection broke: the local server got close %q, want 1000", got)
		}
	case <-tctx(t).Done():
		t.Fatal("the client's connection broke: the local server never got a close")
	}
}

// wantClose waits for the close lateServer reports.
func wantClose(t *testing.T, closes <-chan string, want string) {
	t.Helper()
	select {
	case got := <-closes:
		if got != want {
			t.Fatalf("the local server got close %q, want %q", got, want)
		}
	case <-tctx(t).Done():
		t.Fatalf("the local server never got a close (want %q)", want)
	}
}

// readN reads n data messages.
func (c *rawClient) readN(t *testing.T, n int) []string {
	t.Helper()
	var msgs []string
	for len(msgs) < n {
		f, err := ws.ReadFrame(c.r)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if f.Header.OpCode == ws.OpClose {
			t.Fatalf("closed after %q, want %d messages", msgs, n)
		}
		msgs = append(msgs, string(f.Payload))
	}
	return msgs
}

// TestListenToWSS: on a production broker, `listen --to wss://…` verifies
// the local server's certificate against the system roots and listen's
// --ca-file, and passes the chosen subprotocol on; a certificate it does
// not trust refuses the client like a backend that is down.
func TestListenToWSS(t *testing.T) {
	b := startProdBroker(t)
	ca := testutil.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "local.pem"), filepath.Join(dir, "local.key")
	ca.Issue(t, 2, certFile, keyFile)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"chat"}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.Write(r.Context(), websocket.MessageText, []byte("tls at "+r.URL.Path+" proto "+c.Subprotocol()))
		c.Read(r.Context())
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	local := "wss" + strings.TrimPrefix(srv.URL, "https") + "/base/"

	testutil.StartListen(t, b.ws+"/svc/tls/", "--to", local, "--ca-file", ca.PEMFile, "--credential", b.secret)
	c := dial(t, b.ws+"/svc/tls/x", "chat")
	if c.Subprotocol() != "chat" {
		t.Fatalf("subprotocol %q, want chat", c.Subprotocol())
	}
	expect(t, c, websocket.MessageText, "tls at /base/x proto chat")
	c.Close(websocket.StatusNormalClosure, "")

	l, _ := testutil.StartListen(t, b.ws+"/svc/untrusted/", "--to", local, "--credential", b.secret)
	_, resp, err := websocket.Dial(tctx(t), b.ws+"/svc/untrusted/x", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a local server with an untrusted certificate: %v %v, want 404", resp, err)
	}
	l.WaitLine(`level=WARN msg="client rejected: the local side failed".*certificate signed by unknown authority`)
}
