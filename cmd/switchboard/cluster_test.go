package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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

// startDebianNATS starts Debian's nats-server on a free loopback port with
// conf as the rest of its config file ("" for none), and returns its
// host:port once it listens.
func startDebianNATS(t *testing.T, conf string) string {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Fatal("Debian's nats-server is not installed: run scripts/install-test-deps.sh (apt-get install nats-server)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	file := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(file, []byte("listen: "+addr+"\n"+conf+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ns := exec.Command(bin, "-c", file)
	if err := ns.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Process.Kill(); _ = ns.Wait() })
	testutil.Eventually(t, "nats-server to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr
}

// dialAcross dials a service through another node than its own: the node
// learns of the service over NATS, so it is dialed until it does.
func dialAcross(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	var c *websocket.Conn
	testutil.Eventually(t, "the node to know the service of "+url, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		c, _, err = websocket.Dial(ctx, url, nil)
		return err == nil
	})
	return c
}

// TestProductionClusterWithNATSToken: two production brokers (config
// file, no --dev) cluster over Debian's nats-server that requires a
// token, given with --cluster-token-file; a client on one reaches a
// service on the other. A broker with the wrong token is not ready and
// says why in /readyz.
func TestProductionClusterWithNATSToken(t *testing.T) {
	dir := t.TempDir()
	url := "nats://" + startDebianNATS(t, `authorization { token: "nats-token-5f3a" }`)
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
	c := dialAcross(t, a.ws+"/svc/echo/x")
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
