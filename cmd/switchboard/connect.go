package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/sdk"
)

func init() {
	commands["connect"] = command{runConnect, "talk to a WebSocket URL from the terminal", "connect ws://127.0.0.1:8080/chat/room"}
}

// runConnect is a terminal WebSocket client: stdin lines become text
// messages, messages are printed as lines on stdout (--binary: raw bytes
// both ways). At end of input it prints what the server still sends, and
// closes (1000) once the server is quiet for --linger or closes first. It exits 0, silently, when
// the connection closes normally (1000, or 1005 without a code), and
// prints the close code and reason on stderr otherwise. Flag names follow
// websocat's where the meaning is the same.
func runConnect(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("connect", flag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprintf(fl.Output(), "usage: switchboard connect URL [flags]\n       switchboard connect wsapp://ID/path --broker ws://HOST:PORT --credential SECRET [--protocol intent]...\n\n"+
			"Connect to a WebSocket URL: each stdin line is sent as a text message, each message\n"+
			"received is printed as a line (--binary: raw bytes both ways). At end of input the\n"+
			"replies still coming are printed, and the connection is closed with 1000 once the server\n"+
			"is quiet for --linger (or closes first). A normal close exits 0 quietly; any other exits\n"+
			"1 and says why.\n\n")
		fl.PrintDefaults()
	}
	var protocols, headers stringList
	fl.Var(&protocols, "protocol", "a subprotocol to offer (repeatable, in order of preference)")
	origin := fl.String("origin", "", "Origin header to send")
	fl.Var(&headers, "header", "an extra handshake header, \"Name: value\" (repeatable)")
	fl.Var(&headers, "H", "short for --header (as websocat)")
	brokerURL := fl.String("broker", "ws://127.0.0.1:8080", "broker for wsapp:// URLs")
	credential := fl.String("credential", "", "app secret for wsapp:// URLs (default $SWITCHBOARD_CREDENTIAL); the server app sees only the app id")
	linger := fl.Duration("linger", time.Second, "after end of input, close once the server has sent nothing for this long (or it closes first); 0: close at once")
	binary := fl.Bool("binary", false, "raw bytes: each read of stdin is a binary message, messages are written to stdout as they are (websocat --binary)")
	fl.BoolVar(binary, "b", false, "short for --binary")
	pingInterval := fl.Duration("ping-interval", 0, "send a ping this often (0: never); no pong within --ping-timeout ends the connection (websocat --ping-interval, here a duration)")
	pingTimeout := fl.Duration("ping-timeout", 0, "how long a ping waits for its pong (default: the ping interval)")
	quiet := fl.Bool("quiet", false, "print nothing on stderr but errors (websocat -q)")
	fl.BoolVar(quiet, "q", false, "short for --quiet")
	caFile := clientTLSFlag(fl)
	pos, err := parseInterspersed(fl, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{msg: "need exactly one URL, e.g. ws://127.0.0.1:8080/echo/x"}
	}
	h := http.Header{}
	for _, kv := range headers {
		k, v, ok := strings.Cut(kv, ":")
		if !ok {
			return usageError{msg: fmt.Sprintf("bad --header %q: want \"Name: value\"", kv)}
		}
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if *origin != "" {
		h.Set("Origin", *origin)
	}
	if *credential == "" {
		*credential = os.Getenv("SWITCHBOARD_CREDENTIAL") // read here, so -h never prints it
	}
	target := pos[0]
	if strings.HasPrefix(target, "wsapp://") {
		u, err := sdk.AppEndpoint(*brokerURL, target)
		if err != nil {
			return usageError{msg: err.Error()}
		}
		target = u
		if *credential != "" {
			h.Set("Authorization", "Bearer "+*credential)
		}
	}
	hc, err := clientHTTP(*caFile)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	c, resp, err := websocket.Dial(dctx, target, &websocket.DialOptions{Subprotocols: protocols, HTTPHeader: h, HTTPClient: hc})
	cancel()
	if err != nil {
		if resp != nil {
			return fmt.Errorf("connect %s: %s", pos[0], resp.Status)
		}
		return fmt.Errorf("connect %s: %w", pos[0], err)
	}
	c.SetReadLimit(64 << 20)
	if p := c.Subprotocol(); p != "" && !*quiet {
		fmt.Fprintf(os.Stderr, "switchboard: connected, subprotocol %s\n", p)
	}

	// The stdin reader cannot be interrupted; it ends with the process.
	chunks := make(chan []byte)
	inputDone := make(chan error, 1)
	go readInput(os.Stdin, *binary, chunks, inputDone)

	// Writer: stdin → messages; on end of input or signal, close. Writes
	// use a background context: coder/websocket closes the connection
	// when a Write's context ends. The reader below keeps reading while
	// the close handshake runs, so what the server sends before its close
	// is printed.
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	var lastRead atomic.Int64 // unix nanoseconds of the last message received
	lastRead.Store(time.Now().UnixNano())
	writerDone := make(chan struct{})
	var closedByUs bool // we sent the close and the handshake completed; read after writerDone
	typ := websocket.MessageText
	if *binary {
		typ = websocket.MessageBinary
	}
	go func() {
		defer close(writerDone)
		var pings <-chan time.Time
		if *pingInterval > 0 {
			t := time.NewTicker(*pingInterval)
			defer t.Stop()
			pings = t.C
		}
		for {
			select {
			case p := <-chunks:
				if err := c.Write(wctx, typ, p); err != nil {
					return
				}
			case <-pings:
				timeout := *pingTimeout
				if timeout <= 0 {
					timeout = *pingInterval
				}
				pctx, pcancel := context.WithTimeout(wctx, timeout)
				err := c.Ping(pctx) // answered by the reader below
				pcancel()
				if err != nil {
					fmt.Fprintf(os.Stderr, "switchboard: no pong within %v: closing\n", timeout)
					c.CloseNow()
					return
				}
			case <-inputDone:
				// Replies to what was sent may still be on their way: wait
				// until the server is quiet for --linger (it may also close
				// first), then close.
				for *linger > 0 {
					quietFor := time.Since(time.Unix(0, lastRead.Load()))
					if quietFor >= *linger {
						break
					}
					t := time.NewTimer(*linger - quietFor)
					select {
					case <-t.C:
					case <-ctx.Done():
					case <-wctx.Done():
						t.Stop()
						return
					}
					t.Stop()
					if ctx.Err() != nil {
						break
					}
				}
				closedByUs = c.Close(websocket.StatusNormalClosure, "") == nil
				return
			case <-ctx.Done():
				closedByUs = c.Close(websocket.StatusNormalClosure, "interrupted") == nil
				return
			case <-wctx.Done():
				return
			}
		}
	}()

	out := bufio.NewWriter(os.Stdout)
	var readErr error
	for {
		_, p, err := c.Read(context.Background())
		if err != nil {
			readErr = err
			break
		}
		lastRead.Store(time.Now().UnixNano())
		out.Write(p)
		if !*binary {
			out.WriteByte('\n')
		}
		if err := out.Flush(); err != nil {
			c.CloseNow()
			return fmt.Errorf("write stdout: %w", err)
		}
	}
	wcancel()
	<-writerDone

	var ce websocket.CloseError
	if !errors.As(readErr, &ce) && closedByUs {
		// The reader may see the connection closed rather than the peer's
		// close frame when our own close handshake finished first.
		ce = websocket.CloseError{Code: websocket.StatusNormalClosure}
	}
	if ce.Code == 0 {
		return fmt.Errorf("connection lost: %w", readErr)
	}
	if ce.Code == websocket.StatusNormalClosure || ce.Code == websocket.StatusNoStatusRcvd {
		return nil // a normal close is quiet
	}
	return fmt.Errorf("closed with %d %s", int(ce.Code), ce.Reason)
}

// readInput sends stdin to chunks: lines (without their newline), or with
// binary each read as it comes. It reports the end on done.
func readInput(r io.Reader, binary bool, chunks chan<- []byte, done chan<- error) {
	if binary {
		buf := make([]byte, 64<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				chunks <- append([]byte(nil), buf[:n]...)
			}
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				done <- err
				return
			}
		}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		chunks <- append([]byte(nil), sc.Bytes()...)
	}
	done <- sc.Err()
}
