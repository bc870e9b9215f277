package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/server"
)

func init() { commands["serve"] = runServe }

// webFiles is the browser library and pages, set by web.go when built in.
var webFiles fs.FS

func runServe(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fl.String("listen", "", "address to listen on (default 127.0.0.1:8080, or the config file's)")
	cfgPath := fl.String("config", "", "configuration file (JSON, see docs/CONFIG.md)")
	dev := fl.Bool("dev", false, "let loopback processes listen on unclaimed scopes without a credential, and use the admin API")
	node := fl.String("node-name", "", "name of this broker in logs and status")
	logLevel := fl.String("log-level", "info", "log level: debug, info, warn, error")
	shutdownGrace := fl.Duration("shutdown-grace", 10*time.Second, "how long SIGTERM waits for channels to close before cutting them")
	var tlsF tlsFlags
	tlsF.register(fl)
	var pmF portmapFlags
	pmF.register(fl)
	var clF clusterFlags
	clF.register(fl)
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fl.Arg(0))}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usageError{fmt.Sprintf("bad --log-level: %v", err)}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	cfg := &config.File{}
	if *cfgPath != "" {
		var err error
		if cfg, err = config.Load(*cfgPath); err != nil {
			return err
		}
	}
	if *dev {
		cfg.Dev = true
	}
	if *node != "" {
		cfg.Node = *node
	}
	addr := firstNonEmpty(*listen, cfg.Listen, "127.0.0.1:8080")

	appState, err := openApps(cfg, *cfgPath)
	if err != nil {
		return err
	}
	var tlsCfg *tls.Config
	var reloads []hupReload
	if *cfgPath != "" {
		reloads = append(reloads, hupReload{"configuration", reloader(*cfgPath, appState, log)})
	}
	if tlsF.enabled() {
		var reloadTLS func(context.Context) error
		if tlsCfg, reloadTLS, err = tlsF.setup(log); err != nil {
			return err
		}
		if reloadTLS != nil {
			reloads = append(reloads, hupReload{"TLS certificate", reloadTLS})
		}
	}
	var pm portmapRef
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := clF.setup(cfg.Node, log, reg); err != nil {
		return err
	}
	bcfg := broker.Config{
		Logger: log, Registerer: reg, Node: cfg.Node, Limits: cfg.BrokerLimits(),
		Authorize: cfg.AppAuthorizer(cfg.Dev, appState.Directory),
		PublicURL: pm.PublicURL,
	}
	clF.apply(&bcfg)
	b := broker.New(bcfg)
	if err := clF.start(b); err != nil {
		return err
	}
	perAddr := cfg.MaxConnsPerAddr
	switch {
	case perAddr == 0:
		perAddr = 4096
	case perAddr < 0:
		perAddr = 0 // no limit
	}
	srv := server.New(server.Config{
		Broker: b, Gatherer: reg, Logger: log, Web: webFiles, Dev: cfg.Dev, AdminToken: cfg.AdminToken,
		Compression: cfg.Compression == nil || *cfg.Compression, MaxConnsPerAddr: perAddr,
		Registerer: reg, Apps: appState, Reload: reloader(*cfgPath, appState, log),
		PortMap: pm.Status, Ready: clF.ready,
	})
	hsTimeout := time.Duration(cfg.HandshakeTimeout)
	if hsTimeout <= 0 {
		hsTimeout = 10 * time.Second
	}
	maxHeader := cfg.MaxHeaderBytes
	if maxHeader <= 0 {
		maxHeader = 16 << 10
	}
	httpSrv := srv.HTTPServer(hsTimeout, maxHeader)

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	hup := handleSIGHUP(log, reloads) // before the listening line: a SIGHUP must not kill the broker
	defer hup.stop()
	if tlsCfg != nil {
		fmt.Fprintf(os.Stderr, "switchboard: listening on https://%s\n", ln.Addr())
		ln = tls.NewListener(ln, tlsCfg)
	} else {
		fmt.Fprintf(os.Stderr, "switchboard: listening on http://%s\n", ln.Addr())
	}
	if err := pm.start(ctx, pmF, ln, tlsCfg != nil, tlsF.acmeDomains, log, reg); err != nil {
		_ = ln.Close()
		return err
	}
	if cfg.Dev {
		log.Warn("dev mode: loopback processes may listen on unclaimed scopes without a credential")
	}
	errc := make(chan error, 1)
	go func() { errc <- httpSrv.Serve(ln) }()

	select {
	case err := <-errc:
		mctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = pm.shutdown(mctx) // remove the port mapping of a broker that failed
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// A second signal during shutdown cuts it short.
	hard, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sctx, cancel := context.WithTimeout(hard, *shutdownGrace)
	defer cancel()
	log.Info("shutting down: closing channels with 1001")
	httpSrv.SetKeepAlivesEnabled(false)
	_ = ln.Close()
	if err := pm.shutdown(sctx); err != nil {
		log.Warn("port mapping not removed", "err", err)
	}
	berr := b.Shutdown(sctx)
	if err := clF.shutdown(sctx); err != nil {
		log.Warn("cluster shutdown", "err", err)
	}
	herr := httpSrv.Shutdown(sctx)
	// The listener was closed first: Serve may see that before the Shutdown.
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	if berr != nil {
		log.Warn("shutdown cut short", "err", berr)
	}
	if herr != nil {
		log.Warn("http shutdown cut short", "err", herr)
	}
	log.Info("stopped")
	return nil
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}
