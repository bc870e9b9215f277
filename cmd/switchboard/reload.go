package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
)

func init() {
	commands["reload"] = command{runReload, "make a running broker re-read its config file (as SIGHUP does)",
		"reload --broker http://127.0.0.1:8080"}
}

// runReload asks a running broker to re-read its config file
// (POST /.switchboard/v1/reload), as SIGHUP does.
func runReload(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("reload", flag.ContinueOnError)
	a := adminFlags(fl)
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return usageError{msg: fmt.Sprintf("unexpected argument %q", fl.Arg(0))}
	}
	if _, err := a.do(ctx, http.MethodPost, "/.switchboard/v1/reload", nil); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "switchboard: configuration reloaded")
	return nil
}
