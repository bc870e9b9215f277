package apps_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/apps"
)

// TestDocs keeps docs/CONFIG.md quoting the tested three-app example and
// docs/SECURITY.md naming only tests that exist.
func TestDocs(t *testing.T) {
	root := repoRoot(t)
	cfg, err := os.ReadFile(filepath.Join(root, "docs", "CONFIG.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), "```json\n"+apps.ExampleJSON+"\n```") {
		t.Fatal("docs/CONFIG.md does not quote apps.ExampleJSON as it is")
	}
	sec, err := os.ReadFile(filepath.Join(root, "docs", "SECURITY.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(sec), "## Apps, credentials and chooser tokens")
	if !ok {
		t.Fatal("docs/SECURITY.md has no apps section")
	}
	var sources strings.Builder
	for _, glob := range []string{"server/*_test.go", "tests/apps/*_test.go"} {
		files, _ := filepath.Glob(filepath.Join(root, glob))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			sources.Write(b)
		}
	}
	for _, m := range regexp.MustCompile("`(Test[A-Za-z0-9]+)`").FindAllStringSubmatch(section, -1) {
		if !strings.Contains(sources.String(), "func "+m[1]+"(") {
			t.Errorf("docs/SECURITY.md names %s, which does not exist", m[1])
		}
	}
}
