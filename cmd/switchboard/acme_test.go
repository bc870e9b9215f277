package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/sdk"
)

// acmeTestDomain is the name the test broker gets a certificate for; the
// test's own DNS server (for Pebble only) resolves it to 127.0.0.1.
const acmeTestDomain = "broker.switchboard.test"

// TestACME runs serve --acme-domain against Let's Encrypt's Pebble (in this
// process, on loopback): the first TLS handshake gets a certificate issued
// after a real TLS-ALPN-01 validation of the broker's port, an SDK service
// and a client then talk over wss://, and a restarted broker serves the
// certificate from --acme-cache without asking the CA again.
func TestACME(t *testing.T) {
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")      // validate at once
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0") // no deliberately bad nonces
	// Pebble's HTTPS listener, with a certificate of a test CA the broker trusts.
	tlsCA := testutil.NewCA(t)
	pebbleDir := t.TempDir()
	pebbleCert, pebbleKey := filepath.Join(pebbleDir, "cert.pem"), filepath.Join(pebbleDir, "key.pem")
	tlsCA.Issue(t, 7, pebbleCert, pebbleKey)
	pebbleLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	directory := "https://" + pebbleLn.Addr().String() + wfe.DirectoryPath
	cache := t.TempDir()

	t.Setenv("SSL_CERT_FILE", tlsCA.PEMFile) // serve trusts Pebble's HTTPS certificate
	srv, base := testutil.StartServe(t, "--dev",
		"--acme-domain", acmeTestDomain, "--acme-directory", directory, "--acme-cache", cache)
	addr := httpsHost(t, base)
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)

	// Pebble validates TLS-ALPN-01 on the broker's port, at the address our
	// DNS server gives for the domain.
	dnsAddr := startTestDNS(t, acmeTestDomain, net.IPv4(127, 0, 0, 1))
	logger := log.New(io.Discard, "", 0)
	if testing.Verbose() {
		logger = log.New(os.Stderr, "pebble ", log.Ltime)
	}
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	validator := va.New(logger, 80, port, false, dnsAddr, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	pebbleSrv := &http.Server{Handler: front.Handler(), ErrorLog: logger}
	go pebbleSrv.ServeTLS(pebbleLn, pebbleCert, pebbleKey)
	t.Cleanup(func() { pebbleSrv.Close() })

	roots := x509.NewCertPool()
	roots.AddCert(authority.GetRootCert(0).Cert)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, ServerName: acmeTestDomain}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	// The first handshake waits for the certificate.
	resp, err := hc.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz over TLS with an ACME certificate: %v", err)
	}
	resp.Body.Close()
	leaf := resp.TLS.PeerCertificates[0]
	if leaf.Subject.CommonName != acmeTestDomain && (len(leaf.DNSNames) == 0 || leaf.DNSNames[0] != acmeTestDomain) {
		t.Fatalf("certificate for %v, want %s", leaf.DNSNames, acmeTestDomain)
	}
	if _, err := os.Stat(filepath.Join(cache, acmeTestDomain)); err != nil {
		t.Fatalf("certificate not in the --acme-cache directory: %v", err)
	}

	// A service and a client over wss://.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	l, err := sdk.Listen(ctx, "wss://"+addr+"/acme/", &sdk.ListenOptions{Dial: &websocket.DialOptions{HTTPClient: hc}})
	if err != nil {
		t.Fatalf("sdk.Listen over wss: %v", err)
	}
	defer l.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		req, err := l.Accept(ctx)
		if err != nil {
			return
		}
		ch, err := req.Accept(ctx, "", nil)
		if err != nil {
			return
		}
		if typ, p, err := ch.Read(ctx); err == nil {
			ch.Write(ctx, typ, p)
		}
	}()
	c, _, err := websocket.Dial(ctx, "wss://"+addr+"/acme/x", &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatalf("dial wss: %v", err)
	}
	send(t, c, websocket.MessageText, "over acme")
	expect(t, c, websocket.MessageText, "over acme")
	c.Close(websocket.StatusNormalClosure, "")
	wg.Wait()
	l.Close()
	srv.Signal(syscall.SIGTERM)
	if code := srv.Wait(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}

	// Restarted with the CA gone: the cached certificate is served.
	pebbleSrv.Close()
	_, base2 := testutil.StartServe(t, "--dev",
		"--acme-domain", acmeTestDomain, "--acme-directory", directory, "--acme-cache", cache)
	addr2 := httpsHost(t, base2)
	resp, err = hc.Get("https://" + addr2 + "/healthz")
	if err != nil {
		t.Fatalf("restarted broker with the CA gone: %v", err)
	}
	resp.Body.Close()
	if got := resp.TLS.PeerCertificates[0].SerialNumber; got.Cmp(leaf.SerialNumber) != 0 {
		t.Fatalf("restarted broker serves serial %v, want the cached %v", got, leaf.SerialNumber)
	}
}

// startTestDNS serves DNS over TCP on loopback (how Pebble asks a custom
// resolver): A queries for name get ip, everything else an empty answer.
// It returns its address and stops at the end of the test.
func startTestDNS(t *testing.T, name string, ip net.IP) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				for {
					var n uint16
					if err := binary.Read(conn, binary.BigEndian, &n); err != nil {
						return
					}
					q := make([]byte, n)
					if _, err := io.ReadFull(conn, q); err != nil {
						return
					}
					reply, err := dnsAnswer(q, name, ip)
					if err != nil {
						return
					}
					out := binary.BigEndian.AppendUint16(nil, uint16(len(reply)))
					if _, err := conn.Write(append(out, reply...)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func dnsAnswer(query []byte, name string, ip net.IP) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if q.Type == dnsmessage.TypeA && strings.EqualFold(strings.TrimSuffix(q.Name.String(), "."), name) {
		var a [4]byte
		copy(a[:], ip.To4())
		if err := b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: a}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}
