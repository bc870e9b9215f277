package web

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestTypes checks switchboard.d.ts with TypeScript (typescript pinned in
// package.json, installed by install-deps.sh): tsc --noEmit over
// test/types/usage.ts, which uses every export; and the module's runtime
// exports against the declared ones.
func TestTypes(t *testing.T) {
	tsc := filepath.Join("node_modules", "typescript", "bin", "tsc")
	need(t, "typescript (npm)", tsc)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: %s", installHint)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, tsc, "--noEmit", "-p", "tsconfig.json").CombinedOutput()
	if err != nil {
		t.Fatalf("tsc --noEmit -p web/tsconfig.json: %v\n%s", err, out)
	}
	runNode(t, nil, time.Minute, filepath.Join("test", "exports.test.mjs"))
}
