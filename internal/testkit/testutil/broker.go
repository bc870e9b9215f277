package testutil

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/daemon"
)

// StartBroker runs an in-process broker assembled by package daemon, as
// `switchboard serve` assembles it (same defaults), on 127.0.0.1, and shuts
// it down when the test ends, failing the test if the shutdown does or if
// serving failed. When s has no File and o no Authorize, it runs in dev
// mode (loopback services attach without a credential). A nil logger is
// one that writes to the test log under -v. It returns the broker and its
// ws:// base URL.
func StartBroker(t testing.TB, s daemon.Settings, o daemon.Options) (*broker.Broker, string) {
	t.Helper()
	if o.Logger == nil {
		o.Logger = TestLogger(t)
	}
	if s.File == nil && o.Authorize == nil {
		s.Dev = true
	}
	if s.Listen == "" {
		s.Listen = "127.0.0.1:0"
	}
	d, err := daemon.New(s, o)
	if err != nil {
		t.Fatalf("assemble broker: %v", err)
	}
	ln, err := d.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("broker: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("broker shutdown did not finish in 20s")
		}
	})
	return d.Broker(), "ws://" + ln.Addr().String()
}

// StartBrokerTLS is StartBroker serving wss:// (o.TLS) with a certificate
// for 127.0.0.1 from a test CA. It returns the broker, its wss:// base URL
// and a client TLS configuration that trusts the CA.
func StartBrokerTLS(t testing.TB, s daemon.Settings, o daemon.Options) (*broker.Broker, string, *tls.Config) {
	t.Helper()
	ca := NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.Issue(t, 1, certFile, keyFile)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	b, ws := StartBroker(t, s, o)
	return b, "wss://" + strings.TrimPrefix(ws, "ws://"), &tls.Config{RootCAs: ca.Pool}
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
