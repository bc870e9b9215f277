package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a private certificate authority for tests that serve or dial TLS
// (the broker's --tls-cert, Debian's nats-server, Chromium).
type CA struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	PEMFile string // the CA certificate in PEM, for --ca-file and the like
	Pool    *x509.CertPool
}

// NewCA makes a CA valid for an hour, its certificate written to a file
// of the test's temporary directory.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1000), Subject: pkix.Name{CommonName: "switchboard test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{Cert: cert, Key: key, PEMFile: filepath.Join(t.TempDir(), "ca.pem"), Pool: x509.NewCertPool()}
	ca.Pool.AddCert(cert)
	WritePEM(t, ca.PEMFile, "CERTIFICATE", der)
	return ca
}

// Issue writes a certificate for 127.0.0.1 and localhost with serial,
// signed by ca, to certFile and its key to keyFile, each replaced
// atomically (written aside, renamed: a broker reloading them never reads
// half a file). usage is what it is for; none means a server's.
func (ca *CA) Issue(t testing.TB, serial int64, certFile, keyFile string, usage ...x509.ExtKeyUsage) {
	t.Helper()
	ca.IssueFor(t, serial, certFile, keyFile, nil, usage...)
}

// IssueFor is Issue for names too (besides 127.0.0.1 and localhost): DNS
// names (e.g. one only a proxy resolves) and IP addresses ("::1").
func (ca *CA) IssueFor(t testing.TB, serial int64, certFile, keyFile string, names []string, usage ...x509.ExtKeyUsage) {
	t.Helper()
	if len(usage) == 0 {
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dns, ips := []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, n)
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: dns, IPAddresses: ips,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usage,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	WritePEM(t, keyFile+".new", "PRIVATE KEY", kder)
	WritePEM(t, certFile+".new", "CERTIFICATE", der)
	for _, f := range []string{keyFile, certFile} {
		if err := os.Rename(f+".new", f); err != nil {
			t.Fatal(err)
		}
	}
}

// WritePEM writes one PEM block of typ to file (mode 0600).
func WritePEM(t testing.TB, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
