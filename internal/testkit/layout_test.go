package testkit

import (
	"os/exec"
	"strings"
	"testing"
)

// TestProductionDoesNotImportTestkit keeps the split of internal/ true: the
// binary and the SDK link no test helpers.
func TestProductionDoesNotImportTestkit(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../../cmd/switchboard", "../../sdk").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	if !strings.Contains(string(out), "github.com/switchboard-dev/switchboard/broker") {
		t.Fatalf("go list -deps did not list the binary's packages:\n%s", out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "/internal/testkit") {
			t.Errorf("production code depends on the test package %s", dep)
		}
	}
}
