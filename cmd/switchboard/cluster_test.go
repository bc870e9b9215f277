package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// readyz returns a broker's /readyz status and body.
func readyz(base string) (int, string) {
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestProductionClusterWithNATSToken: two production brokers (config
// file, no --dev) cluster over Debian's nats-server that requires a
// token, given with --cluster-token-file; a client on one reaches a
// service on the other. A broker with the wrong token is not ready and
// says why in /readyz.
func TestProductionClusterWithNATSToken(t *testing.T) {
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Fatal("Debian's nats-server is not installed: run scripts/install-test-deps.sh (apt-get install nats-server)")
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := filepath.Join(dir, "nats.conf")
	os.WriteFile(conf, []byte("listen: 127.0.0.1:"+strconv.Itoa(port)+"\nauthorization { token: \"nats-token-5f3a\" }\n"), 0o600)
	ns := exec.Command(bin, "-c", conf)
	if err := ns.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Process.Kill(); _ = ns.Wait() })
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	good, bad := filepath.Join(dir, "token"), filepath.Join(dir, "wrong")
	os.WriteFile(good, []byte("nats-token-5f3a\n"), 0o600)
	os.WriteFile(bad, []byte("nats-token-0000\n"), 0o600)

	a := startProdBroker(t, "--node-name", "a", "--cluster", url, "--cluster-token-file", good)
	b := startProdBroker(t, "--node-name", "b", "--cluster", url, "--cluster-token-file", good)
	testutil.Eventually(t, "both brokers ready", func() bool {
		ca, _ := readyz(a.http)
		cb, _ := readyz(b.http)
		return ca == 200 && cb == 200
	})
	testutil.StartListen(t, b.ws+"/svc/echo/", "--echo", "--credential", b.secret)
	var c *websocket.Conn
	testutil.Eventually(t, "node a to know b's service", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		c, _, err = websocket.Dial(ctx, a.ws+"/svc/echo/x", nil)
		return err == nil
	})
	defer c.CloseNow()
	send(t, c, websocket.MessageText, "across")
	expect(t, c, websocket.MessageText, "across")

	x := startProdBroker(t, "--node-name", "x", "--cluster", url, "--cluster-token-file", bad)
	testutil.Eventually(t, "the broker with the wrong token to say why", func() bool {
		code, body := readyz(x.http)
		return code == 503 && strings.Contains(strings.ToLower(body), "authorization violation")
	})
}

// TestClusterDataNeedsCluster: data link flags without --cluster are a
// usage error that names --cluster.
func TestClusterDataNeedsCluster(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--cluster-data", "127.0.0.1:0"},
		{"serve", "--cluster-data-advertise", "127.0.0.1:7000"},
	} {
		if _, stderr, code := testutil.Run(t, "", nil, args...); code != 2 || !strings.Contains(stderr, "needs --cluster") {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message that it needs --cluster", args, code, stderr)
		}
	}
}
