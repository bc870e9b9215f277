package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// TestClusterReloadReachesEveryNode: two production brokers (config file,
// no --dev) cluster over Debian's nats-server, each with its own copy of
// the same config file. A credential added to both files and reloaded on
// node a only (`switchboard reload`) works on node b at once. Node b then
// goes off NATS (its connection runs through a proxy that is cut), the
// files change again and a reloads while b cannot hear it: when b is back
// it learns of the newer reload from a's heartbeat and re-reads its file.
// Last, b reloads a file a does not have: both report the mismatch.
func TestClusterReloadReachesEveryNode(t *testing.T) {
	natsAddr := startDebianNATS(t, "")
	proxy := testutil.NewTCPProxy(t, natsAddr) // node b's way to NATS

	creds := map[string]string{} // name → secret
	var entries []string
	addCredential := func(name string) {
		secret, hash, err := config.NewCredential()
		if err != nil {
			t.Fatal(err)
		}
		creds[name] = secret
		entries = append(entries, fmt.Sprintf(`{"name": %q, "credential_hash": %q, "scopes": ["/%s/"]}`, name, hash, name))
	}
	body := func() string {
		s := fmt.Sprintf(`{"admin_token": %q, "credentials": [`, testAdminToken)
		for i, e := range entries {
			if i > 0 {
				s += ", "
			}
			s += e
		}
		return s + "]}"
	}
	write := func(path string) string { // returns the digest of what it wrote
		if err := os.WriteFile(path, []byte(body()), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		return f.ReloadDigest()
	}
	addCredential("svc")
	cfgA, cfgB := filepath.Join(t.TempDir(), "config.json"), filepath.Join(t.TempDir(), "config.json")
	write(cfgA)
	write(cfgB)
	a := startClusterBroker(t, cfgA, "a", "nats://"+natsAddr)
	b := startClusterBroker(t, cfgB, "b", "nats://"+proxy.Addr())
	testutil.Eventually(t, "each node to see the other", func() bool {
		return metric(a.http, "switchboard_cluster_peers") == "1" && metric(b.http, "switchboard_cluster_peers") == "1"
	})
	reload := func(node *prodBroker) {
		t.Helper()
		if code := testutil.Start(t, "reload", "--broker", node.http, "--admin-token", testAdminToken).Wait(); code != 0 {
			t.Fatalf("switchboard reload exited %d", code)
		}
	}
	reachable := func(name string) { // a service with the credential on b, a client on a
		t.Helper()
		testutil.StartListen(t, b.ws+"/"+name+"/echo/", "--echo", "--credential", creds[name])
		var c *websocket.Conn
		testutil.Eventually(t, "node a to reach the service on b", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var err error
			c, _, err = websocket.Dial(ctx, a.ws+"/"+name+"/echo/x", nil)
			return err == nil
		})
		defer c.CloseNow()
		send(t, c, websocket.MessageText, name)
		expect(t, c, websocket.MessageText, name)
	}

	// 1. Reloaded on a, applied on b.
	addCredential("ops")
	write(cfgA)
	d1 := write(cfgB)
	reload(a)
	b.p.WaitLine(`msg="configuration reloaded because another node reloaded".* by=a digest=` + d1)
	reachable("ops")

	// 2. b misses the reload, and learns of it when it is back.
	proxy.SetCut(true)
	testutil.Eventually(t, "node b to notice it is off NATS", func() bool { code, _ := readyz(b.http); return code == 503 })
	addCredential("ops2")
	write(cfgA)
	d2 := write(cfgB)
	reload(a)
	for _, l := range b.p.Lines() {
		if regexp.MustCompile(`digest=` + d2).MatchString(l) {
			t.Fatalf("node b reloaded while off NATS: %s", l)
		}
	}
	proxy.SetCut(false)
	b.p.WaitLine(`msg="configuration reloaded because another node reloaded".* by=a digest=` + d2)
	reachable("ops2")
	testutil.Eventually(t, "no mismatch once b caught up", func() bool {
		return metric(a.http, "switchboard_cluster_config_mismatch_peers") == "0" && metric(b.http, "switchboard_cluster_config_mismatch_peers") == "0"
	})
	for _, node := range []*prodBroker{a, b} {
		for _, l := range node.p.Lines() {
			if regexp.MustCompile(`msg="another node runs a different configuration`).MatchString(l) {
				t.Fatalf("a mismatch was reported while the nodes only caught up: %s", l)
			}
		}
	}

	// 3. b reloads a file that a does not have: both say so.
	addCredential("only-b")
	write(cfgB)
	reload(b)
	a.p.WaitLine(`level=WARN msg="another node runs a different configuration.* peer=b`)
	testutil.Eventually(t, "the mismatch in both nodes' metrics", func() bool {
		return metric(a.http, "switchboard_cluster_config_mismatch_peers") == "1" && metric(b.http, "switchboard_cluster_config_mismatch_peers") == "1"
	})
}

// startClusterBroker runs a production broker on cfg as cluster node name.
func startClusterBroker(t *testing.T, cfg, name, natsURL string) *prodBroker {
	t.Helper()
	p, base := testutil.StartServe(t, "--config", cfg, "--node-name", name, "--cluster", natsURL)
	return &prodBroker{p: p, ws: testutil.WS(base), http: base, cfg: cfg}
}

// metric reads one unlabelled metric of a production broker ("" if absent).
func metric(base, name string) string {
	req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(data)
	if m == nil {
		return ""
	}
	return string(m[1])
}
