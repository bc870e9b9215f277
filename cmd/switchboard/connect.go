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
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/switchboard-dev/switchboard/sdk"
)

func init() {
	commands["connect"] = command{runConnect, "talk to a WebSocket URL from the terminal", "connect ws://127.0.0.1:8080/chat/room"}
}

// runConnect is a terminal WebSocket client: stdin lines become text
// messages, messages are printed as lines on stdout (--binary: raw bytes
// both ways). At end of input it sends its close (1000) and waits for the
// server's, printing every message that comes before it; a server that
// does not answer within --close-timeout is cut. It exits 0, silently,
// when the connection closes normally (1000, or 1005 without a code), and
// prints the close code and reason on stderr otherwise. It honours
// HTTP(S)_PROXY and NO_PROXY (proxyNetDial). Flag names follow websocat's
// where the meaning is the same.
func runConnect(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("connect", flag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprintf(fl.Output(), "usage: switchboard connect URL [flags]\n       switchboard connect wsapp://ID/path --broker ws://HOST:PORT --credential SECRET [--protocol intent]...\n\n"+
			"Connect to a WebSocket URL: each stdin line is sent as a text message, each message\n"+
			"received is printed as a line (--binary: raw bytes both ways). At end of input it\n"+
			"closes (1000) and waits for the server's close, printing the replies still coming\n"+
			"until then (at most --close-timeout). A normal close exits 0 quietly; any other exits\n"+
			"1 and says why.\n\n"+
			"It goes through the HTTP proxy the environment names (HTTP_PROXY for ws://, HTTPS_PROXY\n"+
			"for wss://, an http:// or https:// proxy URL, user:password for Basic auth), by a\n"+
			"CONNECT tunnel, except to NO_PROXY's hosts and to loopback addresses (as Go's net/http).\n\n")
		fl.PrintDefaults()
	}
	var protocols, headers stringList
	fl.Var(&protocols, "protocol", "a subprotocol to offer (repeatable, in order of preference)")
	origin := fl.String("origin", "", "Origin header to send")
	fl.Var(&headers, "header", "an extra handshake header, \"Name: value\" (repeatable)")
	fl.Var(&headers, "H", "short for --header (as websocat)")
	brokerURL := fl.String("broker", "ws://127.0.0.1:8080", "broker for wsapp:// URLs")
	credential := fl.String("credential", "", "app secret for wsapp:// URLs (default $SWITCHBOARD_CREDENTIAL); the server app sees only the app id")
	closeTimeout := fl.Duration("close-timeout", maxCloseTimeout, "after end of input (or Ctrl-C), how long to wait for the server's close, printing what comes until then; at most 5s")
	fl.Duration("linger", 0, "deprecated, ignored: connect waits for the server's close (--close-timeout)")
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
	if *closeTimeout <= 0 || *closeTimeout > maxCloseTimeout {
		return usageError{msg: fmt.Sprintf("--close-timeout must be more than 0 and at most %v", maxCloseTimeout)}
	}
	fl.Visit(func(f *flag.Flag) {
		if f.Name == "linger" && !*quiet {
			fmt.Fprintln(os.Stderr, "switchboard: --linger is deprecated and ignored: connect now waits for the server's close (--close-timeout)")
		}
	})
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
	tlsConfig, err := clientTLSConfig(*caFile)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	c, subprotocol, err := dialClient(dctx, target, protocols, h, tlsConfig)
	cancel()
	if err != nil {
		return fmt.Errorf("connect %s: %w", pos[0], err)
	}
	defer c.conn.Close()
	if subprotocol != "" && !*quiet {
		fmt.Fprintf(os.Stderr, "switchboard: connected, subprotocol %s\n", subprotocol)
	}

	// The stdin reader cannot be interrupted; it ends with the process.
	chunks := make(chan []byte)
	inputDone := make(chan error, 1)
	go readInput(os.Stdin, *binary, chunks, inputDone)

	// Writer: stdin → messages, pings; on end of input or a signal, our
	// close. The reader below goes on reading until the server's close, so
	// that the replies it sends before it are printed; a server that does
	// not close within --close-timeout of ours is cut.
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	var cut atomic.Bool     // the server did not answer our close in time
	var stopCut func() bool // set by the writer once it sent our close; read after writerDone
	writerDone := make(chan struct{})
	op := ws.OpText
	if *binary {
		op = ws.OpBinary
	}
	go func() {
		defer close(writerDone)
		var pings <-chan time.Time
		if *pingInterval > 0 {
			t := time.NewTicker(*pingInterval)
			defer t.Stop()
			pings = t.C
		}
		closeWith := func(reason string) {
			if c.sendClose(ws.StatusNormalClosure, reason) == nil {
				stopCut = c.cutAfter(*closeTimeout, &cut)
			}
		}
		for {
			select {
			case p := <-chunks:
				if err := c.write(op, p); err != nil {
					return
				}
			case <-pings:
				timeout := *pingTimeout
				if timeout <= 0 {
					timeout = *pingInterval
				}
				pctx, pcancel := context.WithTimeout(wctx, timeout)
				err := c.ping(pctx) // the reader below reports the pong
				pcancel()
				if err != nil {
					if wctx.Err() == nil {
						fmt.Fprintf(os.Stderr, "switchboard: no pong within %v: closing\n", timeout)
						c.conn.Close()
					}
					return
				}
			case <-inputDone:
				// Replies to what was sent may still be on their way: the
				// server sends them before it answers our close.
				closeWith("")
				return
			case <-ctx.Done():
				closeWith("interrupted")
				return
			case <-wctx.Done():
				return
			}
		}
	}()

	out := bufio.NewWriter(os.Stdout)
	var readErr error
	for {
		_, p, err := c.read()
		if err != nil {
			readErr = err
			break
		}
		out.Write(p)
		if !*binary {
			out.WriteByte('\n')
		}
		if err := out.Flush(); err != nil {
			c.conn.Close()
			return fmt.Errorf("write stdout: %w", err)
		}
	}
	c.conn.Close()
	wcancel()
	<-writerDone
	if stopCut != nil {
		stopCut()
	}

	var ce websocket.CloseError
	switch {
	case errors.As(readErr, &ce):
	case cut.Load():
		return fmt.Errorf("no close from the server within %v (--close-timeout): connection cut", *closeTimeout)
	case errors.Is(readErr, wsutil.ErrMessageTooLarge):
		return fmt.Errorf("the server sent a message larger than %d MiB", maxRead>>20)
	default:
		return fmt.Errorf("connection lost: %w", readErr)
	}
	if ce.Code == websocket.StatusNormalClosure || ce.Code == websocket.StatusNoStatusRcvd {
		return nil // a normal close is quiet
	}
	return fmt.Errorf("closed with %d %s", int(ce.Code), ce.Reason)
}

// maxCloseTimeout is the longest --close-timeout (and its default): most
// servers and clients give a closing handshake no more (coder/websocket
// and the broker's own client side wait 5 s at most).
const maxCloseTimeout = 5 * time.Second

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
