package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/internal/version"
	"github.com/switchboard-dev/switchboard/scope"
)

func init() {
	commands["status"] = command{runStatus, "show registrations, instances and channels of a running broker",
		"status --broker http://127.0.0.1:8080"}
	commands["credential"] = command{runCredential, "make a credential secret and the hash the config file keeps",
		"credential new --json"}
}

func runStatus(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("status", flag.ContinueOnError)
	a := adminFlags(fl)
	asJSON := fl.Bool("json", false, "print the raw JSON")
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return usageError{msg: fmt.Sprintf("unexpected argument %q", fl.Arg(0))}
	}
	body, err := a.do(ctx, http.MethodGet, "/.switchboard/v1/status", nil)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := os.Stdout.Write(body)
		return err
	}
	var st broker.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return fmt.Errorf("decode status: %w", err)
	}
	var extra struct {
		Version *version.Info  `json:"version"`
		PortMap *portmapStatus `json:"portmap"`
	}
	_ = json.Unmarshal(body, &extra)
	if extra.Version != nil {
		fmt.Printf("broker: %s\n", extra.Version)
	}
	printStatus(os.Stdout, &st)
	if extra.PortMap != nil {
		printPortmap(os.Stdout, extra.PortMap)
	}
	return nil
}

func printStatus(out io.Writer, st *broker.Status) {
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintf(w, "node %s: %d registrations\n", st.Node, len(st.Registrations))
	for _, r := range st.Registrations {
		fmt.Fprintf(w, "\nscope %s\towner %s\tpending connects %d\n", r.Scope, r.Owner, r.Pending)
		for _, i := range r.Instances {
			state := "waiting"
			if i.Active {
				state = "active"
			}
			fmt.Fprintf(w, "  instance %d\t%s\tversion %q\t%s\tsince %s\n", i.ID, state, i.Label, i.Remote, i.Since.Format(time.RFC3339))
		}
		if len(r.Channels) > 0 {
			fmt.Fprintf(w, "  CHANNEL\tTARGET\tORIGIN\tPROTOCOL\tINSTANCE\tUNACKED\tBUFFERED\n")
		}
		for _, c := range r.Channels {
			fmt.Fprintf(w, "  %d\t%s\t%s\t%s\t%d\t%d\t%d\n", c.ID, c.Target, c.Origin, c.Protocol, c.Instance, c.Unacked, c.BufferedBytes)
		}
	}
	w.Flush()
}

// httpURL turns a ws(s) URL into http(s).
func httpURL(u string) string {
	switch {
	case strings.HasPrefix(u, "ws://"):
		return "http://" + u[5:]
	case strings.HasPrefix(u, "wss://"):
		return "https://" + u[6:]
	}
	return u
}

// runCredential makes a credential: a random secret for the service (or
// app) that presents it, and the hash the config file keeps. Config
// credentials and app credentials are one kind of secret with one hash.
func runCredential(_ context.Context, args []string) error {
	fl := flag.NewFlagSet("credential new", flag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprintf(fl.Output(), "usage: switchboard credential new [--name NAME] [--scope SCOPE]... [--json]\n"+
			"       switchboard credential hash < SECRET_FILE   (the credential_hash of an existing secret)\n\n"+
			"Print a new random secret (give it to the service: --credential or $SWITCHBOARD_CREDENTIAL)\n"+
			"and its credential_hash (the config file keeps only that). With --json, stdout is an entry\n"+
			"ready to paste into the config file's \"credentials\" list, and the secret goes to stderr.\n\n")
		fl.PrintDefaults()
	}
	name := fl.String("name", "", "the credential's name, for --json (default: a placeholder to edit)")
	var scopes stringList
	fl.Var(&scopes, "scope", "a scope the credential owns, e.g. /chat/ (repeatable), for --json")
	asJSON := fl.Bool("json", false, "print a config entry as JSON; the secret goes to stderr")
	if len(args) == 1 && args[0] == "hash" {
		return credentialHash()
	}
	if len(args) == 0 || args[0] != "new" {
		if len(args) > 0 && isHelp(args[0]) {
			fl.SetOutput(os.Stdout)
			fl.Usage()
			return flag.ErrHelp
		}
		return usageError{msg: "usage: switchboard credential new [--name NAME] [--scope SCOPE]... [--json] | credential hash"}
	}
	if err := parseFlags(fl, args[1:]); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return usageError{msg: fmt.Sprintf("unexpected argument %q", fl.Arg(0))}
	}
	secret, hash, err := config.NewCredential()
	if err != nil {
		return err
	}
	if !*asJSON {
		fmt.Printf("secret:          %s\ncredential_hash: %s\n", secret, hash)
		return nil
	}
	if *name == "" {
		*name = "CHANGE-ME"
	}
	if len(scopes) == 0 {
		scopes = stringList{"/CHANGE-ME/"}
	}
	for _, sc := range scopes {
		if _, err := scope.Parse(sc, true); err != nil {
			return usageError{msg: fmt.Sprintf("--scope: %v", err)}
		}
	}
	fmt.Fprintf(os.Stderr, "secret (give it to the service; it is not stored anywhere): %s\n", secret)
	return printJSON(os.Stdout, config.Credential{Name: *name, CredentialHash: hash, Scopes: scopes})
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}
