package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/apps"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// These tests run the JavaScript suites with node's test runner: the codec
// against the shared vectors, and the browser suites in Debian's Chromium
// against a real broker binary. Missing tools are failures, not skips:
// web/install-deps.sh installs them.

const installHint = "run web/install-deps.sh (apt: chromium python3-websockets nodejs npm; npm ci in web/)"

func need(t *testing.T, what, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is missing (%s): %s", what, path, installHint)
	}
}

// runNode runs node --test on files in this directory and fails the test
// with node's report when any of them fails.
func runNode(t *testing.T, env []string, timeout time.Duration, files ...string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: %s", installHint)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := append([]string{"--test", "--test-reporter=spec", "--test-concurrency=1"}, files...)
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env, "NO_COLOR=1", "FORCE_COLOR=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("node --test %s:\n%s", strings.Join(files, " "), out.String())
	if ctx.Err() != nil {
		t.Fatalf("node --test did not finish within %s", timeout)
	}
	if err != nil {
		t.Fatalf("node --test %s failed: %v (report above)", strings.Join(files, " "), err)
	}
}

func TestCodecVectors(t *testing.T) {
	runNode(t, nil, 2*time.Minute, filepath.Join("test", "codec.test.mjs"))
}

func TestEmbeddedFiles(t *testing.T) {
	for _, name := range []string{"switchboard.js", "switchboard.d.ts", "protocol.js", "link.js", "index.html", "style.css", "start.js"} {
		if _, err := fs.Stat(Files, name); err != nil {
			t.Errorf("Files lacks %s: %v", name, err)
		}
	}
	if _, err := fs.Stat(Files, "test"); err == nil {
		t.Errorf("Files must not carry the tests")
	}
}

func TestBrowser(t *testing.T) {
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	need(t, "Debian's chromium", chromium)
	need(t, "playwright-core (npm)", filepath.Join("node_modules", "playwright-core", "package.json"))
	need(t, "ws (npm)", filepath.Join("node_modules", "ws", "package.json"))
	if err := exec.Command("/usr/bin/python3", "-c", "import websockets").Run(); err != nil {
		t.Fatalf("Python websockets is missing (/usr/bin/python3 -c 'import websockets': %v): %s", err, installHint)
	}
	// BROWSER_TESTS narrows the run to some files while working on them
	// (BROWSER_TESTS=seeds runs test/browser/seeds.test.mjs).
	pattern := "*"
	if p := os.Getenv("BROWSER_TESTS"); p != "" {
		pattern = p
	}
	files, err := filepath.Glob(filepath.Join("test", "browser", pattern+".test.mjs"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no browser test files found: %v", err)
	}

	url := startBroker(t, "--dev")
	config, secrets := appsConfig(t)
	appsURL := startBroker(t, "--dev", "--config", config)
	prodConfig, grantKey := productionConfig(t, config)
	prodURL := startBroker(t, "--config", prodConfig)
	tlsURL, tlsCA := startTLSBroker(t, prodConfig)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	runNode(t, []string{
		"SWITCHBOARD_URL=" + url,
		"SWITCHBOARD_APPS_URL=" + appsURL,
		"SWITCHBOARD_APP_SECRETS=" + secrets,
		"SWITCHBOARD_PROD_URL=" + prodURL,
		"SWITCHBOARD_PROD_ADMIN_TOKEN=" + prodAdminToken,
		"SWITCHBOARD_TLS_URL=" + tlsURL,
		"SWITCHBOARD_TLS_CA=" + tlsCA,
		"SWITCHBOARD_GRANT_KEY=" + grantKey,
		"SWITCHBOARD_BIN=" + testutil.SwitchboardBinary(t),
		"CHROMIUM=" + chromium,
		"SWITCHBOARD_ARTIFACTS=" + filepath.Join(root, "artifacts", "screenshots"),
	}, 5*time.Minute, files...)
}

// appsConfig writes a config file with three apps: chat (a server that
// admits notes and token holders), notes (lists chat in its servers) and
// camera (lists nothing). It returns the file and the secrets as JSON.
func appsConfig(t *testing.T) (path, secrets string) {
	t.Helper()
	secret := map[string]string{}
	hash := map[string]string{}
	for _, app := range []string{"chat", "notes", "camera"} {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		secret[app] = hex.EncodeToString(b)
		h, err := apps.HashCredential(secret[app])
		if err != nil {
			t.Fatal(err)
		}
		hash[app] = h
	}
	cfg := map[string]any{"apps": []map[string]any{
		{"id": "chat", "credential_hash": hash["chat"], "listen": []string{"/chatapp/"},
			"admit": map[string]any{"apps": []string{"notes"}, "tokens": true}},
		{"id": "notes", "credential_hash": hash["notes"], "servers": []string{"chat"}},
		{"id": "camera", "credential_hash": hash["camera"]},
	}}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "switchboard.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, _ := json.Marshal(secret)
	return path, string(s)
}

// startBroker runs `switchboard serve` with args (the binary built once
// per test run) and returns its URL; it is stopped when the test ends.
func startBroker(t *testing.T, args ...string) string {
	t.Helper()
	_, url := testutil.StartServe(t, args...)
	checkLibrary(t, http.DefaultClient, url)
	return url
}

// checkLibrary checks that the broker at url serves the library.
func checkLibrary(t *testing.T, hc *http.Client, url string) {
	t.Helper()
	res, err := hc.Get(url + "/.switchboard/web/switchboard.js")
	if err != nil {
		t.Fatalf("fetch the library from the broker: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("the broker does not serve web.Files at /.switchboard/web/ (HTTP %d): cmd/switchboard must set webFiles = web.Files", res.StatusCode)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveBuilt()
	os.Exit(code)
}
