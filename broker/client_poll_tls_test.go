//go:build linux

package broker

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// detourConn is a Detourer over a net.Conn, as the server's listener's
// connections are.
type detourConn struct {
	net.Conn
	d atomic.Pointer[io.ReadWriter]
}

func (c *detourConn) Detour(rw io.ReadWriter) { c.d.Store(&rw) }

func (c *detourConn) Read(p []byte) (int, error) {
	if d := c.d.Load(); d != nil {
		return (*d).Read(p)
	}
	return c.Conn.Read(p)
}

func (c *detourConn) Write(p []byte) (int, error) {
	if d := c.d.Load(); d != nil {
		return (*d).Write(p)
	}
	return c.Conn.Write(p)
}

// selfSigned makes a certificate for localhost and the pool that trusts it
// (testutil's CA would import this package).
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, roots
}

// TestTLSWireResumesPartialRecords pins what the polled TLS path relies on
// in crypto/tls: a read that meets the wire's errWouldBlock in the middle
// of a record fails with it without breaking the connection, and the next
// read, once the rest has come, returns the record's bytes. The test hands
// the socket half a record, then the other half.
func TestTLSWireResumesPartialRecords(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	fileConn := func(fd int) net.Conn {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f) // a dup, non-blocking, in Go's poller
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	serverRaw, clientRaw := fileConn(fds[0]), fileConn(fds[1])

	cert, roots := selfSigned(t)
	under := &detourConn{Conn: serverRaw}
	server := tls.Server(under, &tls.Config{Certificates: []tls.Certificate{cert}})
	capture := &detourConn{Conn: clientRaw}
	client := tls.Client(capture, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	done := make(chan error, 1)
	go func() { done <- client.Handshake() }()
	if err := server.Handshake(); err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("client handshake: %v", err)
	}

	fd, err := connFD(serverRaw)
	if err != nil {
		t.Fatal(err)
	}
	wire := &tlsWire{fd: fd}
	under.Detour(wire)
	b := &Broker{log: slog.New(slog.DiscardHandler), m: newMetrics(prometheus.NewRegistry(), func() float64 { return 0 })}
	c := &pollClient{b: b, ch: &Channel{}, tls: server, wire: wire, fd: fd}

	// The client's next record, kept instead of sent.
	var record bytes.Buffer
	capture.Detour(&record)
	msg := bytes.Repeat([]byte("switchboard "), 50) // one record
	if _, err := client.Write(msg); err != nil {
		t.Fatal(err)
	}
	ct := record.Bytes()
	p := make([]byte, 4096)

	if n, err := c.readTLS(p); n != 0 || err != syscall.EAGAIN {
		t.Fatalf("read of an empty socket: %d, %v; want 0, EAGAIN", n, err)
	}
	if _, err := clientRaw.Write(ct[:len(ct)/2]); err != nil {
		t.Fatal(err)
	}
	if n, err := c.readTLS(p); n != 0 || err != syscall.EAGAIN {
		t.Fatalf("read of half a record: %d, %v; want 0, EAGAIN", n, err)
	}
	if _, err := clientRaw.Write(ct[len(ct)/2:]); err != nil {
		t.Fatal(err)
	}
	n, err := c.readTLS(p)
	if err != nil || !bytes.Equal(p[:n], msg) {
		t.Fatalf("read of the whole record: %d bytes %q, %v; want the message", n, p[:n], err)
	}

	// The other way: the server's record waits in the wire, then goes out.
	if _, err := server.Write([]byte("back")); err != nil {
		t.Fatal(err)
	}
	if wire.pending == nil {
		t.Fatal("the server's record was not kept in the wire")
	}
	if !c.sendWire() || wire.pending != nil {
		t.Fatal("the wire did not send the server's record")
	}
	capture.Detour(clientRaw)
	got := make([]byte, 16)
	n, err = client.Read(got)
	if err != nil || string(got[:n]) != "back" {
		t.Fatalf("client read %q, %v; want back", got[:n], err)
	}
	if _, err := clientRaw.Write([]byte{21, 3, 3, 0, 2, 2, 0}); err != nil { // a plaintext alert after the keys: garbage
		t.Fatal(err)
	}
	if n, err := c.readTLS(p); n != 0 || err == nil || errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("read of a forged record: %d, %v; want an error that ends the connection", n, err)
	}
}
