package main

import (
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// proxiedHost is a name only the test proxy resolves (to 127.0.0.1): Go,
// as net/http, never proxies loopback addresses or localhost, and a
// client that reaches a broker by this name went through the proxy.
const proxiedHost = "broker.test"

// connectProxy is an HTTP proxy on 127.0.0.1 that tunnels CONNECT, as a
// corporate proxy does: it resolves proxiedHost, requires Basic
// credentials when auth is set, and records the tunnels it opened.
type connectProxy struct {
	srv  *httptest.Server
	auth string // "user:password" required, or ""

	mu      sync.Mutex
	tunnels []string         // the CONNECT targets; guarded by mu
	conns   []net.Conn       // closed at the end of the test; guarded by mu
	wg      sync.WaitGroup   // the splicing goroutines
	cert    *tls.Certificate // serve TLS (an https:// proxy URL) with it, if set
}

// startConnectProxy starts a CONNECT proxy (TLS with cert, if not nil),
// stopped at the end of the test.
func startConnectProxy(t *testing.T, auth string, cert *tls.Certificate) *connectProxy {
	t.Helper()
	p := &connectProxy{auth: auth, cert: cert}
	p.srv = httptest.NewUnstartedServer(p)
	if cert != nil {
		p.srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
		p.srv.StartTLS()
	} else {
		p.srv.Start()
	}
	t.Cleanup(func() {
		p.srv.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// URL is the proxy's URL with userinfo (user:password, or "" for none).
func (p *connectProxy) URL(userinfo string) string {
	u, _ := url.Parse(p.srv.URL)
	if userinfo != "" {
		user, pw, _ := strings.Cut(userinfo, ":")
		u.User = url.UserPassword(user, pw)
	}
	return u.String()
}

// Addr is the proxy's host:port.
func (p *connectProxy) Addr() string { return p.srv.Listener.Addr().String() }

// Tunnels returns the targets of the tunnels opened so far.
func (p *connectProxy) Tunnels() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.tunnels...)
}

func (p *connectProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	if p.auth != "" && r.Header.Get("Proxy-Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte(p.auth)) {
		w.Header().Set("Proxy-Authenticate", `Basic realm="test"`)
		http.Error(w, "credentials needed", http.StatusProxyAuthRequired)
		return
	}
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if host == proxiedHost {
		host = "127.0.0.1"
	}
	up, err := net.Dial("tcp", net.JoinHostPort(host, port))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	down, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		up.Close()
		return
	}
	p.mu.Lock()
	p.tunnels = append(p.tunnels, r.Host)
	p.conns = append(p.conns, up, down)
	p.mu.Unlock()
	if _, err := down.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		up.Close()
		down.Close()
		return
	}
	splice := func(dst net.Conn, src io.Reader) {
		defer p.wg.Done()
		io.Copy(dst, src)
		up.Close()
		down.Close()
	}
	p.wg.Add(2)
	go splice(up, brw.Reader) // what the client sent after its CONNECT, then the rest
	go splice(down, up)
}

// proxyEnv is the proxy environment for a connect process: every variable
// set (upper and lower case), so the developer's own does not count.
func proxyEnv(httpProxy, httpsProxy, noProxy string) []string {
	var env []string
	for k, v := range map[string]string{"HTTP_PROXY": httpProxy, "HTTPS_PROXY": httpsProxy, "NO_PROXY": noProxy} {
		env = append(env, k+"="+v, strings.ToLower(k)+"="+v)
	}
	return env
}

// TestConnectThroughProxy: on a production broker, `connect` honours
// HTTP_PROXY for ws:// (a CONNECT tunnel, through which the echo service
// answers), with the proxy's Basic credentials from its URL (wrong or
// missing ones: exit 1 and the proxy's 407, never the password), and
// NO_PROXY's exceptions; loopback targets never go through the proxy.
func TestConnectThroughProxy(t *testing.T) {
	b := startProdBroker(t)
	testutil.StartListen(t, b.ws+"/svc/echo/", "--echo", "--credential", b.secret)
	_, port, err := net.SplitHostPort(strings.TrimPrefix(b.ws, "ws://"))
	if err != nil {
		t.Fatal(err)
	}
	authority := net.JoinHostPort(proxiedHost, port)
	target := "ws://" + authority + "/svc/echo/x"

	p := startConnectProxy(t, "", nil)
	out, stderr, code := testutil.Run(t, "through the proxy\n", proxyEnv(p.URL(""), "", ""), "connect", target)
	if code != 0 || out != "through the proxy\n" || stderr != "" {
		t.Fatalf("connect through HTTP_PROXY: exit %d, out %q, stderr %q", code, out, stderr)
	}
	if got := p.Tunnels(); len(got) != 1 || got[0] != authority {
		t.Fatalf("the proxy opened tunnels to %q, want one to %s", got, authority)
	}

	// NO_PROXY names the target: connect dials it itself (and cannot
	// resolve the name only the proxy knows); the proxy sees nothing.
	_, stderr, code = testutil.Run(t, "x\n", proxyEnv(p.URL(""), "", "example.com,"+proxiedHost), "connect", target)
	if code != 1 || !strings.Contains(stderr, "lookup "+proxiedHost) {
		t.Fatalf("NO_PROXY=%s: exit %d, stderr %q; want a failed lookup of %s", proxiedHost, code, stderr, proxiedHost)
	}
	// A loopback target goes direct, with NO_PROXY=127.0.0.1 or without.
	for _, noProxy := range []string{"127.0.0.1", ""} {
		out, stderr, code = testutil.Run(t, "direct\n", proxyEnv(p.URL(""), p.URL(""), noProxy), "connect", b.ws+"/svc/echo/y")
		if code != 0 || out != "direct\n" {
			t.Fatalf("NO_PROXY=%q, loopback target: exit %d, out %q, stderr %q", noProxy, code, out, stderr)
		}
	}
	if got := p.Tunnels(); len(got) != 1 {
		t.Fatalf("the proxy opened tunnels to %q, want only the first one", got)
	}

	// A proxy that wants credentials.
	pa := startConnectProxy(t, "alice:s3cret", nil)
	out, stderr, code = testutil.Run(t, "with credentials\n", proxyEnv(pa.URL("alice:s3cret"), "", ""), "connect", target)
	if code != 0 || out != "with credentials\n" {
		t.Fatalf("connect with the proxy's credentials: exit %d, out %q, stderr %q", code, out, stderr)
	}
	want := "proxy " + pa.Addr() + " refused CONNECT: 407 Proxy Authentication Required"
	for _, userinfo := range []string{"alice:wrong", ""} {
		_, stderr, code = testutil.Run(t, "x\n", proxyEnv(pa.URL(userinfo), "", ""), "connect", target)
		if code != 1 || !strings.Contains(stderr, want) || strings.Contains(stderr, "wrong") {
			t.Fatalf("proxy credentials %q: exit %d, stderr %q; want exit 1 and %q, no password", userinfo, code, stderr, want)
		}
	}
	if got := pa.Tunnels(); len(got) != 1 {
		t.Fatalf("the proxy with credentials opened tunnels to %q, want one", got)
	}
}

// TestConnectWSSThroughHTTPSProxy: on a production broker serving TLS,
// `connect wss://` takes HTTPS_PROXY (not HTTP_PROXY, which names a dead
// port), speaks TLS to an https:// proxy, and runs TLS to the broker
// inside the tunnel, both trusted by --ca-file.
func TestConnectWSSThroughHTTPSProxy(t *testing.T) {
	ca := testutil.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.IssueFor(t, 1, certFile, keyFile, []string{proxiedHost})
	b := startProdBroker(t, "--tls-cert", certFile, "--tls-key", keyFile)
	testutil.StartListen(t, b.ws+"/svc/echo/", "--echo", "--credential", b.secret, "--ca-file", ca.PEMFile)
	_, port, err := net.SplitHostPort(strings.TrimPrefix(b.ws, "wss://"))
	if err != nil {
		t.Fatal(err)
	}
	authority := net.JoinHostPort(proxiedHost, port)

	pcert, pkey := filepath.Join(dir, "proxy.pem"), filepath.Join(dir, "proxy-key.pem")
	ca.Issue(t, 2, pcert, pkey)
	cert, err := tls.LoadX509KeyPair(pcert, pkey)
	if err != nil {
		t.Fatal(err)
	}
	p := startConnectProxy(t, "", &cert)
	if !strings.HasPrefix(p.URL(""), "https://") {
		t.Fatalf("proxy URL %s, want https://", p.URL(""))
	}
	env := proxyEnv("http://127.0.0.1:1", p.URL(""), "")
	out, stderr, code := testutil.Run(t, "tls in tls\n", env, "connect", "wss://"+authority+"/svc/echo/x", "--ca-file", ca.PEMFile)
	if code != 0 || out != "tls in tls\n" || stderr != "" {
		t.Fatalf("connect wss:// through an https:// proxy: exit %d, out %q, stderr %q", code, out, stderr)
	}
	if got := p.Tunnels(); len(got) != 1 || got[0] != authority {
		t.Fatalf("the proxy opened tunnels to %q, want one to %s", got, authority)
	}
}

// TestConnectWSSIPv6Literal: `connect wss://[::1]:PORT/…` verifies a
// certificate issued for the IP address ::1 (gobwas/ws takes the server
// name from the URL's host with its brackets, "[::1]", which Go's
// certificate check reads as the address), on a production broker
// serving TLS on [::1].
func TestConnectWSSIPv6Literal(t *testing.T) {
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		ln.Close()
	}
	ca := testutil.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.IssueFor(t, 1, certFile, keyFile, []string{"::1"})
	b := startProdBroker(t, "--tls-cert", certFile, "--tls-key", keyFile, "--listen", "[::1]:0")
	if !strings.HasPrefix(b.ws, "wss://[::1]:") {
		t.Fatalf("broker at %s, want wss://[::1]:PORT", b.ws)
	}
	testutil.StartListen(t, b.ws+"/svc/echo/", "--echo", "--credential", b.secret, "--ca-file", ca.PEMFile)
	out, stderr, code := testutil.Run(t, "over v6\n", nil, "connect", b.ws+"/svc/echo/x", "--ca-file", ca.PEMFile)
	if code != 0 || out != "over v6\n" || stderr != "" {
		t.Fatalf("connect %s: exit %d, out %q, stderr %q", b.ws, code, out, stderr)
	}
	// The name is checked: a certificate without ::1 is refused.
	certFile4, keyFile4 := filepath.Join(dir, "cert4.pem"), filepath.Join(dir, "key4.pem")
	ca.Issue(t, 2, certFile4, keyFile4)
	b4 := startProdBroker(t, "--tls-cert", certFile4, "--tls-key", keyFile4, "--listen", "[::1]:0")
	_, stderr, code = testutil.Run(t, "x\n", nil, "connect", b4.ws+"/svc/echo/x", "--ca-file", ca.PEMFile)
	if code == 0 || !strings.Contains(stderr, "not ::1") {
		t.Fatalf("connect to a broker whose certificate is not for ::1: exit %d, stderr %q", code, stderr)
	}
}
