package wstest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Client names a third-party WebSocket client script under tests/interop.
type Client string

const (
	// PythonClient is tests/interop/py_client.py: Debian's python3-websockets,
	// run with /usr/bin/python3.
	PythonClient Client = "py_client.py"
	// NodeClient is tests/interop/node_client.mjs: the npm package ws, pinned
	// in tests/interop/package.json.
	NodeClient Client = "node_client.mjs"
)

// Clients lists every interop client.
var Clients = []Client{PythonClient, NodeClient}

// debianPython is the interpreter python3-websockets installs into; a
// python3 earlier on PATH (pyenv, a venv) does not see it.
const debianPython = "/usr/bin/python3"

// installHint ends every message about a missing dependency.
const installHint = "run scripts/install-test-deps.sh (as root) to install the interop clients"

// ClientResult is the JSON line an interop client prints.
type ClientResult struct {
	OK      bool   `json:"ok"`
	Client  string `json:"client"`  // "python-websockets" or "node-ws"
	Version string `json:"version"` // the library's version
	URL     string `json:"url"`
	// Status is the handshake's HTTP status (101 when accepted), 0 if none.
	Status int `json:"status"`
	// Protocol is the negotiated subprotocol, "" for none.
	Protocol string `json:"protocol"`
	// Echoed counts the scenario messages whose echo matched.
	Echoed int `json:"echoed"`
	// Received are the messages that came before a server-initiated close
	// (--expect-close): text as is, binary as "<binary N bytes>".
	Received []string `json:"received"`
	// Close is the close frame received from the server, nil if none.
	Close *ClientClose `json:"close"`
	// ResponseHeaders holds each --print-response-header; nil values are
	// headers the response lacked.
	ResponseHeaders map[string]*string `json:"response_headers"`
	// Error says what did not match; empty when OK.
	Error string `json:"error"`
}

// ClientClose is a close frame as an interop client saw it.
type ClientClose struct {
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

// ClientRun is one run of an interop client.
type ClientRun struct {
	Result   ClientResult
	ExitCode int
	Stdout   string
	Stderr   string
}

// InteropDir returns the absolute path of tests/interop, found by walking
// up from the working directory to the module root (go.mod).
func InteropDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("wstest: working directory: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "tests", "interop")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("wstest: no go.mod above the working directory: cannot find tests/interop")
		}
		dir = parent
	}
}

// CheckClientDeps fails the test, saying how to install them, when the
// client's library is missing.
func CheckClientDeps(t testing.TB, c Client) {
	t.Helper()
	dir := InteropDir(t)
	switch c {
	case PythonClient:
		out, err := exec.Command(debianPython, "-c", "import websockets").CombinedOutput()
		if err != nil {
			t.Fatalf("wstest: %s needs Debian's python3-websockets under %s (%v: %s); %s",
				c, debianPython, err, bytes.TrimSpace(out), installHint)
		}
	case NodeClient:
		if _, err := exec.LookPath("node"); err != nil {
			t.Fatalf("wstest: %s needs node on PATH; %s", c, installHint)
		}
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "ws", "package.json")); err != nil {
			t.Fatalf("wstest: %s needs tests/interop/node_modules (npm ws): %v; %s", c, err, installHint)
		}
	default:
		t.Fatalf("wstest: unknown interop client %q", c)
	}
}

// RunClient runs the interop client c with args (--url and the rest, as
// tests/interop/README.md says) and returns its exit code, output and the
// parsed JSON line, whether the scenario passed or not: the caller checks
// Result.OK, or that a mismatch was caught. Missing dependencies, a client
// that does not end within a minute or prints no JSON line fail the test.
func RunClient(t testing.TB, c Client, args ...string) ClientRun {
	t.Helper()
	CheckClientDeps(t, c)
	run, err := ExecClient(context.Background(), InteropDir(t), c, args...)
	if err != nil {
		t.Fatalf("wstest: %v", err)
	}
	return run
}

// ExecClient is RunClient without a test: it runs the client script in dir
// (tests/interop, see InteropDir) and returns an error when the client
// cannot run, does not end within a minute or prints no JSON line. It is
// safe to call from many goroutines at once.
func ExecClient(ctx context.Context, dir string, c Client, args ...string) (ClientRun, error) {
	script := filepath.Join(dir, string(c))
	var name string
	switch c {
	case PythonClient:
		name = debianPython
	case NodeClient:
		name = "node"
	default:
		return ClientRun{}, fmt.Errorf("unknown interop client %q", c)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, append([]string{script}, args...)...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	run := ClientRun{Stdout: stdout.String(), Stderr: stderr.String()}
	what := fmt.Sprintf("%s %s", c, strings.Join(args, " "))
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return run, fmt.Errorf("%s did not end in time\nstdout: %s\nstderr: %s", what, run.Stdout, run.Stderr)
	case errors.As(err, &exitErr):
		run.ExitCode = exitErr.ExitCode()
	case err != nil:
		return run, fmt.Errorf("run %s: %w", what, err)
	}
	line := strings.TrimSpace(run.Stdout)
	if i := strings.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	if err := json.Unmarshal([]byte(line), &run.Result); err != nil {
		return run, fmt.Errorf("%s printed no JSON result (exit %d): %w\nstdout: %s\nstderr: %s",
			what, run.ExitCode, err, run.Stdout, run.Stderr)
	}
	return run, nil
}

// String sums a run up for failure messages.
func (r ClientRun) String() string {
	return fmt.Sprintf("exit %d, result %s, stderr %q", r.ExitCode, strings.TrimSpace(r.Stdout), strings.TrimSpace(r.Stderr))
}
