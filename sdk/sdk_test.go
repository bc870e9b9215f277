package sdk_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/protocol"
	"github.com/switchboard-dev/switchboard/sdk"
)

func TestEchoBothTypesAndCloses(t *testing.T) {
	tb := startBroker(t, broker.Limits{})
	l := tb.listen("/echo/", &sdk.ListenOptions{Protocols: []string{"chat"}})
	if l.URL() == "" || l.Scope() != "/echo/" || !l.Active() {
		t.Fatalf("listener: url %q scope %q active %v", l.URL(), l.Scope(), l.Active())
	}
	closed := make(chan error, 1)
	serve(t, l, func(r *sdk.Request) error {
		if r.Target != tb.url+"/echo/x?y=1" {
			t.Errorf("target %q", r.Target)
		}
		ch, err := r.Accept(context.Background(), "chat", http.Header{"X-Served-By": {"test"}})
		if err != nil {
			return err
		}
		for {
			typ, p, err := ch.Read(context.Background())
			if err != nil {
				closed <- err
				return nil
			}
			if err := ch.Write(context.Background(), typ, p); err != nil {
				return err
			}
		}
	})
	ctx := ctxT(t)
	c, resp, err := websocket.Dial(ctx, tb.url+"/echo/x?y=1", &websocket.DialOptions{Subprotocols: []string{"chat"}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	if c.Subprotocol() != "chat" || resp.Header.Get("X-Served-By") != "test" {
		t.Fatalf("subprotocol %q, X-Served-By %q", c.Subprotocol(), resp.Header.Get("X-Served-By"))
	}
	mustWrite(t, c, websocket.MessageText, "hello ✓")
	mustRead(t, c, websocket.MessageText, "hello ✓")
	mustWrite(t, c, websocket.MessageBinary, "\x00\x01\xff")
	mustRead(t, c, websocket.MessageBinary, "\x00\x01\xff")
	if err := c.Close(4001, "bye"); err != nil {
		t.Fatalf("client close: %v", err)
	}
	select {
	case err := <-closed:
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "bye" {
			t.Fatalf("service saw %v, want close 4001 bye", err)
		}
	case <-ctx.Done():
		t.Fatal("service never saw the close")
	}
}

func TestServiceCloseAndRespondAndReject(t *testing.T) {
	tb := startBroker(t, broker.Limits{})
	l := tb.listen("/svc/", nil)
	serve(t, l, func(r *sdk.Request) error {
		ctx := context.Background()
		switch r.Target[len(tb.url):] {
		case "/svc/close":
			ch, err := r.Accept(ctx, "", nil)
			if err != nil {
				return err
			}
			if err := ch.Write(ctx, websocket.MessageText, []byte("last words")); err != nil {
				return err
			}
			return ch.Close(4002, "done here")
		case "/svc/respond":
			return r.Respond(ctx, 401, http.Header{"Www-Authenticate": {`Basic realm="x"`}}, []byte("who are you?"))
		default:
			return r.Reject(ctx)
		}
	})
	c := tb.dial("/svc/close")
	mustRead(t, c, websocket.MessageText, "last words")
	_, _, err := c.Read(ctxT(t))
	if websocket.CloseStatus(err) != 4002 {
		t.Fatalf("client read after service close: %v, want 4002", err)
	}

	_, resp, err := websocket.Dial(ctxT(t), tb.url+"/svc/respond", nil)
	if err == nil || resp == nil || resp.StatusCode != 401 || resp.Header.Get("Www-Authenticate") == "" {
		t.Fatalf("respond: err %v resp %+v", err, resp)
	}
	_, resp, err = websocket.Dial(ctxT(t), tb.url+"/svc/nope", nil)
	if err == nil || resp == nil || resp.StatusCode != 404 {
		t.Fatalf("reject: err %v resp %+v", err, resp)
	}
}

func TestMissingCredentialIsALinkError(t *testing.T) {
	tb := startBroker(t, broker.Limits{})
	_, err := sdk.Listen(ctxT(t), tb.url+"/echo/", &sdk.ListenOptions{})
	var le *sdk.LinkError
	if !errors.As(err, &le) || le.Code != protocol.ErrCodeUnauthorized || le.Message == "" {
		t.Fatalf("listen without credential: %v, want LinkError code 3", err)
	}
	// In the Go caller's words, not the CLI's.
	if msg := err.Error(); !strings.Contains(msg, "ListenOptions.Credential") || strings.Contains(msg, "--credential") {
		t.Fatalf("error %q should point at ListenOptions.Credential and not at a CLI flag", msg)
	}
}

// The context of Listen bounds only the attach.
func TestListenContextBoundsOnlyTheAttach(t *testing.T) {
	tb := startBroker(t, broker.Limits{})
	ctx, cancel := context.WithCancel(context.Background())
	l, err := sdk.Listen(ctx, tb.url+"/ctx/", &sdk.ListenOptions{Credential: secret})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cancel()
	serve(t, l, echo)
	c := tb.dial("/ctx/")
	mustWrite(t, c, websocket.MessageText, "still here")
	mustRead(t, c, websocket.MessageText, "still here")
	if err := l.Err(); err != nil {
		t.Fatalf("link ended: %v", err)
	}
}

// A connect request answered after the broker's accept timeout is closed
// by the broker; the late channel reports it instead of breaking the link.
func TestLateAcceptIsClosed(t *testing.T) {
	tb := startBroker(t, broker.Limits{AcceptTimeout: 50 * time.Millisecond})
	ctx := ctxT(t)
	l := tb.listen("/late/", nil)
	dialed := make(chan error, 1)
	go func() {
		_, _, err := websocket.Dial(ctx, tb.url+"/late/", nil)
		dialed <- err
	}()
	r, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-dialed; err == nil { // the client was rejected: the request expired
		t.Fatal("client connected without an answer")
	}
	ch, err := r.Accept(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ch.Read(ctx); websocket.CloseStatus(err) != websocket.StatusAbnormalClosure {
		t.Fatalf("late channel read: %v, want close 1006", err)
	}
	if l.Err() != nil {
		t.Fatalf("link ended: %v", l.Err())
	}
}
