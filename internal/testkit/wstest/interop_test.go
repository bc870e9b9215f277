package wstest

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// interopScenario is one run of an interop client and what to check of it.
type interopScenario struct {
	name    string
	args    []string
	wantErr string // "" when the scenario must pass; else what the failure must say
	check   func(t *testing.T, r ClientResult)
}

// interopScenarios: echo is the reference with a 1 MiB limit, small one
// with a 1000-byte limit.
func interopScenarios(echo, small *echoServer) []interopScenario {
	return []interopScenario{
		{name: "echo", args: []string{"--url", echo.URL + "/echo", "--protocol", "superchat", "--protocol", "chat",
			"--expect-protocol", "chat", "--header", "X-Test: hello there",
			"--print-response-header", "X-Test-Echo", "--print-response-header", "X-Absent"},
			check: func(t *testing.T, r ClientResult) {
				if r.Status != 101 || r.Protocol != "chat" || r.Echoed != 7 {
					t.Errorf("status %d protocol %q echoed %d, want 101 chat 7", r.Status, r.Protocol, r.Echoed)
				}
				if r.Close == nil || r.Close.Code != 4001 || r.Close.Reason != "bye" {
					t.Errorf("close %+v, want the server's echo of 4001 bye", r.Close)
				}
				if v := r.ResponseHeaders["X-Test-Echo"]; v == nil || *v != "hello there" {
					t.Errorf("X-Test-Echo %v, want hello there", v)
				}
				if v, found := r.ResponseHeaders["X-Absent"]; !found || v != nil {
					t.Errorf("X-Absent reported as %v (present %v), want null", v, found)
				}
				if r.Version == "" || r.Client == "" {
					t.Errorf("client %q version %q, want both", r.Client, r.Version)
				}
			}},
		{name: "no-protocol", args: []string{"--url", echo.URL + "/echo", "--expect-protocol", "", "--large-size", "1000"},
			check: func(t *testing.T, r ClientResult) {
				if r.Protocol != "" || r.Echoed != 7 {
					t.Errorf("protocol %q echoed %d, want none and 7", r.Protocol, r.Echoed)
				}
			}},
		{name: "protocol-mismatch", wantErr: `want "superchat"`,
			args: []string{"--url", echo.URL + "/echo", "--protocol", "chat", "--expect-protocol", "superchat"}},
		{name: "echo-mismatch", wantErr: "echo differs", args: []string{"--url", echo.URL + "/mangle"},
			check: func(t *testing.T, r ClientResult) {
				if r.Echoed != 0 {
					t.Errorf("echoed %d of a mangling echo", r.Echoed)
				}
			}},
		{name: "echo-at-small-limit", args: []string{"--url", small.URL + "/echo", "--large-size", "1000"}},
		{name: "echo-over-limit", wantErr: "1009", args: []string{"--url", small.URL + "/echo", "--large-size", "1001"}},
		{name: "rejected", args: []string{"--url", echo.URL + "/reject?status=403", "--expect-status", "403", "--print-response-header", "Content-Type"},
			check: func(t *testing.T, r ClientResult) {
				if r.Status != 403 {
					t.Errorf("status %d, want 403", r.Status)
				}
				if v := r.ResponseHeaders["Content-Type"]; v == nil || !strings.HasPrefix(*v, "text/plain") {
					t.Errorf("Content-Type %v, want text/plain", v)
				}
			}},
		{name: "rejected-other-status", wantErr: "want 404", args: []string{"--url", echo.URL + "/reject?status=403", "--expect-status", "404"}},
		{name: "rejection-expected-but-accepted", wantErr: "want HTTP 403", args: []string{"--url", echo.URL + "/echo", "--expect-status", "403"}},
		{name: "rejected-unexpectedly", wantErr: "want 101", args: []string{"--url", echo.URL + "/reject?status=401"}},
		{name: "server-close", args: []string{"--url", echo.URL + "/close?code=4002&reason=going+away", "--expect-close", "4002"},
			check: func(t *testing.T, r ClientResult) {
				if r.Close == nil || r.Close.Code != 4002 || r.Close.Reason != "going away" {
					t.Errorf("close %+v, want 4002 going away", r.Close)
				}
			}},
		// The clients cannot send invalid UTF-8, so make the echo close with
		// 1009: a message over its 1000-byte limit.
		{name: "server-close-after-send", args: []string{"--url", small.URL + "/echo", "--send", "first", "--send", strings.Repeat("x", 1001), "--expect-close", "1009"},
			check: func(t *testing.T, r ClientResult) {
				if len(r.Received) != 1 || r.Received[0] != "first" {
					t.Errorf("received %q before the close, want [first]", r.Received)
				}
			}},
		{name: "server-close-other-code", wantErr: "want 4003", args: []string{"--url", echo.URL + "/close?code=4002&reason=x", "--expect-close", "4003"},
			check: func(t *testing.T, r ClientResult) {
				if r.Close == nil || r.Close.Code != 4002 {
					t.Errorf("close %+v, want 4002 reported", r.Close)
				}
			}},
	}
}

// TestInteropClients proves the scripts under tests/interop against the
// reference echo: each scenario passes where it should and, above all,
// fails where the endpoint misbehaves. The client processes spend their
// time starting up, so they all run at once, then each is checked in its
// subtest.
func TestInteropClients(t *testing.T) {
	echo := startEcho(t, 1<<20)
	small := startEcho(t, 1000)
	scenarios := interopScenarios(echo, small)
	dir := InteropDir(t)
	for _, c := range Clients {
		CheckClientDeps(t, c)
	}

	type outcome struct {
		run ClientRun
		err error
	}
	results := make([][]outcome, len(Clients))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, c := range Clients {
		results[i] = make([]outcome, len(scenarios))
		for j, sc := range scenarios {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				run, err := ExecClient(context.Background(), dir, c, sc.args...)
				results[i][j] = outcome{run, err}
			})
		}
	}
	wg.Wait()

	for i, c := range Clients {
		for j, sc := range scenarios {
			t.Run(string(c)+"/"+sc.name, func(t *testing.T) {
				o := results[i][j]
				if o.err != nil {
					t.Fatal(o.err)
				}
				r := o.run
				switch {
				case sc.wantErr == "" && (r.ExitCode != 0 || !r.Result.OK):
					t.Fatalf("%s %s: %v", c, strings.Join(sc.args, " "), r)
				case sc.wantErr != "" && (r.ExitCode == 0 || r.Result.OK):
					t.Fatalf("%s %s passed, want a failure saying %q: %v", c, strings.Join(sc.args, " "), sc.wantErr, r)
				case sc.wantErr != "" && (!strings.Contains(r.Result.Error, sc.wantErr) || !strings.Contains(r.Stderr, sc.wantErr)):
					t.Fatalf("%s: error %q (stderr %q) does not say %q", c, r.Result.Error, r.Stderr, sc.wantErr)
				}
				if sc.check != nil {
					sc.check(t, r.Result)
				}
			})
		}
	}
}

// TestInteropBadArguments: a usage error exits 2 and prints no JSON line.
func TestInteropBadArguments(t *testing.T) {
	for _, c := range Clients {
		CheckClientDeps(t, c)
		name := "node"
		if c == PythonClient {
			name = debianPython
		}
		cmd := exec.Command(name, filepath.Join(InteropDir(t), string(c)), "--header", "no-colon", "--url", "ws://127.0.0.1:9/")
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("%s with a bad --header: %v, want exit 2 (stderr %q)", c, err, stderr.String())
		}
		if stdout.Len() != 0 || !strings.Contains(stderr.String(), "no-colon") {
			t.Errorf("%s: stdout %q stderr %q, want only stderr naming the bad header", c, stdout.String(), stderr.String())
		}
	}
}
