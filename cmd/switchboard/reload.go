package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/server"
)

func init() { commands["reload"] = runReload }

// runReload asks a running broker to re-read its config file
// (POST /.switchboard/v1/reload), as SIGHUP does.
func runReload(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("reload", flag.ContinueOnError)
	a := adminFlags(fl)
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fl.Arg(0))}
	}
	if _, err := a.do(ctx, http.MethodPost, "/.switchboard/v1/reload", nil); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "switchboard: configuration reloaded")
	return nil
}

// openApps builds the broker's app state: the directory from the file's
// apps section and, with a config file or apps, the token key and the
// revocation list (created on first start).
func openApps(cfg *config.File, cfgPath string) (*server.Apps, error) {
	dir, err := cfg.Directory()
	if err != nil {
		return nil, err
	}
	if cfgPath == "" && len(cfg.Apps) == 0 {
		return server.NewApps(dir, nil, nil), nil
	}
	sealer, revs, err := cfg.OpenTokens(cfgPath)
	if err != nil {
		return nil, err
	}
	return server.NewApps(dir, sealer, revs), nil
}

// reloader re-reads the config file and swaps the apps directory; a file
// that does not load leaves the running one in place.
func reloader(cfgPath string, st *server.Apps, log *slog.Logger) func(context.Context) error {
	return func(context.Context) error {
		dir, err := config.ReloadApps(cfgPath)
		if err != nil {
			return err
		}
		st.Swap(dir)
		log.Info("configuration reloaded", "config", cfgPath, "apps", len(dir.IDs()))
		return nil
	}
}
