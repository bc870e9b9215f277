package sdk_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/sdk"
	"github.com/switchboard-dev/switchboard/server"
)

// exampleBroker starts an in-process broker that admits any loopback
// service, standing in for "switchboard serve --dev". It returns its
// ws:// URL and a function that stops it.
func exampleBroker() (string, func()) {
	quiet := slog.New(slog.DiscardHandler)
	b := broker.New(broker.Config{
		Logger:    quiet,
		Authorize: func(context.Context, broker.AuthRequest) (string, error) { return "dev", nil },
	})
	srv := httptest.NewServer(server.New(server.Config{Broker: b, Logger: quiet}))
	return "ws" + strings.TrimPrefix(srv.URL, "http"), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.Shutdown(ctx)
		srv.Close()
	}
}

// An echo service: accept every client under /echo/ and send each message
// back. Read acknowledges the previous message when it is called again, so
// a message counts as handled once the echo was written.
func ExampleListen() {
	brokerURL, stop := exampleBroker()
	defer stop()
	ctx := context.Background()

	l, err := sdk.Listen(ctx, brokerURL+"/echo/", &sdk.ListenOptions{Protocols: []string{"chat"}})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	served := make(chan struct{})
	go func() {
		for {
			req, err := l.Accept(ctx)
			if err != nil {
				return // the listener was closed
			}
			// Choose takes "chat" if the client offered it, none otherwise:
			// Accept cannot fail for a subprotocol the client did not
			// offer. Had it failed, the client would be rejected at once.
			ch, err := req.Accept(ctx, req.Choose("chat"), nil)
			if err != nil {
				continue
			}
			go func() {
				for {
					typ, p, err := ch.Read(ctx)
					if err != nil {
						fmt.Println("client closed with", websocket.CloseStatus(err))
						close(served)
						return
					}
					if err := ch.Write(ctx, typ, p); err != nil {
						return
					}
				}
			}()
		}
	}()

	// Any WebSocket client connects to the broker's URL.
	c, _, err := websocket.Dial(ctx, brokerURL+"/echo/room", &websocket.DialOptions{Subprotocols: []string{"chat"}})
	if err != nil {
		log.Fatal(err)
	}
	c.Write(ctx, websocket.MessageText, []byte("hello"))
	_, p, _ := c.Read(ctx)
	fmt.Printf("%s (subprotocol %s)\n", p, c.Subprotocol())
	c.Close(websocket.StatusNormalClosure, "")
	<-served
	// Output:
	// hello (subprotocol chat)
	// client closed with StatusNormalClosure
}

// A service reveals itself with a custom HTTP response, or rejects: the
// client then gets the same 404 as for a URL nobody serves.
func ExampleRequest_Respond() {
	brokerURL, stop := exampleBroker()
	defer stop()
	ctx := context.Background()

	l, err := sdk.Listen(ctx, brokerURL+"/private/", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			req, err := l.Accept(ctx)
			if err != nil {
				return
			}
			if strings.HasSuffix(req.Target, "/login") {
				req.Respond(ctx, http.StatusUnauthorized, http.Header{"WWW-Authenticate": {`Basic realm="private"`}}, nil)
			} else {
				req.Reject(ctx)
			}
		}
	}()
	for _, path := range []string{"/private/login", "/private/other"} {
		_, resp, _ := websocket.Dial(ctx, brokerURL+path, nil)
		fmt.Println(path, resp.StatusCode)
	}
	// Output:
	// /private/login 401
	// /private/other 404
}

// Push sends one message to every client whose target URL path has a
// prefix; Clients lists them.
func ExampleListener_Push() {
	brokerURL, stop := exampleBroker()
	defer stop()
	ctx := context.Background()

	l, err := sdk.Listen(ctx, brokerURL+"/news/", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			req, err := l.Accept(ctx)
			if err != nil {
				return
			}
			ch, err := req.Accept(ctx, "", nil)
			if err == nil {
				ch.Write(ctx, websocket.MessageText, []byte("subscribed"))
			}
		}
	}()
	sports, _, err := websocket.Dial(ctx, brokerURL+"/news/sports", nil)
	if err != nil {
		log.Fatal(err)
	}
	weather, _, err := websocket.Dial(ctx, brokerURL+"/news/weather", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sports.CloseNow()
	defer weather.CloseNow()
	sports.Read(ctx) // "subscribed": both channels are open
	weather.Read(ctx)
	l.Push(ctx, "/news/sports", websocket.MessageText, []byte("goal!"))
	l.Push(ctx, "", websocket.MessageText, []byte("hello everyone"))
	_, p, _ := sports.Read(ctx)
	fmt.Println("sports:", string(p))
	_, p, _ = sports.Read(ctx)
	fmt.Println("sports:", string(p))
	_, p, _ = weather.Read(ctx)
	fmt.Println("weather:", string(p))
	// Output:
	// sports: goal!
	// sports: hello everyone
	// weather: hello everyone
}

// The README's service: Attach keeps it attached across lost links and
// broker restarts, and Choose means Accept cannot fail for a subprotocol
// the client did not offer, so a client that offers none is served too.
func ExampleAttach() {
	brokerURL, stop := exampleBroker()
	defer stop()
	ctx := context.Background()

	svc, err := sdk.Attach(ctx, brokerURL+"/echo/", &sdk.AttachOptions{
		ListenOptions: sdk.ListenOptions{Protocols: []string{"chat"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()
	go func() {
		for {
			req, err := svc.Accept(ctx)
			if err != nil {
				return // the service was closed
			}
			ch, err := req.Accept(ctx, req.Choose("chat"), nil)
			if err != nil {
				continue // the client was rejected at once
			}
			go func() {
				for {
					typ, p, err := ch.Read(ctx)
					if err != nil {
						return
					}
					if err := ch.Write(ctx, typ, p); err != nil {
						return
					}
				}
			}()
		}
	}()

	for _, offer := range [][]string{{"chat"}, nil} {
		c, _, err := websocket.Dial(ctx, brokerURL+"/echo/room", &websocket.DialOptions{Subprotocols: offer})
		if err != nil {
			log.Fatal(err)
		}
		c.Write(ctx, websocket.MessageText, []byte("hello"))
		_, p, _ := c.Read(ctx)
		fmt.Printf("%s (subprotocol %q)\n", p, c.Subprotocol())
		c.Close(websocket.StatusNormalClosure, "")
	}
	// Output:
	// hello (subprotocol "chat")
	// hello (subprotocol "")
}
