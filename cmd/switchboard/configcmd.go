package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/switchboard-dev/switchboard/apps"
	"github.com/switchboard-dev/switchboard/config"
)

func init() {
	commands["config"] = command{runConfig, "check a config file without starting anything (every problem, with line:column)",
		"config check /etc/switchboard/config.json"}
}

// runConfig is `switchboard config check FILE`: it loads and validates the
// file as serve would, and prints every problem, each with its key path
// and line:column. Exit 0: the file is good; 1: it is not.
func runConfig(_ context.Context, args []string) error {
	fl := flag.NewFlagSet("config check", flag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprintf(fl.Output(), "usage: switchboard config check FILE\n\n"+
			"Check a config file as \"serve --config FILE\" would, without starting anything: every\n"+
			"problem is printed with its key path and line:column. Exit 0 when the file is good, 1 when not.\n")
	}
	if len(args) > 0 && isHelp(args[0]) {
		fl.SetOutput(os.Stdout)
		fl.Usage()
		return nil
	}
	if len(args) == 0 || args[0] != "check" {
		return usageError{msg: "usage: switchboard config check FILE"}
	}
	if err := parseFlags(fl, args[1:]); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		return usageError{msg: "usage: switchboard config check FILE"}
	}
	path := fl.Arg(0)
	c, err := config.Load(path)
	if err == nil {
		_, err = c.Keys()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return reportedError{err}
	}
	fmt.Printf("config %s: ok (%d credentials, %d apps)\n", path, len(c.Credentials), len(c.Apps))
	return nil
}

// credentialHash is `switchboard credential hash`: the credential_hash of
// a secret read from stdin (never from the command line, which other users
// and the shell history see). It moves an existing secret to the config
// file's hash form.
func credentialHash() error {
	fmt.Fprintln(os.Stderr, "switchboard: reading the secret from stdin (one line)")
	sc := bufio.NewScanner(os.Stdin)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return fmt.Errorf("read the secret: %w", err)
		}
		return usageError{msg: "no secret on stdin"}
	}
	h, err := apps.HashCredential(strings.TrimSpace(sc.Text()))
	if err != nil {
		return err
	}
	fmt.Printf("credential_hash: %s\n", h)
	return nil
}
