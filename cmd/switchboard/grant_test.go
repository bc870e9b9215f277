package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// runOut runs the binary to completion and returns its stdout, trimmed.
func runOut(t *testing.T, args ...string) string {
	t.Helper()
	return strings.TrimSpace(testutil.MustRun(t, "", nil, args...))
}

// TestGrantMintListenRotate: a production broker (config file, no --dev)
// with an HS256 and an EdDSA grant key. `grant key` makes the keys, `grant
// mint` the grants, `listen --grant` attaches and serves a client; an
// expired grant and a forged one are refused with what is wrong; a key
// added by reload (rotation) is taken without a restart.
func TestGrantMintListenRotate(t *testing.T) {
	dir := t.TempDir()
	runOut(t, "grant", "key", "--alg", "HS256", "--out", filepath.Join(dir, "site1"))
	runOut(t, "grant", "key", "--alg", "EdDSA", "--out", filepath.Join(dir, "site2"))
	if fi, err := os.Stat(filepath.Join(dir, "site2.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v %v", fi, err)
	}
	writeCfg := func(keys ...map[string]any) string {
		cfg := map[string]any{"grants": map[string]any{"keys": keys, "max_lifetime": "1h"}}
		b, _ := json.Marshal(cfg)
		p := filepath.Join(dir, "switchboard.json")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	k1 := map[string]any{"id": "site-1", "alg": "HS256", "owner": "site", "scopes": []string{"/pages/"}, "secret_file": "site1.key"}
	k2 := map[string]any{"id": "site-2", "alg": "EdDSA", "owner": "site", "scopes": []string{"/pages/"}, "public_key_file": "site2.pub.pem"}
	cfgPath := writeCfg(k1)
	srv, httpBase := testutil.StartServe(t, "--config", cfgPath)
	base := testutil.WS(httpBase)

	tok := runOut(t, "grant", "mint", "--config", cfgPath, "--key", "site-1", "--scope", "/pages/a/", "--ttl", "2m")
	l, _ := testutil.StartListen(t, base+"/pages/a/", "--echo", "--grant", tok)
	c := dial(t, base+"/pages/a/x")
	send(t, c, websocket.MessageText, "hi")
	expect(t, c, websocket.MessageText, "hi")
	c.Close(websocket.StatusNormalClosure, "")

	refused := func(want string, args ...string) {
		t.Helper()
		p := testutil.Start(t, append([]string{"listen"}, args...)...)
		if code := p.Wait(); code != 1 {
			t.Fatalf("listen %v exited %d, want 1", args, code)
		}
		p.WaitLine(want)
	}
	expired := runOut(t, "grant", "mint", "--config", cfgPath, "--key", "site-1", "--scope", "/pages/b/", "--ttl", "-1m")
	refused(`listen grant expired at`, base+"/pages/b/", "--echo", "--grant", expired)
	parts := strings.Split(tok, ".")
	forged := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
	refused(`signature does not verify`, base+"/pages/b/", "--echo", "--grant", forged)
	refused(`does not cover scope /pages/b/`, base+"/pages/b/", "--echo", "--grant", tok)

	// Rotation: the EdDSA key is added by reload; its grants work at once.
	ed := runOut(t, "grant", "mint", "--alg", "EdDSA", "--kid", "site-2", "--private-key", filepath.Join(dir, "site2.pem"), "--scope", "/pages/c/")
	refused(`key id "site-2" is not one this broker knows`, base+"/pages/c/", "--echo", "--grant", ed)
	writeCfg(k1, k2)
	srv.Signal(syscall.SIGHUP)
	srv.WaitLine(`configuration reloaded`)
	testutil.StartListen(t, base+"/pages/c/", "--echo", "--grant", ed)
	c2 := dial(t, base+"/pages/c/")
	send(t, c2, websocket.MessageText, "ed")
	expect(t, c2, websocket.MessageText, "ed")
	// The reload kept the first grant's registration (its key is still listed).
	c3 := dial(t, base+"/pages/a/y")
	send(t, c3, websocket.MessageText, "still")
	expect(t, c3, websocket.MessageText, "still")
	l.Signal(syscall.SIGTERM)
	l.Wait()
}
