// Package apps_test runs the apps features through the real switchboard
// binary: the CLI's token, reload and connect wsapp:// commands, SIGHUP,
// and the chooser page in Debian's Chromium.
package apps_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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

// startBroker writes cfg to dir/config.json and runs serve on it.
func startBroker(t *testing.T, dir string, cfg *config.File) *broker {
	t.Helper()
	b := &broker{cfgPath: filepath.Join(dir, "config.json")}
	testutil.WriteConfig(t, b.cfgPath, cfg)
	b.p, b.url = testutil.StartServe(t, "--config", b.cfgPath, "--log-level", "debug")
	return b
}

func (b *broker) ws() string { return testutil.WS(b.url) }
