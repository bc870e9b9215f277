package main

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/sdk"
)

// serialClient is an HTTP client trusting pool that records the serial
// number of the last server certificate it verified.
type serialClient struct {
	*http.Client
	mu   sync.Mutex
	last string // guarded by mu
}

func newSerialClient(pool *x509.CertPool, serverName string) *serialClient {
	sc := &serialClient{}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, ServerName: serverName, VerifyConnection: func(cs tls.ConnectionState) error {
		sc.mu.Lock()
		sc.last = cs.PeerCertificates[0].SerialNumber.String()
		sc.mu.Unlock()
		return nil
	}}
	tr.DisableKeepAlives = true
	sc.Client = &http.Client{Transport: tr}
	return sc
}

func (sc *serialClient) serial() string {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.last
}

// dialWSS dials url with hc and returns the connection and the serial of
// the certificate it saw.
func dialWSS(t *testing.T, sc *serialClient, url string) (*websocket.Conn, string) {
	t.Helper()
	c, _, err := websocket.Dial(tctx(t), url, &websocket.DialOptions{HTTPClient: sc.Client})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, sc.serial()
}

// TestTLSServe runs serve with --tls-cert/--tls-key: the CLI (listen,
// connect, status with --ca-file), the SDK and a plain client work over
// wss:// and https://, and SIGHUP swaps the certificate for new
// connections while an open one keeps working.
func TestTLSServe(t *testing.T) {
	ca := testutil.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.Issue(t, 1, certFile, keyFile)

	srv, httpsBase := testutil.StartServe(t, "--dev", "--tls-cert", certFile, "--tls-key", keyFile)
	addr := httpsHost(t, httpsBase)
	base := "wss://" + addr

	// Without --ca-file the CLI does not trust the private CA.
	out, err := testutil.Command(t, "status", "--broker", "https://"+addr).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "certificate") {
		t.Fatalf("status without --ca-file: err %v, output %s; want a certificate error", err, out)
	}

	lis, public := testutil.StartListen(t, base+"/echo/", "--echo", "--ca-file", ca.PEMFile)
	if public != base+"/echo/" {
		t.Fatalf("listen serves %s, want %s/echo/", public, base)
	}

	sc := newSerialClient(ca.Pool, "")
	old, serial := dialWSS(t, sc, base+"/echo/old")
	if serial != "1" {
		t.Fatalf("first connection saw certificate serial %q, want 1", serial)
	}
	send(t, old, websocket.MessageText, "before reload")
	expect(t, old, websocket.MessageText, "before reload")

	resp, err := sc.Get("https://" + addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET https://%s/healthz: %v %v", addr, resp, err)
	}
	resp.Body.Close()

	// connect over wss:// with --ca-file.
	conn := testutil.Command(t, "connect", base+"/echo/cli", "--ca-file", ca.PEMFile)
	conn.Stdin = strings.NewReader("hello over wss\n")
	if out, err := conn.Output(); err != nil || strings.TrimSpace(string(out)) != "hello over wss" {
		t.Fatalf("connect over wss: %v, output %q", err, out)
	}
	// status over https:// with --ca-file.
	if out, err := testutil.Command(t, "status", "--broker", base, "--ca-file", ca.PEMFile).CombinedOutput(); err != nil || !strings.Contains(string(out), "scope ") {
		t.Fatalf("status over https: %v\n%s", err, out)
	}

	// The Go SDK attaches over wss:// too.
	hc, err := clientHTTP(ca.PEMFile)
	if err != nil {
		t.Fatal(err)
	}
	l, err := sdk.Listen(tctx(t), base+"/sdk/", &sdk.ListenOptions{Dial: &websocket.DialOptions{HTTPClient: hc}})
	if err != nil {
		t.Fatalf("sdk.Listen over wss: %v", err)
	}
	defer l.Close()
	if l.URL() != base+"/sdk/" {
		t.Fatalf("sdk listener URL %q, want %s/sdk/", l.URL(), base)
	}
	go func() {
		req, err := l.Accept(tctx(t))
		if err != nil {
			return
		}
		ch, err := req.Accept(tctx(t), "", nil)
		if err != nil {
			return
		}
		typ, p, err := ch.Read(tctx(t))
		if err == nil {
			ch.Write(tctx(t), typ, append([]byte("sdk: "), p...))
		}
	}()
	sdkc, _ := dialWSS(t, sc, base+"/sdk/x")
	send(t, sdkc, websocket.MessageText, "hi")
	expect(t, sdkc, websocket.MessageText, "sdk: hi")

	// New certificate files, SIGHUP: new connections see serial 2.
	ca.Issue(t, 2, certFile, keyFile)
	srv.Signal(syscall.SIGHUP)
	srv.WaitLine(`TLS certificate reloaded.*serial=2`)
	fresh, serial := dialWSS(t, sc, base+"/echo/new")
	if serial != "2" {
		t.Fatalf("connection after SIGHUP saw certificate serial %q, want 2", serial)
	}
	send(t, fresh, websocket.MessageText, "after reload")
	expect(t, fresh, websocket.MessageText, "after reload")
	// The connection made before the reload was not dropped.
	send(t, old, websocket.MessageText, "still here")
	expect(t, old, websocket.MessageText, "still here")

	// Broken files on SIGHUP: the previous certificate stays.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv.Signal(syscall.SIGHUP)
	srv.WaitLine(`reload failed; keeping the previous state.*TLS certificate`)
	afterBad, serial := dialWSS(t, sc, base+"/echo/after-bad")
	if serial != "2" {
		t.Fatalf("after a failed reload the certificate serial is %q, want 2", serial)
	}
	afterBad.CloseNow()

	for _, c := range []*websocket.Conn{old, fresh, sdkc} {
		c.Close(websocket.StatusNormalClosure, "")
	}
	l.Close()
	lis.Signal(syscall.SIGTERM)
	lis.Wait()
	srv.Signal(syscall.SIGTERM)
	if code := srv.Wait(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
}

// TestTLSFlagsMisuse: half a certificate pair, or files and ACME together,
// are usage errors.
func TestTLSFlagsMisuse(t *testing.T) {
	for _, args := range [][]string{
		{"--tls-cert", "x.pem"},
		{"--tls-key", "x.pem"},
		{"--tls-cert", "x.pem", "--tls-key", "y.pem", "--acme-domain", "a.example"},
		{"--acme-domain", "localhost", "--acme-cache", t.TempDir()},
	} {
		cmd := testutil.Command(t, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
		cmd.Stderr = io.Discard
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("serve %v: %v, want exit 2", args, err)
		}
	}
}

// httpsHost is the host:port of an https:// base URL; it fails the test
// when the broker does not serve TLS.
func httpsHost(t *testing.T, base string) string {
	t.Helper()
	host, ok := strings.CutPrefix(base, "https://")
	if !ok {
		t.Fatalf("the broker serves %s, want https://", base)
	}
	return host
}
