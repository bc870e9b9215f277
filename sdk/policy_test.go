package sdk_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/daemon"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/protocol"
	"github.com/switchboard-dev/switchboard/sdk"
)

// startProdBroker runs an in-process production broker (a config file
// with a credential owning /svc/, no dev mode) and returns its ws:// base
// URL and that credential.
func startProdBroker(t *testing.T) (ws, credential string) {
	t.Helper()
	secret, hash, err := config.NewCredential()
	if err != nil {
		t.Fatal(err)
	}
	f := &config.File{Credentials: []config.Credential{{Name: "svc", CredentialHash: hash, Scopes: []string{"/svc/"}}}}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	_, ws = testutil.StartBroker(t, daemon.Settings{File: f, RefusalFloor: -1}, daemon.Options{})
	return ws, secret
}

func dialOrigin(ctx context.Context, url, origin string) (*websocket.Conn, error) {
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	return c, err
}

// TestOriginsComparedCanonically (issue 16): on a production broker, a
// service's admitted origins and a client's Origin are compared in the
// canonical form of scope.CanonicalOrigin, so "https://Example.com:443"
// admits a page of https://example.com; another port, scheme or host (a
// trailing dot is another host to a browser) is refused, and so is a
// client with no Origin. A listed origin that is not one fails Listen with
// a message that says which.
func TestOriginsComparedCanonically(t *testing.T) {
	ws, secret := startProdBroker(t)
	ctx := ctxT(t)
	l, err := sdk.Listen(ctx, ws+"/svc/o/", &sdk.ListenOptions{Credential: secret,
		Origins: []string{"https://Example.com:443", "HTTP://[0:0::1]:8080"}})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, l, echo)
	for origin, admitted := range map[string]bool{
		"https://example.com":      true,
		"https://EXAMPLE.COM":      true,
		"https://example.com:443":  true,
		"http://[::1]:8080":        true,
		"https://example.com:8443": false,
		"http://example.com":       false,
		"https://example.com.":     false,
		"https://example.org":      false,
		"http://[::1]":             false,
		"null":                     false,
		"":                         false,
	} {
		c, err := dialOrigin(ctx, ws+"/svc/o/x", origin)
		if !admitted {
			if err == nil {
				c.CloseNow()
				t.Errorf("origin %q was admitted", origin)
			} else if !strings.Contains(err.Error(), "404") {
				t.Errorf("origin %q: %v, want the uniform 404", origin, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("origin %q was refused: %v", origin, err)
			continue
		}
		mustWrite(t, c, websocket.MessageText, origin)
		mustRead(t, c, websocket.MessageText, origin)
		c.Close(websocket.StatusNormalClosure, "")
	}

	// "*" admits every client, with or without an Origin.
	any, err := sdk.Listen(ctx, ws+"/svc/any/", &sdk.ListenOptions{Credential: secret, Origins: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, any, echo)
	for _, origin := range []string{"", "https://anything.example"} {
		c, err := dialOrigin(ctx, ws+"/svc/any/x", origin)
		if err != nil {
			t.Fatalf("origin %q refused by a service admitting \"*\": %v", origin, err)
		}
		c.CloseNow()
	}

	_, err = sdk.Listen(ctx, ws+"/svc/bad/", &sdk.ListenOptions{Credential: secret, Origins: []string{"example.com"}})
	if err == nil || !strings.Contains(err.Error(), `origin "example.com": want scheme://host[:port]`) {
		t.Fatalf("listen with an origin that is not one: %v", err)
	}
}

// TestAcceptOfUnofferedSubprotocolTellsCaller (issue 16): the rule that an
// Accept picks an offered subprotocol or none is protocol.CheckSubprotocol,
// enforced by the broker (broker/TestAcceptOfUnofferedSubprotocolRefusedOnce)
// and applied by Request.Accept first, so its caller gets an error that
// names the channel and the offer, and the client is rejected at once.
func TestAcceptOfUnofferedSubprotocolTellsCaller(t *testing.T) {
	ws, secret := startProdBroker(t)
	ctx := ctxT(t)
	l, err := sdk.Listen(ctx, ws+"/svc/sp/", &sdk.ListenOptions{Credential: secret})
	if err != nil {
		t.Fatal(err)
	}
	errc := serve(t, l, func(r *sdk.Request) error {
		_, err := r.Accept(context.Background(), "other", nil)
		if err == nil {
			return errors.New("Accept of an unoffered subprotocol succeeded")
		}
		return err
	})
	start := time.Now()
	_, _, derr := websocket.Dial(ctx, ws+"/svc/sp/x", &websocket.DialOptions{Subprotocols: []string{"chat"}})
	if derr == nil || !strings.Contains(derr.Error(), "404") {
		t.Fatalf("client dial: %v, want the uniform 404", derr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the client waited %v for its rejection", d)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, protocol.ErrNotOffered) || !strings.HasPrefix(err.Error(), "accept channel ") ||
			!strings.Contains(err.Error(), `"other" (it offered ["chat"])`) || !strings.HasSuffix(err.Error(), "the client was rejected") {
			t.Fatalf("Accept error %q", err)
		}
	case <-time.After(testutil.Patience):
		t.Fatal("the handler did not return")
	}
}
