package main

import (
	"bytes"
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

	"github.com/switchboard-dev/switchboard/server"
)

func init() {
	commands["token"] = command{runToken, "issue, revoke and list chooser tokens on a running broker",
		"token issue --holder notes --target printer --ttl 24h"}
	commands["app"] = command{runApp, "make an app secret and the hash the config file keeps", "app new"}
}

// runApp makes an app secret: the same credential as `credential new`,
// kept in an app's credential_hash.
func runApp(ctx context.Context, args []string) error {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Println("usage: switchboard app new\n\nPrint a new random app secret (for --credential) and its credential_hash for the\n" +
			"app's entry in the config file. The same as \"switchboard credential new\".")
		return nil
	}
	if len(args) != 1 || args[0] != "new" {
		return usageError{msg: "usage: switchboard app new   (prints an app secret for --credential and its credential_hash for the config file)"}
	}
	return runCredential(ctx, args)
}

// adminClient talks to the broker's admin API for status, token and reload.
type adminClient struct {
	broker *string
	token  *string
	caFile *string
}

// adminFlags adds --broker, --admin-token and --ca-file to fl.
func adminFlags(fl *flag.FlagSet) *adminClient {
	return &adminClient{
		broker: fl.String("broker", "http://127.0.0.1:8080", "broker URL (http, https, ws or wss)"),
		token: fl.String("admin-token", "",
			"admin token (default $SWITCHBOARD_ADMIN_TOKEN); not needed on loopback with --dev"),
		caFile: clientTLSFlag(fl),
	}
}

// do sends a request with a JSON body (nil: none) and returns the body of a
// 200 answer.
func (a *adminClient) do(ctx context.Context, method, path string, body any) ([]byte, error) {
	u := strings.TrimRight(httpURL(*a.broker), "/") + path
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("admin request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	tok := *a.token
	if tok == "" {
		tok = os.Getenv("SWITCHBOARD_ADMIN_TOKEN") // read here, so -h never prints it
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	c, err := clientHTTP(*a.caFile)
	if err != nil {
		return nil, err
	}
	if c == nil {
		c = &http.Client{}
	}
	c.Timeout = 30 * time.Second
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read answer of %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusUnauthorized {
			if tok == "" {
				return nil, fmt.Errorf("the broker at %s wants the admin token: pass --admin-token or set $SWITCHBOARD_ADMIN_TOKEN", *a.broker)
			}
			return nil, fmt.Errorf("the broker at %s rejected the admin token (401): check --admin-token or $SWITCHBOARD_ADMIN_TOKEN against its admin_token", *a.broker)
		}
		return nil, fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, strings.TrimSpace(string(out)))
	}
	return out, nil
}

func runToken(ctx context.Context, args []string) error {
	const usage = "usage: switchboard token issue --holder A --target B [--ttl 24h] | revoke --id X | revoke --holder A --target B | list"
	if len(args) == 0 {
		return usageError{msg: usage}
	}
	if isHelp(args[0]) {
		fmt.Println(usage + "\n\nIssue, revoke and list chooser tokens on a running broker (its admin API).\n" +
			"Run \"switchboard token issue -h\" (revoke, list) for the flags of each.")
		return nil
	}
	fl := flag.NewFlagSet("token "+args[0], flag.ContinueOnError)
	a := adminFlags(fl)
	holder := fl.String("holder", "", "the app that holds the token")
	target := fl.String("target", "", "the server app it reaches")
	switch args[0] {
	case "issue":
		ttl := fl.Duration("ttl", 24*time.Hour, "how long the token is valid")
		if err := parseFlags(fl, args[1:]); err != nil {
			return err
		}
		if *holder == "" || *target == "" {
			return usageError{msg: "token issue needs --holder and --target"}
		}
		b, err := a.do(ctx, http.MethodPost, "/.switchboard/v1/tokens",
			server.TokenRequest{Holder: *holder, Target: *target, TTL: ttl.String()})
		if err != nil {
			return err
		}
		var tr server.TokenResponse
		if err := json.Unmarshal(b, &tr); err != nil {
			return fmt.Errorf("decode token: %w", err)
		}
		fmt.Println(tr.Token)
		fmt.Fprintf(os.Stderr, "switchboard: grant %s for %s, expires %s; connect with wsapp://TOKEN/\n",
			tr.ID, *holder, tr.Expires.Format(time.RFC3339))
		return nil
	case "revoke":
		id := fl.String("id", "", "the grant id to revoke")
		if err := parseFlags(fl, args[1:]); err != nil {
			return err
		}
		req := server.RevokeRequest{ID: *id, Holder: *holder, Target: *target}
		if (*id == "") == (*holder == "" || *target == "") {
			return usageError{msg: "token revoke needs --id, or --holder and --target"}
		}
		if _, err := a.do(ctx, http.MethodPost, "/.switchboard/v1/tokens/revoke", req); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "switchboard: revoked")
		return nil
	case "list":
		asJSON := fl.Bool("json", false, "print the raw JSON")
		if err := parseFlags(fl, args[1:]); err != nil {
			return err
		}
		b, err := a.do(ctx, http.MethodGet, "/.switchboard/v1/tokens", nil)
		if err != nil {
			return err
		}
		if *asJSON {
			_, err := os.Stdout.Write(b)
			return err
		}
		var l server.TokenList
		if err := json.Unmarshal(b, &l); err != nil {
			return fmt.Errorf("decode token list: %w", err)
		}
		w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintf(w, "ISSUED (this broker run)\tHOLDER\tTARGET\tEXPIRES\tBY\n")
		for _, g := range l.Issued {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", g.ID, g.Holder, g.Target, g.Expires.Format(time.RFC3339), g.By)
		}
		fmt.Fprintf(w, "\nREVOKED\tHOLDER\tTARGET\tAT\n")
		for _, r := range l.Revocations {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.ID, r.Holder, r.Target, r.At.Format(time.RFC3339))
		}
		return w.Flush()
	}
	return usageError{msg: usage}
}
