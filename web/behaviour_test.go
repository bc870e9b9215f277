package web

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/switchboard-dev/switchboard/internal/testkit/behaviour"
)

// TestBehaviour runs the shared behaviour suite (internal/testkit/behaviour,
// scenarios.json) against the JS library: test/behaviour/driver.mjs runs
// an echo service on web/link.js in Node. sdk's TestBehaviour runs the same
// scenarios against the Go SDK.
func TestBehaviour(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: %s", installHint)
	}
	need(t, "ws (npm)", filepath.Join("node_modules", "ws", "package.json"))
	behaviour.Run(t, func(t *testing.T, scopeURL string) func() {
		cmd := exec.Command(node, filepath.Join("test", "behaviour", "driver.mjs"), scopeURL)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start the JS driver: %v", err)
		}
		return func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if t.Failed() && out.Len() > 0 {
				t.Logf("JS driver output:\n%s", out.String())
			}
		}
	})
}
