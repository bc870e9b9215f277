package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// IdleVariant is Switchboard's idle memory for one kind of client: wss://
// (TLS) or permessage-deflate, on a broker of its own.
type IdleVariant struct {
	Name                 string  `json:"name"`
	Conns                int     `json:"conns"`
	RelayRSSPerConnBytes float64 `json:"relay_rss_per_conn_bytes"`
	RSSPerConnBytes      float64 `json:"rss_per_conn_bytes"`
	Error                string  `json:"error,omitempty"`
}

// Variant names.
const (
	VariantWSS     = "wss"
	VariantDeflate = "permessage-deflate"
)

// runVariants measures Switchboard's idle memory per wss:// client and per
// client that negotiated permessage-deflate (no context takeover), n of
// each, on fresh brokers.
func runVariants(ctx context.Context, e env, n int) []IdleVariant {
	var out []IdleVariant
	measure := func(name string, start func() (*running, *dialer, error)) {
		v := IdleVariant{Name: name, Conns: n}
		r, d, err := start()
		if err != nil {
			v.Error = err.Error()
			out = append(out, v)
			return
		}
		defer r.stop()
		quiesce(ctx, map[string]*running{name: r})
		res, err := runIdle(ctx, r, d, r.wsBase+"idle", n, false, time.Second)
		if err != nil {
			v.Error = err.Error()
		} else {
			v.RelayRSSPerConnBytes, v.RSSPerConnBytes = res.relayRSSPerConn, res.rssPerConn
		}
		e.log.Info("idle variant", "variant", name, "conns", n, "relay_rss_per_conn", v.RelayRSSPerConnBytes, "err", v.Error)
		out = append(out, v)
	}
	measure(VariantDeflate, func() (*running, *dialer, error) {
		dir := filepath.Join(e.dir, "switchboard-deflate")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, err
		}
		r, err := startSwitchboard(ctx, e, dir)
		return r, newDialer(true).withDeflate(), err
	})
	measure(VariantWSS, func() (*running, *dialer, error) {
		return startSwitchboardTLS(ctx, e, filepath.Join(e.dir, "switchboard-wss"))
	})
	return out
}

// startSwitchboardTLS starts a broker serving wss:// with a certificate
// made for the run, and its echo service, and returns a dialer that trusts
// the certificate.
func startSwitchboardTLS(ctx context.Context, e env, dir string) (*running, *dialer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	roots, err := writeSelfSigned(certFile, keyFile)
	if err != nil {
		return nil, nil, err
	}
	tcfg := &tls.Config{RootCAs: roots}
	port, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	broker, _, err := startChild(ctx, e.log, dir, "broker", "", e.bins.switchboard, "serve", "--dev", "--listen", addr,
		"--tls-cert", certFile, "--tls-key", keyFile)
	if err != nil {
		return nil, nil, err
	}
	r := &running{name: Switchboard + "-wss", wsBase: "wss://" + addr + "/echo/", relay: []*child{broker}}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tcfg}}
	health := func(ctx context.Context) error {
		if broker.exited() {
			return fmt.Errorf("broker exited: %v; log: %s", broker.err, broker.tail())
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/healthz", nil)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/healthz: %s", resp.Status)
		}
		return nil
	}
	if err := pollUntil(ctx, 20*time.Second, health); err != nil {
		r.stop()
		return nil, nil, fmt.Errorf("wss broker not healthy: %w", err)
	}
	svc, _, err := startChild(ctx, e.log, dir, "listen-echo", "", echoService(e, r.wsBase, "--ca-file", certFile)...)
	if err != nil {
		r.stop()
		return nil, nil, err
	}
	r.backend = []*child{svc}
	d := newDialer(true).withTLS(tcfg)
	if err := pollUntil(ctx, 20*time.Second, func(ctx context.Context) error {
		c, err := d.dial(ctx, r.wsBase+"probe")
		if err == nil {
			c.CloseNow()
		}
		return err
	}); err != nil {
		r.stop()
		return nil, nil, fmt.Errorf("wss broker does not accept clients: %w", err)
	}
	return r, d, nil
}

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 and its
// key, and returns a pool that trusts it.
func writeSelfSigned(certFile, keyFile string) (*x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "switchboard bench"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, fmt.Errorf("write certificate: %w", err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return nil, fmt.Errorf("write key: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool, nil
}

// curvePoint measures a fresh broker's idle memory at want connections
// (fewer when the file limit binds).
func curvePoint(ctx context.Context, e env, want int, fdLimit uint64, settle time.Duration) IdlePoint {
	k, why := feasibleConns(Switchboard, want, fdLimit)
	pt := IdlePoint{Requested: want, Conns: k}
	if why != "" {
		pt.Error = why
		return pt
	}
	dir := filepath.Join(e.dir, fmt.Sprintf("switchboard-idle-%d", want))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		pt.Error = err.Error()
		return pt
	}
	r, err := startSwitchboard(ctx, e, dir)
	if err != nil {
		pt.Error = err.Error()
		return pt
	}
	defer r.stop()
	quiesce(ctx, map[string]*running{Switchboard: r})
	res, err := runIdle(ctx, r, newDialer(true), r.wsBase+"idle", k, false, settle)
	if err != nil {
		pt.Error = err.Error()
		return pt
	}
	pt.RSSPerConnBytes, pt.RelayRSSPerConnBytes = res.rssPerConn, res.relayRSSPerConn
	e.log.Info("idle curve", "conns", k, "relay_rss_per_conn", pt.RelayRSSPerConnBytes)
	return pt
}
