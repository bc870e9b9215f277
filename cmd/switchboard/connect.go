package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/sdk"
)

func init() {
	commands["connect"] = command{runConnect, "talk to a WebSocket URL from the terminal", "connect ws://127.0.0.1:8080/chat/room"}
}

// runConnect is a terminal WebSocket client: stdin lines become text
// messages, messages are printed as lines on stdout. It exits 0 when the
// connection closes normally (1000, or 1005 without a code) and prints the
// close code and reason on stderr.
func runConnect(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("connect", flag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprintf(fl.Output(), "usage: switchboard connect URL [flags]\n       switchboard connect wsapp://ID/path --broker ws://HOST:PORT --credential SECRET [--protocol intent]...\n\n"+
			"Connect to a WebSocket URL: each stdin line is sent as a text message, each message\n"+
			"received is printed as a line. End of input closes the connection with 1000 (after --linger).\n\n")
		fl.PrintDefaults()
	}
	var protocols, headers stringList
	fl.Var(&protocols, "protocol", "a subprotocol to offer (repeatable, in order of preference)")
	origin := fl.String("origin", "", "Origin header to send")
	fl.Var(&headers, "header", "an extra handshake header, \"Name: value\" (repeatable)")
	brokerURL := fl.String("broker", "ws://127.0.0.1:8080", "broker for wsapp:// URLs")
	credential := fl.String("credential", "", "app secret for wsapp:// URLs (default $SWITCHBOARD_CREDENTIAL); the server app sees only the app id")
	linger := fl.Duration("linger", time.Second, "after end of input, keep printing messages for this long before closing (0: close at once)")
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
	if p := c.Subprotocol(); p != "" {
		fmt.Fprintf(os.Stderr, "switchboard: connected, subprotocol %s\n", p)
	}

	// The stdin reader cannot be interrupted; it ends with the process.
	lines := make(chan string)
	inputDone := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		inputDone <- sc.Err()
	}()

	// Writer: stdin lines → messages; on end of input or signal, close.
	// Writes use a background context: coder/websocket closes the
	// connection when a Write's context ends.
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	writerDone := make(chan struct{})
	var closedByUs bool // we sent the close and the handshake completed; read after writerDone
	go func() {
		defer close(writerDone)
		for {
			select {
			case line := <-lines:
				if err := c.Write(wctx, websocket.MessageText, []byte(line)); err != nil {
					return
				}
			case <-inputDone:
				t := time.NewTimer(*linger)
				select {
				case <-t.C:
				case <-ctx.Done():
				case <-wctx.Done():
				}
				t.Stop()
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
		out.Write(p)
		out.WriteByte('\n')
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
		fmt.Fprintf(os.Stderr, "switchboard: closed: %d %s\n", int(ce.Code), ce.Reason)
		return nil
	}
	return fmt.Errorf("closed with %d %s", int(ce.Code), ce.Reason)
}
