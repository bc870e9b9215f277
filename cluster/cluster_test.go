package cluster_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/internal/testkit/streamtest"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/server"
)

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// natsCluster starts n routed nats-server instances in process (the first
// is the seed the others route to; gossip completes the mesh) and returns
// their client URLs.
func natsCluster(t testing.TB, n int) ([]string, []*natsserver.Server) {
	t.Helper()
	var urls []string
	var servers []*natsserver.Server
	var seed *url.URL
	for i := 0; i < n; i++ {
		opts := &natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
			Cluster: natsserver.ClusterOpts{Name: "sb", Host: "127.0.0.1", Port: -1}}
		if seed != nil {
			opts.Routes = []*url.URL{seed}
		}
		s := runNATS(t, opts)
		if seed == nil {
			seed = &url.URL{Scheme: "nats", Host: s.ClusterAddr().String()}
		}
		servers = append(servers, s)
		urls = append(urls, s.ClientURL())
	}
	for _, s := range servers {
		testutil.WaitFor(t, "NATS routes", 10*time.Second, func() bool { return s.NumRoutes() >= n-1 })
	}
	return urls, servers
}

// startNATS starts a single nats-server on port (-1: any).
func startNATS(t testing.TB, port int) *natsserver.Server {
	return runNATS(t, &natsserver.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
}

func runNATS(t testing.TB, opts *natsserver.Options) *natsserver.Server {
	t.Helper()
	s, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// node is one broker of the cluster, on its own port.
type node struct {
	name string
	b    *broker.Broker
	c    *cluster.Cluster
	srv  *httptest.Server
	ws   string
	stop func() // graceful
	kill func() // abrupt: NATS link and client connections cut at once
}

// startNode starts a broker clustered over natsURL; tweaks adjust its
// configurations before they are used.
// A tweak of type func(*cluster.Cluster) runs before the cluster starts.
func startNode(t testing.TB, name, natsURL string, limits broker.Limits, tweaks ...any) *node {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)
	}
	cc := cluster.Config{URL: natsURL, Node: name, Logger: log, HeartbeatInterval: 200 * time.Millisecond,
		NodeTimeout: nodeTimeout()}
	if dataLinks {
		cc.DataListen = "127.0.0.1:0"
	}
	bc := broker.Config{Logger: log, Node: name, Limits: limits, Authorize: (&config.File{}).Authorizer(true)}
	var before []func(*cluster.Cluster)
	for _, tw := range tweaks {
		switch f := tw.(type) {
		case func(*cluster.Config, *broker.Config):
			f(&cc, &bc)
		case func(*cluster.Cluster):
			before = append(before, f)
		default:
			t.Fatalf("startNode: unknown tweak %T", tw)
		}
	}
	c, err := cluster.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	bc.Cluster, bc.NodeNum = c, c.NodeNum()
	b := broker.New(bc)
	for _, f := range before {
		f(c)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	s := server.New(server.Config{Broker: b, Logger: log, Dev: true, Ready: c.Ready})
	srv := httptest.NewServer(s)
	n := &node{name: name, b: b, c: c, srv: srv, ws: "ws" + strings.TrimPrefix(srv.URL, "http")}
	var once sync.Once
	n.stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = b.Shutdown(ctx)
			_ = c.Shutdown(ctx)
			srv.CloseClientConnections()
			srv.Close()
		})
	}
	n.kill = func() {
		once.Do(func() {
			_ = c.Shutdown(context.Background())
			srv.CloseClientConnections()
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_ = b.Shutdown(ctx)
			srv.Close()
		})
	}
	t.Cleanup(n.stop)
	return n
}

// dataLinks turns on data links in every node startNode starts.
var dataLinks = os.Getenv("SWITCHBOARD_TEST_DATA_LINKS") != ""

// nodeTimeout is generous: a loaded machine delays heartbeats, and the race
// detector more so.
func nodeTimeout() time.Duration {
	if testutil.RaceEnabled {
		return 10 * time.Second
	}
	return 2 * time.Second
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// threeNodes starts a 3-server NATS cluster and a broker on each server,
// and waits until every node knows the other two.
func threeNodes(t testing.TB, limits broker.Limits) []*node {
	urls, _ := natsCluster(t, 3)
	var nodes []*node
	for i, u := range urls {
		nodes = append(nodes, startNode(t, fmt.Sprintf("n%d", i+1), u, limits))
	}
	for _, n := range nodes {
		testutil.WaitFor(t, "peers", 10*time.Second, func() bool { return len(n.c.Peers()) == 2 })
	}
	return nodes
}

func dial(t testing.TB, n *node, path string) *websocket.Conn {
	t.Helper()
	var c *websocket.Conn
	testutil.WaitFor(t, "dial "+path+" on "+n.name, 10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		c, _, err = websocket.Dial(ctx, n.ws+path, nil)
		return err == nil
	})
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func roundTrip(t testing.TB, c *websocket.Conn, msg string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	_, p, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(p)
}

func TestClientOnNode1ServiceOnNode3(t *testing.T) {
	nodes := threeNodes(t, broker.Limits{})
	streamtest.Echo(t, nodes[2].ws+"/echo/", "n3")
	c := dial(t, nodes[0], "/echo/x")
	for i := 0; i < 100; i++ {
		want := fmt.Sprintf("n3:m%d", i)
		if got := roundTrip(t, c, fmt.Sprintf("m%d", i)); got != want {
			t.Fatalf("got %q want %q", got, want)
		}
	}
}

func TestPushAndClientListAcrossNodes(t *testing.T) {
	nodes := threeNodes(t, broker.Limits{})
	l := streamtest.Echo(t, nodes[1].ws+"/room/", "")
	var clients []*websocket.Conn
	for i, n := range nodes {
		c := dial(t, n, fmt.Sprintf("/room/c%d", i))
		roundTrip(t, c, "hello") // the channel is open end to end
		clients = append(clients, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := l.Clients(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		t.Fatalf("client list has %d entries, want 3: %+v", len(list), list)
	}
	if err := l.Push(ctx, "", websocket.MessageText, []byte("to everyone")); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		_, p, err := c.Read(ctx)
		if err != nil || string(p) != "to everyone" {
			t.Fatalf("client on node %d: %q %v", i+1, p, err)
		}
	}
}

// TestDebianNATSServer runs the cluster over Debian's nats-server binary,
// started by the test, with three nodes.
func TestDebianNATSServer(t *testing.T) {
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Fatal("Debian's nats-server is not installed: run scripts/install-test-deps.sh (apt-get install nats-server)")
	}
	port := freePort(t)
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	testutil.WaitFor(t, "nats-server to listen", 10*time.Second, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	var nodes []*node
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, startNode(t, fmt.Sprintf("d%d", i), url, broker.Limits{}))
	}
	for _, n := range nodes {
		testutil.WaitFor(t, "peers", 10*time.Second, func() bool { return len(n.c.Peers()) == 2 })
	}
	streamtest.Echo(t, nodes[2].ws+"/deb/", "d3")
	c := dial(t, nodes[0], "/deb/x")
	for i := 0; i < 50; i++ {
		if got, want := roundTrip(t, c, strconv.Itoa(i)), "d3:"+strconv.Itoa(i); got != want {
			t.Fatalf("got %q want %q", got, want)
		}
	}
}
