package e2e

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/daemon"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/internal/testkit/wstest"
	"github.com/switchboard-dev/switchboard/sdk"
)

const maxMessage = 256 << 10

// startBroker runs an in-process broker on 127.0.0.1 and returns its ws://
// base URL.
func startBroker(t *testing.T) string {
	t.Helper()
	_, ws := testutil.StartBroker(t, daemon.Settings{Limits: broker.Limits{MaxMessage: maxMessage}},
		daemon.Options{}) // compression is on by default: the clients offer permessage-deflate
	return ws
}

// echoService attaches an SDK service that accepts every client (choosing
// the first offered subprotocol it knows, with a response header), echoes
// every message, and closes with 4002 when a client sends "close-me".
func echoService(t *testing.T, scopeURL string, protocols ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l, err := sdk.Listen(ctx, scopeURL, &sdk.ListenOptions{Protocols: protocols})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); _ = l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			req, err := l.Accept(ctx)
			if err != nil {
				return
			}
			chosen := ""
			for _, p := range req.Protocols {
				for _, q := range protocols {
					if p == q && chosen == "" {
						chosen = p
					}
				}
			}
			ch, err := req.Accept(ctx, chosen, http.Header{"X-Test-Echo": {"hi"}})
			if err != nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					typ, p, err := ch.Read(ctx)
					if err != nil {
						return
					}
					if typ == websocket.MessageText && string(p) == "close-me" {
						_ = ch.Close(4002, "as asked")
						return
					}
					if ch.Write(ctx, typ, p) != nil {
						return
					}
				}
			}()
		}
	}()
}

// TestConformanceThroughBroker runs the raw-frame cases (the categories of
// the Autobahn testsuite) against an SDK echo service through the broker.
func TestConformanceThroughBroker(t *testing.T) {
	ws := startBroker(t)
	echoService(t, ws+"/echo/")
	wstest.Run(t, ws+"/echo/conformance", wstest.Options{
		MaxMessageSize: maxMessage,
		Relay:          true,
	})
}

func TestInteropClients(t *testing.T) {
	ws := startBroker(t)
	echoService(t, ws+"/chat/", "chat")
	for _, c := range []wstest.Client{wstest.PythonClient, wstest.NodeClient} {
		t.Run(string(c)+"/echo", func(t *testing.T) {
			run := wstest.RunClient(t, c, "--url", ws+"/chat/room", "--protocol", "superchat", "--protocol", "chat",
				"--expect-protocol", "chat", "--print-response-header", "X-Test-Echo")
			r := run.Result
			if !r.OK || r.Echoed != 7 || r.Protocol != "chat" || r.Close == nil || r.Close.Code != 4001 || r.Close.Reason != "bye" {
				t.Fatalf("%s: %+v\n%s", c, r, run.Stderr)
			}
			if v := r.ResponseHeaders["X-Test-Echo"]; v == nil || *v != "hi" {
				t.Fatalf("%s: response header %v", c, r.ResponseHeaders)
			}
		})
		t.Run(string(c)+"/service-closes", func(t *testing.T) {
			run := wstest.RunClient(t, c, "--url", ws+"/chat/x", "--send", "one", "--send", "close-me", "--expect-close", "4002")
			r := run.Result
			if !r.OK || r.Close == nil || r.Close.Reason != "as asked" || len(r.Received) != 1 || r.Received[0] != "one" {
				t.Fatalf("%s: %+v\n%s", c, r, run.Stderr)
			}
		})
		t.Run(string(c)+"/rejected", func(t *testing.T) {
			run := wstest.RunClient(t, c, "--url", ws+"/nobody/here", "--expect-status", "404")
			if !run.Result.OK {
				t.Fatalf("%s: %+v\n%s", c, run.Result, run.Stderr)
			}
		})
	}
}
