package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/daemon"
)

func init() {
	commands["serve"] = command{runServe, "run the broker", "serve --config /etc/switchboard/config.json"}
}

// webFiles is the browser library and pages, set by web.go when built in.
var webFiles fs.FS

// runServe merges flags, environment and the config file (in that order of
// precedence) into daemon.Settings and runs the daemon.
func runServe(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("serve", flag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprintf(fl.Output(), "usage: switchboard serve [--config FILE] [flags]\n\n"+
			"Run the broker. Every flag can also be set by an environment variable, SWITCHBOARD_ and\n"+
			"the flag's name in capitals with _ for - (--log-format: SWITCHBOARD_LOG_FORMAT). A flag\n"+
			"given wins over its variable, which wins over the config file.\n\n")
		fl.PrintDefaults()
	}
	listen := fl.String("listen", "", "address to listen on (default 127.0.0.1:8080, or the config file's)")
	cfgPath := fl.String("config", "", "configuration `FILE` (JSON, see docs/CONFIG.md)")
	dev := fl.Bool("dev", false, "let loopback processes listen on unclaimed scopes without a credential, and use the admin API")
	node := fl.String("node-name", "", "name of this broker in logs and status (default: the config file's, or local)")
	adminToken := fl.String("admin-token", "", "token of the admin API (default: the config file's admin_token); better set by $SWITCHBOARD_ADMIN_TOKEN than on a command line")
	logF := logFlags(fl)
	shutdownGrace := fl.Duration("shutdown-grace", daemon.DefaultShutdownGrace, "how long SIGTERM waits for channels to close before cutting them")
	var tlsF tlsFlags
	tlsF.register(fl)
	var pmF portmapFlags
	pmF.register(fl)
	var clF clusterFlags
	clF.register(fl)
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return usageError{msg: fmt.Sprintf("unexpected argument %q", fl.Arg(0))}
	}
	if err := flagsFromEnv(fl); err != nil {
		return err
	}
	log, err := logF.logger()
	if err != nil {
		return err
	}

	cfg := &config.File{}
	if *cfgPath != "" {
		if cfg, err = config.Load(*cfgPath); err != nil {
			return err
		}
	}
	s := daemon.FromFile(*cfgPath, cfg)
	s.Listen = firstNonEmpty(*listen, s.Listen)
	s.Dev = s.Dev || *dev
	s.Node = firstNonEmpty(*node, s.Node)
	s.AdminToken = firstNonEmpty(*adminToken, s.AdminToken)
	s.ShutdownGrace = *shutdownGrace

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var pm portmapRef
	o := daemon.Options{
		Logger: log, Registry: reg, Web: webFiles, PublicURL: pm.PublicURL, PortMap: pm.Status,
		// A second signal during shutdown cuts it short.
		ShutdownContext: func() (context.Context, context.CancelFunc) {
			return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		},
		BeforeShutdown: func(ctx context.Context) error {
			if err := pm.shutdown(ctx); err != nil {
				return fmt.Errorf("port mapping not removed: %w", err)
			}
			return nil
		},
	}
	var reloads []hupReload
	if tlsF.enabled() {
		var reloadTLS func(context.Context) error
		if o.TLS, reloadTLS, err = tlsF.setup(log); err != nil {
			return err
		}
		if reloadTLS != nil {
			reloads = append(reloads, hupReload{"TLS certificate", reloadTLS})
		}
	}
	if err := clF.setup(s.Node, log, reg); err != nil {
		return err
	}
	if clF.c != nil {
		o.Cluster = clF.c
	}
	d, err := daemon.New(s, o)
	if err != nil {
		return err
	}
	pm.changed = func() { d.Broker().PublicURLChanged() } // the public URL stays true for attached services
	if *cfgPath != "" {
		reloads = append([]hupReload{{"configuration", d.Reload}}, reloads...)
	}
	ln, err := d.Listen()
	if err != nil {
		_ = d.Shutdown(context.Background())
		return err
	}
	hup := handleSIGHUP(log, reloads) // before the listening line: a SIGHUP must not kill the broker
	defer hup.stop()
	scheme := "http"
	if o.TLS != nil {
		scheme = "https"
	}
	fmt.Fprintf(os.Stderr, "switchboard: listening on %s://%s\n", scheme, ln.Addr())
	if err := pm.start(ctx, pmF, ln, o.TLS != nil, tlsF.acmeDomains, log, reg); err != nil {
		_ = ln.Close()
		_ = d.Shutdown(context.Background())
		return err
	}
	return d.Serve(ctx, ln)
}

// flagsFromEnv sets each flag of fl that was not given on the command line
// from its environment variable, SWITCHBOARD_ and the flag's name in
// capitals with "_" for "-", when that is set and not empty.
func flagsFromEnv(fl *flag.FlagSet) error {
	given := map[string]bool{}
	fl.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fl.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		name := envName(f.Name)
		v := os.Getenv(name)
		if v == "" {
			return
		}
		if serr := fl.Set(f.Name, v); serr != nil {
			err = usageError{msg: fmt.Sprintf("$%s: %v", name, serr)}
		}
	})
	return err
}

// envName is the environment variable of a flag: "log-format" →
// "SWITCHBOARD_LOG_FORMAT".
func envName(flagName string) string {
	return "SWITCHBOARD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}
