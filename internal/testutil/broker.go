package testutil

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/server"
)

// StartBroker runs an in-process broker behind the http.Server that serve
// uses (2 s handshake timeout, 16 KiB of headers) on 127.0.0.1, and shuts
// it down when the test ends, failing it if the shutdown does. Nil fields
// get test defaults: a logger that writes to the test log under -v (and
// nowhere otherwise), dev-mode authorization, and Dev on the server.
// server.Config's Broker and Logger are filled in. It returns the broker
// and its ws:// base URL.
func StartBroker(t testing.TB, bc broker.Config, sc server.Config) (*broker.Broker, string) {
	t.Helper()
	if bc.Logger == nil {
		bc.Logger = TestLogger(t)
	}
	if bc.Authorize == nil {
		bc.Authorize = (&config.File{}).Authorizer(true)
		sc.Dev = true
	}
	b := broker.New(bc)
	sc.Broker, sc.Logger = b, bc.Logger
	s := server.New(sc)
	srv := httptest.NewUnstartedServer(s)
	srv.Config = s.HTTPServer(2*time.Second, 16<<10)
	srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("broker shutdown: %v", err)
		}
		srv.Close()
	})
	return b, "ws" + strings.TrimPrefix(srv.URL, "http")
}

// TestLogger writes to the test log under -v, and nowhere otherwise.
func TestLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
