package sdk

import (
	"os/exec"
	"strings"
	"testing"
)

// TestSDKStandsAlone keeps the SDK a thin client: a Go program that uses it
// must not link the broker core, the apps policy, Prometheus or the token
// cipher. What both sides need lives in the scope and protocol packages.
func TestSDKStandsAlone(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	banned := []string{
		"github.com/switchboard-dev/switchboard/broker",
		"github.com/switchboard-dev/switchboard/apps",
		"github.com/switchboard-dev/switchboard/server",
		"github.com/switchboard-dev/switchboard/config",
		"github.com/prometheus/",
		"golang.org/x/crypto/chacha20poly1305",
	}
	var deps int
	for _, dep := range strings.Fields(string(out)) {
		deps++
		for _, b := range banned {
			if dep == b || strings.HasSuffix(b, "/") && strings.HasPrefix(dep, b) {
				t.Errorf("the sdk depends on %s; move what it needs into a package both sides share (scope, protocol)", dep)
			}
		}
	}
	if deps < 10 {
		t.Fatalf("go list -deps listed %d packages; expected the sdk's whole dependency graph:\n%s", deps, out)
	}
}
