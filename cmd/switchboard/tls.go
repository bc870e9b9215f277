package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// tlsFlags are serve's TLS flags: certificate files, or ACME.
type tlsFlags struct {
	certFile, keyFile string
	acmeDomains       stringList
	acmeCache         string
	acmeDirectory     string
	acmeEmail         string
}

func (f *tlsFlags) register(fl *flag.FlagSet) {
	fl.StringVar(&f.certFile, "tls-cert", "", "serve wss:// and https:// with this PEM certificate chain `FILE` (reloaded on SIGHUP)")
	fl.StringVar(&f.keyFile, "tls-key", "", "PEM private key `FILE` of --tls-cert (reloaded on SIGHUP)")
	fl.Var(&f.acmeDomains, "acme-domain", "serve wss:// and https:// with a certificate obtained over ACME (TLS-ALPN-01: clients must reach the listen port as port 443 of this name) for this `NAME` (repeatable)")
	fl.StringVar(&f.acmeCache, "acme-cache", "", "directory for the ACME account key and certificates (default $XDG_CACHE_HOME/switchboard/acme, or ~/.cache/switchboard/acme)")
	fl.StringVar(&f.acmeDirectory, "acme-directory", acme.LetsEncryptURL, "ACME directory `URL` (default Let's Encrypt production)")
	fl.StringVar(&f.acmeEmail, "acme-email", "", "contact address given to the ACME CA for expiry and problem notices (optional)")
}

// enabled reports whether serve is to use TLS.
func (f *tlsFlags) enabled() bool {
	return f.certFile != "" || f.keyFile != "" || len(f.acmeDomains) > 0
}

// setup returns the server's TLS configuration and, for certificate files,
// the func that reloads them (nil for ACME, which renews by itself).
func (f *tlsFlags) setup(log *slog.Logger) (*tls.Config, func(context.Context) error, error) {
	switch {
	case len(f.acmeDomains) > 0 && (f.certFile != "" || f.keyFile != ""):
		return nil, nil, usageError{msg: "--acme-domain and --tls-cert/--tls-key exclude each other"}
	case len(f.acmeDomains) > 0:
		cfg, err := f.acme(log)
		return cfg, nil, err
	case f.certFile == "" || f.keyFile == "":
		return nil, nil, usageError{msg: "--tls-cert and --tls-key go together"}
	}
	r := &certReloader{certFile: f.certFile, keyFile: f.keyFile}
	if err := r.load(); err != nil {
		return nil, nil, err
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"http/1.1"}, // WebSocket handshakes are HTTP/1.1
		GetCertificate: r.getCertificate,
	}
	reload := func(context.Context) error {
		if err := r.load(); err != nil {
			return err
		}
		log.Info("TLS certificate reloaded", "cert", f.certFile, "serial", r.serial())
		return nil
	}
	return cfg, reload, nil
}

// acme returns a TLS configuration whose certificates autocert obtains and
// renews, answering TLS-ALPN-01 challenges on the same port.
func (f *tlsFlags) acme(log *slog.Logger) (*tls.Config, error) {
	dir := f.acmeCache
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("ACME cache directory: %w (set --acme-cache)", err)
		}
		dir = filepath.Join(cache, "switchboard", "acme")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ACME cache directory: %w", err)
	}
	for _, d := range f.acmeDomains {
		if !strings.Contains(strings.Trim(d, "."), ".") {
			return nil, usageError{msg: fmt.Sprintf("--acme-domain %q: need a full DNS name (with a dot)", d)}
		}
	}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(dir),
		HostPolicy: autocert.HostWhitelist(f.acmeDomains...),
		Email:      f.acmeEmail,
		Client:     &acme.Client{DirectoryURL: f.acmeDirectory},
	}
	log.Info("TLS certificates over ACME", "domains", strings.Join(f.acmeDomains, ","), "directory", f.acmeDirectory, "cache", dir)
	cfg := m.TLSConfig()
	cfg.MinVersion = tls.VersionTLS12
	cfg.NextProtos = []string{"http/1.1", acme.ALPNProto}
	return cfg, nil
}

// certReloader holds the current certificate of --tls-cert/--tls-key;
// handshakes read it, load swaps it atomically.
type certReloader struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

func (r *certReloader) load() error {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	r.cur.Store(&c)
	return nil
}

func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

func (r *certReloader) serial() string {
	if c := r.cur.Load(); c != nil && c.Leaf != nil {
		return c.Leaf.SerialNumber.String()
	}
	return ""
}

// hupReload is one thing SIGHUP reloads.
type hupReload struct {
	name   string
	reload func(context.Context) error
}

// sighup calls each reloader on SIGHUP, in order, until stop is called; a
// failed reload is logged and keeps the previous state. It also keeps SIGHUP
// from killing the process when nothing is to be reloaded.
type sighup struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func handleSIGHUP(log *slog.Logger, reloaders []hupReload) *sighup {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(context.Background())
	h := &sighup{cancel: cancel}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer signal.Stop(sig)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
			}
			names := make([]string, len(reloaders))
			for i, r := range reloaders {
				names[i] = r.name
			}
			log.Info("SIGHUP: reloading", "what", strings.Join(names, ", "))
			for _, r := range reloaders {
				if err := r.reload(ctx); err != nil {
					log.Error("reload failed; keeping the previous state", "what", r.name, "err", err)
				}
			}
		}
	}()
	return h
}

func (h *sighup) stop() {
	h.cancel()
	h.wg.Wait()
}

// clientTLSFlag adds --ca-file to a client command's flags.
func clientTLSFlag(fl *flag.FlagSet) *string {
	return fl.String("ca-file", "", "also trust the CA certificates in this PEM `FILE` for wss:// and https:// (e.g. a private CA of the broker's certificate)")
}

// clientTLSConfig returns a TLS configuration trusting the system roots plus
// caFile's certificates; nil when caFile is "".
func clientTLSConfig(caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("--ca-file " + caFile + ": no PEM certificate in it")
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// clientHTTP returns an HTTP client trusting caFile too (see
// clientTLSConfig); nil, nil when caFile is "" (the caller's default).
func clientHTTP(caFile string) (*http.Client, error) {
	cfg, err := clientTLSConfig(caFile)
	if cfg == nil || err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return &http.Client{Transport: tr}, nil
}
