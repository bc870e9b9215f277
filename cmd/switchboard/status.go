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
)

func init() {
	commands["status"] = runStatus
	commands["credential"] = runCredential
}

func runStatus(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("status", flag.ContinueOnError)
	a := adminFlags(fl)
	asJSON := fl.Bool("json", false, "print the raw JSON")
	if err := fl.Parse(args); err != nil {
		return err
	}
	body, err := a.do(ctx, http.MethodGet, "/.switchboard/v1/status", nil)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if *asJSON {
		_, err := os.Stdout.Write(body)
		return err
	}
	var st broker.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return fmt.Errorf("decode status: %w", err)
	}
	printStatus(os.Stdout, &st)
	var pm struct {
		PortMap *portmapStatus `json:"portmap"`
	}
	if json.Unmarshal(body, &pm) == nil && pm.PortMap != nil {
		printPortmap(os.Stdout, pm.PortMap)
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

func runCredential(_ context.Context, args []string) error {
	if len(args) != 1 || args[0] != "new" {
		return usageError{"usage: switchboard credential new   (prints a secret for --credential and its secret_sha256 for the config file)"}
	}
	s := config.NewSecret()
	fmt.Printf("secret:        %s\nsecret_sha256: %s\n", s, config.HashSecret(s))
	return nil
}
