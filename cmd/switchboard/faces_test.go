package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// TestHelpAndExitCodes: the top-level help lists every command with a
// line and an example; -h exits 0 for every command; usage errors exit 2;
// no message repeats its prefix.
func TestHelpAndExitCodes(t *testing.T) {
	out, _, code := testutil.Run(t, "", nil, "help")
	if code != 0 {
		t.Fatalf("help exited %d", code)
	}
	for name := range commands {
		if !regexp.MustCompile(`(?m)^  ` + name + ` +\S.*\n +e\.g\. switchboard ` + name + `\b`).MatchString(out) {
			t.Errorf("help has no line and example for %s:\n%s", name, out)
		}
		if _, stderr, code := testutil.Run(t, "", nil, name, "-h"); code != 0 {
			t.Errorf("%s -h exited %d: %s", name, code, stderr)
		}
	}
	for _, args := range [][]string{
		{}, {"nosuchcommand"}, {"listen", "--bogus"}, {"serve", "--listen"}, {"credential", "old"},
		{"token"}, {"app", "make"}, {"config", "check"}, {"status", "extra"}, {"connect"},
		{"serve", "--log-format", "xml"},
	} {
		if _, stderr, code := testutil.Run(t, "", nil, args...); code != 2 {
			t.Errorf("%q exited %d, want 2 (usage); stderr %s", args, code, stderr)
		}
	}
	_, stderr, code := testutil.Run(t, "", nil, "status", "--broker", "http://127.0.0.1:1")
	if code != 1 || strings.Contains(stderr, "status: status:") {
		t.Errorf("status with no broker: exit %d, %q", code, stderr)
	}
}

// TestVersion: `version`, `--version`, the admin status, /healthz?verbose
// and switchboard_build_info all tell the same version.
func TestVersion(t *testing.T) {
	out, _, code := testutil.Run(t, "", nil, "version")
	if code != 0 || !strings.HasPrefix(out, "switchboard ") {
		t.Fatalf("version: %d %q", code, out)
	}
	if o2, _, _ := testutil.Run(t, "", nil, "--version"); o2 != out {
		t.Fatalf("--version %q != version %q", o2, out)
	}
	js, _, _ := testutil.Run(t, "", nil, "version", "--json")
	var v struct{ Version, Go string }
	if err := json.Unmarshal([]byte(js), &v); err != nil || v.Version == "" || !strings.Contains(out, v.Version) {
		t.Fatalf("version --json %q: %v", js, err)
	}
	base := strings.Replace(startServe(t), "ws://", "http://", 1)
	get := func(path string) string {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if h := get("/healthz"); h != "ok\n" {
		t.Fatalf("/healthz %q", h)
	}
	if h := get("/healthz?verbose"); !strings.Contains(h, "version: "+v.Version+"\n") {
		t.Fatalf("/healthz?verbose %q lacks version %s", h, v.Version)
	}
	if m := get("/metrics"); !regexp.MustCompile(`switchboard_build_info\{[^}]*version="` + regexp.QuoteMeta(v.Version) + `"[^}]*\} 1`).MatchString(m) {
		t.Fatal("no switchboard_build_info in /metrics")
	}
	st, stderr, code := testutil.Run(t, "", nil, "status", "--broker", base)
	if code != 0 || !strings.HasPrefix(st, "broker: switchboard "+v.Version) {
		t.Fatalf("status: %d %q %s", code, st, stderr)
	}
}

// TestAdminTokenFaces: a secret in the environment never shows in -h; a
// missing and a rejected admin token each say so.
func TestAdminTokenFaces(t *testing.T) {
	const secret = "sb_env_secret_that_must_not_show_0123456789"
	for _, args := range [][]string{{"status", "-h"}, {"reload", "-h"}, {"token", "list", "-h"}, {"connect", "-h"}, {"listen", "-h"}, {"serve", "-h"}} {
		o, e, _ := testutil.Run(t, "", []string{"SWITCHBOARD_ADMIN_TOKEN=" + secret, "SWITCHBOARD_CREDENTIAL=" + secret}, args...)
		if strings.Contains(o+e, secret) {
			t.Errorf("%q printed the secret from the environment", args)
		}
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.json")
	os.WriteFile(cfg, []byte(`{"admin_token": "right-admin-token-0123456789abcdef"}`), 0o600)
	_, base := testutil.StartServe(t, "--config", cfg)
	_, e, code := testutil.Run(t, "", nil, "status", "--broker", base)
	if code != 1 || !strings.Contains(e, "wants the admin token") {
		t.Errorf("no token: %d %s", code, e)
	}
	_, e, code = testutil.Run(t, "", []string{"SWITCHBOARD_ADMIN_TOKEN=wrong"}, "status", "--broker", base)
	if code != 1 || !strings.Contains(e, "rejected the admin token") {
		t.Errorf("wrong token: %d %s", code, e)
	}
	if _, e, code = testutil.Run(t, "", []string{"SWITCHBOARD_ADMIN_TOKEN=right-admin-token-0123456789abcdef"}, "status", "--broker", base); code != 0 {
		t.Errorf("right token from the environment: %d %s", code, e)
	}
}

// TestConfigCheck: every problem at once with key path and line:column
// and a hint; a pasted `credential new --json` entry makes a good file.
func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{\n  \"limits\": {\"accept_timout\": \"1s\"},\n  \"credentials\": [{\"name\": \"a\", \"credential_hash\": \"zz\", \"scopes\": [\"/a/\"]}]\n}\n"), 0o600)
	_, e, code := testutil.Run(t, "", nil, "config", "check", bad)
	for _, want := range []string{
		`2:14: limits.accept_timout: unknown key "accept_timout" (did you mean "accept_timeout"?)`,
		`3:33: credentials[0].credential_hash: credential_hash must start with "sha256$"`,
		"2 problems",
	} {
		if !strings.Contains(e, want) {
			t.Errorf("config check output lacks %q:\n%s", want, e)
		}
	}
	if code != 1 || strings.Contains(e, "switchboard config: config") {
		t.Errorf("config check of a bad file: exit %d, stderr %q", code, e)
	}
	// serve says the same and exits 1.
	if _, se, code := testutil.Run(t, "", nil, "serve", "--config", bad); code != 1 || !strings.Contains(se, "did you mean") {
		t.Errorf("serve with a bad file: %d %s", code, se)
	}

	entry, secretLine, code := testutil.Run(t, "", nil, "credential", "new", "--json", "--name", "chat", "--scope", "/chat/")
	if code != 0 {
		t.Fatalf("credential new --json: %d", code)
	}
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"credentials": [`+entry+`]}`), 0o600)
	if out, e, code := testutil.Run(t, "", nil, "config", "check", good); code != 0 || !strings.Contains(out, "ok (1 credentials") {
		t.Fatalf("pasted entry: %d %s %s", code, out, e)
	}
	secret := strings.TrimSpace(secretLine[strings.LastIndex(secretLine, " ")+1:])
	c, err := config.Load(good)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := c.Keys()
	if owner, ok := k.Lookup(secret); !ok || owner != "chat" {
		t.Fatalf("the secret on stderr does not match the entry: %q %v", owner, ok)
	}
	// credential hash turns an existing secret into the same hash.
	out, _, _ := testutil.Run(t, secret+"\n", nil, "credential", "hash")
	var ent config.Credential
	json.Unmarshal([]byte(entry), &ent)
	if !strings.Contains(out, ent.CredentialHash) {
		t.Fatalf("credential hash printed %q, want %s", out, ent.CredentialHash)
	}
}

// TestServeEnvironment: SWITCHBOARD_* variables set serve's flags; a flag
// wins over its variable, which wins over the file.
func TestServeEnvironment(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.json")
	os.WriteFile(cfg, []byte(`{"listen": "127.0.0.1:1", "node": "from-file"}`), 0o600)
	// The variable beats the file: the broker listens where the variable says.
	cmd := testutil.Command(t, "serve", "--config", cfg, "--dev")
	cmd.Env = append(cmd.Env, "SWITCHBOARD_LISTEN=127.0.0.1:0", "SWITCHBOARD_NODE_NAME=from-env", "SWITCHBOARD_LOG_FORMAT=json")
	p := testutil.StartProcess(t, cmd)
	base := p.URL()
	p.WaitLine(`^\{"time":.*"msg":"dev mode`) // --log-format json from the environment
	st, e, code := testutil.Run(t, "", nil, "status", "--broker", base, "--json")
	if code != 0 || !strings.Contains(st, `"node":"from-env"`) {
		t.Fatalf("status: %d %s %s", code, st, e)
	}
	// The flag beats the variable.
	cmd = testutil.Command(t, "serve", "--config", cfg, "--dev", "--listen", "127.0.0.1:0", "--node-name", "from-flag")
	cmd.Env = append(cmd.Env, "SWITCHBOARD_LISTEN=127.0.0.1:1", "SWITCHBOARD_NODE_NAME=from-env")
	base = testutil.StartProcess(t, cmd).URL()
	if st, _, _ := testutil.Run(t, "", nil, "status", "--broker", base, "--json"); !strings.Contains(st, `"node":"from-flag"`) {
		t.Fatalf("flag did not win: %s", st)
	}
	// A bad value in a variable is a usage error naming the variable.
	_, e, code = testutil.Run(t, "", []string{"SWITCHBOARD_SHUTDOWN_GRACE=soon"}, "serve", "--dev", "--listen", "127.0.0.1:0")
	if code != 2 || !strings.Contains(e, "$SWITCHBOARD_SHUTDOWN_GRACE") {
		t.Fatalf("bad variable: %d %s", code, e)
	}
}
