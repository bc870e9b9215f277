package sdk_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/protocol"
	"github.com/switchboard-dev/switchboard/sdk"
)

// fakeBroker answers a link's Hello with Welcome followed by reply, then
// reports what the SDK sent back. It exists only for link-level faults the
// real broker does not produce.
func fakeBroker(t *testing.T, reply []byte) (url string, got <-chan []byte) {
	t.Helper()
	out := make(chan []byte, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{protocol.Subprotocol}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		if _, _, err := c.Read(ctx); err != nil { // Hello
			return
		}
		wel := protocol.Welcome{Version: 1, Instance: 1, Scope: "/x/", PublicURL: "ws://fake/x/", Active: true, Window: 1024, MaxMessage: 1 << 20}
		if err := c.Write(ctx, websocket.MessageBinary, wel.Append(nil)); err != nil {
			return
		}
		if err := c.Write(ctx, websocket.MessageBinary, reply); err != nil {
			return
		}
		for {
			_, p, err := c.Read(ctx)
			if err != nil {
				out <- []byte("close:" + websocket.CloseStatus(err).String())
				close(out)
				return
			}
			out <- p
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/x/", out
}

func TestGarbageFromBrokerEndsLink(t *testing.T) {
	cases := map[string][]byte{
		"truncated":       {byte(protocol.TypeData), 9, 1},
		"unknown type":    {0x7f, 0},
		"wrong direction": (&protocol.Hello{Version: 1}).Append(nil),
		"trailing bytes":  {byte(protocol.TypeState), 2, 1, 1},
	}
	for name, reply := range cases {
		t.Run(name, func(t *testing.T) {
			url, got := fakeBroker(t, reply)
			l, err := sdk.Listen(ctxT(t), url, nil)
			if err != nil {
				t.Fatalf("listen: %v", err)
			}
			defer l.Close()
			select {
			case <-l.Done():
			case <-ctxT(t).Done():
				t.Fatal("link survived garbage")
			}
			if l.Err() == nil || errors.Is(l.Err(), sdk.ErrClosed) {
				t.Fatalf("Err = %v", l.Err())
			}
			// The SDK says why: Error{1}, then close 1002.
			var sawError, sawClose bool
			for p := range got {
				if s := string(p); strings.HasPrefix(s, "close:") {
					sawClose = s == "close:"+websocket.StatusProtocolError.String()
					continue
				}
				typ, body, _, err := protocol.Next(p)
				var e protocol.Error
				if err == nil && typ == protocol.TypeError && e.Decode(body) == nil && e.Code == protocol.ErrCodeProtocol {
					sawError = true
				}
			}
			if !sawError || !sawClose {
				t.Fatalf("broker saw error frame %v, close 1002 %v", sawError, sawClose)
			}
			if _, err := l.Accept(context.Background()); !errors.Is(err, sdk.ErrLinkClosed) {
				t.Fatalf("Accept after the link ended: %v", err)
			}
		})
	}
}

func TestErrorFrameAfterWelcome(t *testing.T) {
	e := protocol.Error{Code: protocol.ErrCodeShutdown, Message: "broker shutting down"}
	url, _ := fakeBroker(t, e.Append(nil))
	l, err := sdk.Listen(ctxT(t), url, nil)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer l.Close()
	<-l.Done()
	var le *sdk.LinkError
	if !errors.As(l.Err(), &le) || le.Code != protocol.ErrCodeShutdown {
		t.Fatalf("Err = %v, want LinkError 6", l.Err())
	}
}
