package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/net/http/httpproxy"
)

// proxyNetDial returns, for gobwas/ws's Dialer.NetDial, a dial through the
// HTTP proxy the environment names for target, or nil when it names none.
// The environment is read as net/http reads it (HTTP_PROXY for ws://,
// HTTPS_PROXY for wss://, NO_PROXY's exceptions; loopback addresses and
// localhost are never proxied), when called: a test can set it. The dial
// opens a tunnel with CONNECT (Proxy-Authorization Basic from the proxy
// URL's user:password; TLS to the proxy for an https:// proxy URL, with
// tlsConfig's roots); gobwas/ws then runs TLS to the target, for wss://,
// inside the tunnel.
func proxyNetDial(target string, tlsConfig *tls.Config) (func(ctx context.Context, network, addr string) (net.Conn, error), error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ru := *u // the http(s) URL whose proxy the environment names
	switch u.Scheme {
	case "ws":
		ru.Scheme = "http"
	case "wss":
		ru.Scheme = "https"
	default:
		return nil, nil // gobwas/ws refuses it with its own error
	}
	proxy, err := httpproxy.FromEnvironment().ProxyFunc()(&ru)
	if err != nil {
		return nil, fmt.Errorf("proxy from the environment: %w", err)
	}
	if proxy == nil {
		return nil, nil
	}
	if proxy.Scheme != "http" && proxy.Scheme != "https" {
		return nil, fmt.Errorf("proxy %s: connect speaks to http:// and https:// proxies only", proxy.Redacted())
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialConnect(ctx, proxy, addr, tlsConfig)
	}, nil
}

// maxProxyResponse bounds the proxy's answer to CONNECT (its status line
// and headers).
const maxProxyResponse = 64 << 10

// dialConnect opens a TCP tunnel to addr through the HTTP proxy at proxy
// with CONNECT, the exchange bounded by ctx.
func dialConnect(ctx context.Context, proxy *url.URL, addr string, tlsConfig *tls.Config) (_ net.Conn, err error) {
	paddr := hostPort(proxy)
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", paddr)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	defer func() {
		if err != nil {
			conn.Close()
		}
	}()
	// ctx ends the exchange; gobwas/ws bounds only what follows it.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if !stop() && err == nil {
			err = fmt.Errorf("proxy %s: %w", paddr, ctx.Err())
		}
	}()
	if proxy.Scheme == "https" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if tlsConfig != nil {
			cfg = tlsConfig.Clone()
		}
		cfg.ServerName = proxy.Hostname()
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("proxy %s: TLS: %w", paddr, err)
		}
		conn = tc
	}
	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: addr},
		Host:   addr,
		Header: http.Header{},
	}
	if proxy.User != nil {
		pw, _ := proxy.User.Password()
		cred := base64.StdEncoding.EncodeToString([]byte(proxy.User.Username() + ":" + pw))
		req.Header.Set("Proxy-Authorization", "Basic "+cred)
	}
	if err := req.Write(conn); err != nil {
		return nil, fmt.Errorf("proxy %s: send CONNECT: %w", paddr, err)
	}
	br := bufio.NewReader(&io.LimitedReader{R: conn, N: maxProxyResponse})
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, fmt.Errorf("proxy %s: read its answer to CONNECT: %w", paddr, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("proxy %s refused CONNECT: %s", paddr, resp.Status)
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	if n := br.Buffered(); n > 0 { // the target spoke first: keep its bytes
		p, _ := br.Peek(n)
		return &prefixConn{Conn: conn, r: io.MultiReader(bytes.NewReader(bytes.Clone(p)), conn)}, nil
	}
	return conn, nil
}

// hostPort is u's host:port, with the scheme's default port (443 for
// https and wss, 80 otherwise) when u names none.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "https" || u.Scheme == "wss" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// prefixConn is a connection whose first bytes were read ahead.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }
