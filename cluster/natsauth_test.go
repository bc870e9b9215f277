package cluster_test

import (
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/internal/testkit/streamtest"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// debianNATS runs Debian's nats-server with conf, in which PORT stands for
// the client port it gets, until the test ends; it returns the port and a
// function that kills the server.
func debianNATS(t *testing.T, conf string) (int, func()) {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Fatal("Debian's nats-server is not installed: run scripts/install-test-deps.sh (apt-get install nats-server)")
	}
	port := freePort(t)
	file := filepath.Join(t.TempDir(), "nats.conf")
	conf = "listen: 127.0.0.1:" + strconv.Itoa(port) + "\n" + conf
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", file)
	cmd.Stdout, cmd.Stderr = testWriter{t}, testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	kill := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	t.Cleanup(kill)
	testutil.WaitFor(t, "nats-server to listen", 10*time.Second, func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return port, kill
}

// crossNodeEcho starts two nodes with tweak over url, checks that a client
// on the first reaches a service on the second, and returns the nodes.
func crossNodeEcho(t *testing.T, url, scope string, tweak func(*cluster.Config, *broker.Config)) []*node {
	t.Helper()
	a := startNode(t, "a", url, broker.Limits{}, tweak)
	b := startNode(t, "b", url, broker.Limits{}, tweak)
	for _, n := range []*node{a, b} {
		testutil.WaitFor(t, "peers of "+n.name, 15*time.Second, func() bool { return len(n.c.Peers()) == 1 })
	}
	streamtest.Echo(t, b.ws+scope, "b")
	c := dial(t, a, scope+"x")
	for i := 0; i < 20; i++ {
		if got, want := roundTrip(t, c, strconv.Itoa(i)), "b:"+strconv.Itoa(i); got != want {
			t.Fatalf("got %q want %q", got, want)
		}
	}
	return []*node{a, b}
}

// refused starts a node with tweak over url and waits until it reports
// that NATS refused it (in Ready, hence /readyz).
func refused(t *testing.T, url, want string, tweak func(*cluster.Config, *broker.Config)) {
	t.Helper()
	n := startNode(t, "intruder", url, broker.Limits{}, tweak)
	testutil.WaitFor(t, "NATS to refuse a node without the right credentials", 15*time.Second, func() bool {
		err := n.c.Ready()
		return err != nil && strings.Contains(strings.ToLower(err.Error()), want)
	})
	t.Logf("refused: %v", n.c.Ready())
}

func with(f func(*cluster.Config)) func(*cluster.Config, *broker.Config) {
	return func(cc *cluster.Config, _ *broker.Config) { f(cc) }
}

// TestNATSCredentials connects nodes to Debian's nats-server configured
// for each way of authenticating; a node with the wrong credentials is
// refused and says so.
func TestNATSCredentials(t *testing.T) {
	t.Run("user and password", func(t *testing.T) {
		port, _ := debianNATS(t, "authorization { user: switchboard, password: \"s3cret pass\" }\n")
		url := fmt.Sprintf("nats://127.0.0.1:%d", port)
		crossNodeEcho(t, url, "/up/", with(func(c *cluster.Config) { c.User, c.Password = "switchboard", "s3cret pass" }))
		refused(t, url, "authorization", with(func(c *cluster.Config) { c.User, c.Password = "switchboard", "wrong" }))
	})
	t.Run("token", func(t *testing.T) {
		port, _ := debianNATS(t, "authorization { token: \"tok-123456\" }\n")
		url := fmt.Sprintf("nats://127.0.0.1:%d", port)
		crossNodeEcho(t, url, "/tok/", with(func(c *cluster.Config) { c.Token = "tok-123456" }))
		refused(t, url, "authorization", with(func(c *cluster.Config) { c.Token = "tok-654321" }))
	})
	t.Run("nkey", func(t *testing.T) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := kp.PublicKey()
		seed, _ := kp.Seed()
		seedFile := filepath.Join(t.TempDir(), "node.nk")
		if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
			t.Fatal(err)
		}
		port, _ := debianNATS(t, "authorization { users: [ { nkey: "+pub+" } ] }\n")
		url := fmt.Sprintf("nats://127.0.0.1:%d", port)
		crossNodeEcho(t, url, "/nk/", with(func(c *cluster.Config) { c.NKeySeedFile = seedFile }))
		other, _ := nkeys.CreateUser()
		otherSeed, _ := other.Seed()
		otherFile := filepath.Join(t.TempDir(), "other.nk")
		if err := os.WriteFile(otherFile, otherSeed, 0o600); err != nil {
			t.Fatal(err)
		}
		refused(t, url, "authorization", with(func(c *cluster.Config) { c.NKeySeedFile = otherFile }))
	})
	t.Run("creds file", func(t *testing.T) {
		dir := t.TempDir()
		op, _ := nkeys.CreateOperator()
		opPub, _ := op.PublicKey()
		opJWT, err := jwt.NewOperatorClaims(opPub).Encode(op)
		if err != nil {
			t.Fatal(err)
		}
		acct, _ := nkeys.CreateAccount()
		acctPub, _ := acct.PublicKey()
		acctJWT, err := jwt.NewAccountClaims(acctPub).Encode(op)
		if err != nil {
			t.Fatal(err)
		}
		creds := func(name string, signer nkeys.KeyPair) string {
			user, _ := nkeys.CreateUser()
			userPub, _ := user.PublicKey()
			userJWT, err := jwt.NewUserClaims(userPub).Encode(signer)
			if err != nil {
				t.Fatal(err)
			}
			seed, _ := user.Seed()
			b, err := jwt.FormatUserConfig(userJWT, seed)
			if err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(dir, name+".creds")
			if err := os.WriteFile(f, b, 0o600); err != nil {
				t.Fatal(err)
			}
			return f
		}
		opFile := filepath.Join(dir, "operator.jwt")
		if err := os.WriteFile(opFile, []byte(opJWT), 0o600); err != nil {
			t.Fatal(err)
		}
		port, _ := debianNATS(t, "operator: \""+opFile+"\"\nresolver: MEMORY\nresolver_preload: { "+acctPub+": \""+acctJWT+"\" }\n")
		url := fmt.Sprintf("nats://127.0.0.1:%d", port)
		good := creds("node", acct)
		crossNodeEcho(t, url, "/cr/", with(func(c *cluster.Config) { c.CredsFile = good }))
		stranger, _ := nkeys.CreateAccount() // an account the server does not know
		refused(t, url, "authorization", with(func(c *cluster.Config) { c.CredsFile = creds("stranger", stranger) }))
	})
}

// TestNATSTLS connects nodes to Debian's nats-server over TLS with client
// certificates (verify): a node without one is refused.
func TestNATSTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t)
	f := func(n string) string { return filepath.Join(dir, n) }
	ca.Issue(t, 2, f("server.pem"), f("server.key"), x509.ExtKeyUsageServerAuth)
	ca.Issue(t, 3, f("node.pem"), f("node.key"), x509.ExtKeyUsageClientAuth)
	port, _ := debianNATS(t, fmt.Sprintf("tls { cert_file: %q, key_file: %q, ca_file: %q, verify: true, timeout: 5 }\n",
		f("server.pem"), f("server.key"), ca.PEMFile))
	url := fmt.Sprintf("tls://127.0.0.1:%d", port)
	crossNodeEcho(t, url, "/tls/", with(func(c *cluster.Config) {
		c.CAFile, c.CertFile, c.KeyFile = ca.PEMFile, f("node.pem"), f("node.key")
	}))
	refused(t, url, "tls", with(func(c *cluster.Config) { c.CAFile = ca.PEMFile }))
}

// TestNATSSeveralURLs: a node given the URLs of two routed Debian
// nats-servers is connected to the first; when it dies, the node fails
// over to the second and still reaches a service on another node.
func TestNATSSeveralURLs(t *testing.T) {
	routeA := freePort(t)
	portA, killA := debianNATS(t, fmt.Sprintf("cluster { name: sb, listen: 127.0.0.1:%d }\n", routeA))
	urlA := fmt.Sprintf("nats://127.0.0.1:%d", portA)
	a := startNode(t, "a", urlA+",nats://127.0.0.1:1", broker.Limits{}) // the second server is not up yet: a is on A
	testutil.WaitFor(t, "node a on NATS", 10*time.Second, func() bool { return a.c.Ready() == nil })
	routeB := freePort(t)
	portB, _ := debianNATS(t, fmt.Sprintf("cluster { name: sb, listen: 127.0.0.1:%d, routes: [ \"nats-route://127.0.0.1:%d\" ] }\n", routeB, routeA))
	urlB := fmt.Sprintf("nats://127.0.0.1:%d", portB)
	b := startNode(t, "b", urlB, broker.Limits{})
	for _, n := range []*node{a, b} {
		testutil.WaitFor(t, "peers of "+n.name, 15*time.Second, func() bool { return len(n.c.Peers()) == 1 })
	}
	streamtest.Echo(t, b.ws+"/two/", "b")
	if got := roundTrip(t, dial(t, a, "/two/x"), "hi"); got != "b:hi" {
		t.Fatalf("got %q", got)
	}
	killA()
	// a learnt B from A (gossip) and from nothing else: it fails over.
	testutil.WaitFor(t, "node a back on NATS", 15*time.Second, func() bool { return a.c.Ready() == nil })
	if got := roundTrip(t, dial(t, a, "/two/y"), "again"); got != "b:again" {
		t.Fatalf("after failover: got %q", got)
	}
}
