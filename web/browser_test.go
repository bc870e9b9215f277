package web

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/apps"
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
	files, err := filepath.Glob(filepath.Join("test", "browser", "*.test.mjs"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no browser test files found: %v", err)
	}

	bin := buildBroker(t)
	url := startBroker(t, bin, "serve", "--dev", "--listen", "127.0.0.1:0")
	config, secrets := appsConfig(t)
	appsURL := startBroker(t, bin, "serve", "--dev", "--listen", "127.0.0.1:0", "--config", config)
	prodConfig, grantKey := productionConfig(t, config)
	prodURL := startBroker(t, bin, "serve", "--listen", "127.0.0.1:0", "--config", prodConfig)
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
		"SWITCHBOARD_GRANT_KEY=" + grantKey,
		"SWITCHBOARD_BIN=" + bin,
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

// buildBroker builds cmd/switchboard. While the command does not wire
// web.Files in yet, an overlay adds the one-line file that does.
func buildBroker(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "switchboard")
	args := []string{"build", "-o", bin}
	wired, _ := filepath.Glob(filepath.Join("..", "cmd", "switchboard", "*.go"))
	hasWeb := false
	for _, f := range wired {
		b, _ := os.ReadFile(f)
		hasWeb = hasWeb || bytes.Contains(b, []byte("web.Files"))
	}
	if !hasWeb {
		src := filepath.Join(dir, "web.go")
		code := "package main\n\nimport \"github.com/switchboard-dev/switchboard/web\"\n\nfunc init() { webFiles = web.Files }\n"
		target, _ := filepath.Abs(filepath.Join("..", "cmd", "switchboard", "web.go"))
		overlay := filepath.Join(dir, "overlay.json")
		if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(overlay, []byte(fmt.Sprintf(`{"Replace":{%q:%q}}`, target, src)), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-overlay", overlay)
	}
	args = append(args, "../cmd/switchboard")
	cmd := exec.Command("go", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/switchboard: %v\n%s", err, out)
	}
	return bin
}

var listening = regexp.MustCompile(`switchboard: listening on (http://\S+)`)

// startBroker runs the broker (`switchboard serve --dev --listen
// 127.0.0.1:0 …`) and returns its URL; it is stopped when the test ends.
func startBroker(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start broker: %v", err)
	}
	var (
		mu   sync.Mutex
		logs bytes.Buffer
		wg   sync.WaitGroup
	)
	found := make(chan string, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			logs.WriteString(line + "\n")
			mu.Unlock()
			if m := listening.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { wg.Wait(); done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("broker did not stop within 10 s of SIGINT")
		}
		if t.Failed() {
			mu.Lock()
			t.Logf("broker log:\n%s", logs.String())
			mu.Unlock()
		}
	})
	var url string
	select {
	case url = <-found:
	case <-time.After(20 * time.Second):
		t.Fatalf("broker printed no listening line within 20 s")
	}
	res, err := http.Get(url + "/.switchboard/web/switchboard.js")
	if err != nil {
		t.Fatalf("fetch the library from the broker: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("the broker does not serve web.Files at /.switchboard/web/ (HTTP %d): cmd/switchboard must set webFiles = web.Files", res.StatusCode)
	}
	return url
}
