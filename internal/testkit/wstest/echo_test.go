package wstest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// echoServer is the reference endpoint the kit and the interop scripts are
// proven against: coder/websocket with the broker's relay policy.
//
// Paths:
//   - /reject?status=N answers N with a small body (/reject-chunked streams
//     it chunked); no handshake.
//   - /close?code=C&reason=R accepts, then closes with C and R at once.
//   - /mangle accepts and echoes every message with one byte appended, a
//     broken echo for proving that checks fail.
//   - /lax accepts and echoes text without checking UTF-8, another broken
//     echo.
//   - anything else: the echo of the policy.
//
// It negotiates the subprotocols "chat" and "superchat" (in that order of
// preference) and answers a request header X-Test with X-Test-Echo.
type echoServer struct {
	URL  string // ws://127.0.0.1:port
	Addr string // 127.0.0.1:port

	limit  int64
	srv    *httptest.Server
	ctx    context.Context // cancelled on shutdown: ends every hijacked connection
	cancel context.CancelFunc
	wg     sync.WaitGroup // one per handler goroutine, hijacked ones included
}

// startEcho starts the reference echo server with message limit limit; it
// stops when the test ends.
func startEcho(t testing.TB, limit int) *echoServer {
	t.Helper()
	s := &echoServer{limit: int64(limit)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.Addr = s.srv.Listener.Addr().String()
	s.URL = "ws://" + s.Addr
	t.Cleanup(func() {
		s.cancel()
		s.srv.Close()
		s.wg.Wait()
	})
	return s
}

func (s *echoServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.wg.Add(1)
	defer s.wg.Done()
	switch r.URL.Path {
	case "/reject", "/reject-chunked":
		status, err := strconv.Atoi(r.URL.Query().Get("status"))
		if err != nil {
			status = http.StatusForbidden
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte("rejected\n"))
		if r.URL.Path == "/reject-chunked" {
			w.(http.Flusher).Flush()
			_, _ = w.Write([]byte("second chunk\n"))
		}
		return
	}
	if v := r.Header.Get("X-Test"); v != "" {
		w.Header().Set("X-Test-Echo", v)
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:       []string{"chat", "superchat"},
		InsecureSkipVerify: true, // clients from scripts send no Origin or a foreign one
	})
	if err != nil {
		return // Accept has written the HTTP error
	}
	defer c.CloseNow()
	c.SetReadLimit(s.limit)
	switch r.URL.Path {
	case "/close":
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		_ = c.Close(websocket.StatusCode(code), r.URL.Query().Get("reason"))
	case "/mangle":
		s.echo(c, func(b []byte) []byte { return append(b, '!') }, true)
	case "/lax":
		s.echo(c, func(b []byte) []byte { return b }, false)
	default:
		s.echo(c, func(b []byte) []byte { return b }, true)
	}
}

// echo sends every message back through edit until the connection ends.
func (s *echoServer) echo(c *websocket.Conn, edit func([]byte) []byte, checkUTF8 bool) {
	for {
		typ, b, err := c.Read(s.ctx)
		if err != nil {
			// A close from the peer has been answered by the library; for
			// a protocol error it has sent its close frame; either way
			// the deferred CloseNow ends TCP.
			return
		}
		if checkUTF8 && typ == websocket.MessageText && !utf8.Valid(b) {
			_ = c.Close(websocket.StatusInvalidFramePayloadData, "invalid UTF-8 in a text message")
			return
		}
		if err := c.Write(s.ctx, typ, edit(b)); err != nil {
			return
		}
	}
}
