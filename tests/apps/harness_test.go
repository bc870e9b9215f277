// Package apps_test runs the apps features through the real switchboard
// binary: the CLI's token, reload and connect wsapp:// commands, SIGHUP,
// and the chooser page in Debian's Chromium.
package apps_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// repoRoot is the module root, two levels up.
func repoRoot(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveBuilt()
	os.Exit(code)
}

// broker is a running `switchboard serve --config`.
type broker struct {
	p       *testutil.Process
	url     string // http://127.0.0.1:port
	cfgPath string
}

// logs is the broker's log so far.
func (b *broker) logs() string { return strings.Join(b.p.Lines(), "\n") + "\n" }

func writeConfig(t *testing.T, path string, f *config.File) {
	t.Helper()
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// startBroker writes cfg to dir/config.json and runs serve on it.
func startBroker(t *testing.T, dir string, cfg *config.File) *broker {
	t.Helper()
	b := &broker{cfgPath: filepath.Join(dir, "config.json")}
	writeConfig(t, b.cfgPath, cfg)
	b.p, b.url = testutil.StartServe(t, "--config", b.cfgPath, "--log-level", "debug")
	return b
}

func (b *broker) ws() string { return "ws" + strings.TrimPrefix(b.url, "http") }

// run runs the CLI with args and returns stdout; it fails the test on a
// non-zero exit unless wantErr.
func run(t *testing.T, stdin string, env []string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testutil.SwitchboardBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func mustRun(t *testing.T, stdin string, env []string, args ...string) string {
	t.Helper()
	out, errOut, err := run(t, stdin, env, args...)
	if err != nil {
		t.Fatalf("switchboard %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}
