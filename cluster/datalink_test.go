package cluster_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/internal/testkit/streamtest"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// The data link tests run two nodes with data links on (DataListen) over
// an embedded nats-server, each with its own metrics registry, and watch
// NATS with a client of their own: the heartbeats (what a node announces
// of its links) and the data subjects (what still crosses NATS).

// linkHello is the start of a data link's hello (datalink.go's
// linkMagic): written here rather than exported, so that a change of the
// wire protocol shows up as a failing test.
const linkHello = "switchboard-data/1\n"

// linkNode is a node of the data link tests, with its metrics.
type linkNode struct {
	*node
	reg *prometheus.Registry
}

// startLinkNode starts a node whose data links listen on listen and are
// announced as advertise (empty: the bound address).
func startLinkNode(t *testing.T, name, natsURL, listen, advertise string) *linkNode {
	t.Helper()
	reg := prometheus.NewRegistry()
	n := startNode(t, name, natsURL, broker.Limits{}, func(cc *cluster.Config, _ *broker.Config) {
		cc.Registerer, cc.DataListen, cc.DataAdvertise = reg, listen, advertise
	})
	return &linkNode{node: n, reg: reg}
}

// proxiedData returns a data listen address (a port of the node's choosing)
// and a proxy to put in front of it, for a node that advertises the proxy:
// the tests cut its links there. Once the node is up, point the proxy at
// it (pointAt); until then it refuses.
func proxiedData(t *testing.T) (listen string, p *testutil.TCPProxy) {
	return "127.0.0.1:0", testutil.NewTCPProxy(t, "")
}

// pointAt sends the proxy's connections to the node's data links.
func pointAt(t *testing.T, p *testutil.TCPProxy, n *linkNode) {
	t.Helper()
	addr := n.c.DataAddr()
	if addr == "" {
		t.Fatalf("%s has no data address", n.name)
	}
	p.SetTarget(addr)
}

// metric sums the samples of the metric name, only those with label=value
// when label is not empty.
func (n *linkNode) metric(t *testing.T, name, label, value string) float64 {
	t.Helper()
	mfs, err := n.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				match = match || l.GetName() == label && l.GetValue() == value
			}
			if match {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// links is switchboard_cluster_data_links: the node's outbound links up.
func (n *linkNode) links(t *testing.T) float64 {
	return n.metric(t, "switchboard_cluster_data_links", "", "")
}

// linkMsgs is switchboard_cluster_data_messages_total{direction}.
func (n *linkNode) linkMsgs(t *testing.T, direction string) float64 {
	return n.metric(t, "switchboard_cluster_data_messages_total", "direction", direction)
}

// linkErrs is switchboard_cluster_data_link_errors_total{kind}.
func (n *linkNode) linkErrs(t *testing.T, kind string) float64 {
	return n.metric(t, "switchboard_cluster_data_link_errors_total", "kind", kind)
}

// natsWatch is a NATS client of the test's own: it counts the data stream
// messages that cross NATS and keeps each node's latest heartbeat.
type natsWatch struct {
	nc    *nats.Conn
	subs  []*nats.Subscription // of the data subjects
	data  atomic.Int64
	mu    sync.Mutex
	beats map[string]beat
}

// beat is what the test reads of a heartbeat.
type beat struct {
	Node    string `json:"node"`
	Num     uint64 `json:"num"`
	Data    string `json:"data"`
	DataPin string `json:"data_pin"`
}

func watchNATS(t *testing.T, url string) *natsWatch {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	w := &natsWatch{nc: nc, beats: map[string]beat{}}
	for _, subj := range []string{"switchboard.n.*.to.*", "switchboard.n.*.from.*"} {
		sub, err := nc.Subscribe(subj, func(m *nats.Msg) {
			// A stream's first message goes over NATS by design (it must
			// never come twice: stream.go); count the others.
			_, k := binary.Uvarint(m.Data)
			if seq, k2 := binary.Uvarint(m.Data[max(k, 0):]); k <= 0 || k2 <= 0 || seq != 1 {
				w.data.Add(1)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		w.subs = append(w.subs, sub)
	}
	if _, err := nc.Subscribe("switchboard.hb", func(m *nats.Msg) {
		var b beat
		if json.Unmarshal(m.Data, &b) == nil {
			w.mu.Lock()
			w.beats[b.Node] = b
			w.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return w
}

// natsData is how many data stream messages crossed NATS so far, but for
// streams' first messages. It counts every message the server had routed
// before the call: its delivery to this watcher may lag behind the nodes'
// (a message published before a link was back, counted after), so it
// flushes (the server's answer follows what it sent this client before)
// and waits for the subscriptions to have handed their messages on.
func (w *natsWatch) natsData(t *testing.T) int64 {
	t.Helper()
	if err := w.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the NATS watch to count what it got", 10*time.Second, func() bool {
		for _, sub := range w.subs {
			if n, _, err := sub.Pending(); err != nil || n > 0 {
				return false
			}
		}
		return true
	})
	return w.data.Load()
}

// beat waits for a heartbeat of node that announces data links.
func (w *natsWatch) beat(t *testing.T, node string) beat {
	t.Helper()
	var b beat
	testutil.WaitFor(t, node+"'s heartbeat announcing its data links", 10*time.Second, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		b = w.beats[node]
		return b.Data != "" && b.DataPin != ""
	})
	return b
}

// linkedPair starts NATS, a NATS watch, and nodes a and b with data links
// on 127.0.0.1 (listen and advertise per node), and waits until each
// knows the other.
func linkedPair(t *testing.T, a, b [2]string) (*natsWatch, *linkNode, *linkNode) {
	t.Helper()
	ns := startNATS(t, -1)
	w := watchNATS(t, ns.ClientURL())
	na := startLinkNode(t, "la", ns.ClientURL(), a[0], a[1])
	nb := startLinkNode(t, "lb", ns.ClientURL(), b[0], b[1])
	testutil.WaitFor(t, "peers", 20*time.Second, func() bool {
		return len(na.c.Peers()) == 1 && len(nb.c.Peers()) == 1
	})
	return w, na, nb
}

// waitLinks waits until both nodes have their link to the other up.
func waitLinks(t *testing.T, what string, nodes ...*linkNode) {
	t.Helper()
	testutil.WaitFor(t, what, 20*time.Second, func() bool {
		for _, n := range nodes {
			if n.links(t) != 1 {
				return false
			}
		}
		return true
	})
}

// direct is a data link address of its own on 127.0.0.1, announced as bound.
var direct = [2]string{"127.0.0.1:0", ""}

// TestDataLinkCarriesTraffic: with data links up both ways, a numbered
// stream from a client on a through a service on b comes back whole and
// in order, every data message goes over the links (their counters
// grow, each side received what the other sent) and none over NATS.
func TestDataLinkCarriesTraffic(t *testing.T) {
	w, a, b := linkedPair(t, direct, direct)
	waitLinks(t, "links up both ways", a, b)
	// (A link may be refused at first: a node that dials before the
	// other has heard its heartbeat is not a peer there yet.)
	for _, n := range []*linkNode{a, b} {
		if e := n.linkErrs(t, "lost"); e != 0 {
			t.Errorf("%s: %v links lost at start", n.name, e)
		}
	}
	natsBefore := w.natsData(t)
	streamtest.EchoLabelled(t, b.ws+"/dl/", "v1")
	conn := dial(t, a.node, "/dl/x")
	s := streamtest.Stream(t, conn)
	streamtest.WaitProgress(t, []*streamtest.Streamer{s}, 3000)
	conn.CloseNow()
	if d := s.Duplicates(); d != 0 {
		t.Errorf("%d echoes came back twice", d)
	}
	if d := w.natsData(t) - natsBefore; d != 0 {
		t.Errorf("%d data messages crossed NATS with links up both ways", d)
	}
	// Everything one side sent, the other received (the close included).
	testutil.WaitFor(t, "each side to receive what the other sent", 10*time.Second, func() bool {
		return a.linkMsgs(t, "out") == b.linkMsgs(t, "in") && b.linkMsgs(t, "out") == a.linkMsgs(t, "in")
	})
	// 3000 echoes are at least 3000 frames each way, batched: messages
	// both ways, and not more than one per frame and the channel's open
	// and close.
	for _, n := range []*linkNode{a, b} {
		out := n.linkMsgs(t, "out")
		if out < 1 || out > 3000+10 {
			t.Errorf("%s sent %v messages over its link for 3000 echoes", n.name, out)
		}
		if n.links(t) != 1 || n.linkErrs(t, "lost") != 0 {
			t.Errorf("%s: links %v, lost %v: the link should have stayed up", n.name, n.links(t), n.linkErrs(t, "lost"))
		}
	}
}

// TestDataLinkRefusesStrangers: what a node announces in its heartbeat
// (address, certificate pin, number) is what it answers with, and a
// connection to its data address that is not a live peer with the
// certificate that peer announced is refused and closed, counted as
// refused, while the real links and cross-node traffic go on.
func TestDataLinkRefusesStrangers(t *testing.T) {
	w, a, b := linkedPair(t, direct, direct)
	waitLinks(t, "links up both ways", a, b)
	ba, bb := w.beat(t, "la"), w.beat(t, "lb")
	if ba.Num != a.c.NodeNum() || bb.Num != b.c.NodeNum() {
		t.Fatalf("heartbeats announce node numbers %d and %d, want %d and %d", ba.Num, bb.Num, a.c.NodeNum(), b.c.NodeNum())
	}
	if host, _, err := net.SplitHostPort(bb.Data); err != nil || host != "127.0.0.1" || strings.HasSuffix(bb.Data, ":0") {
		t.Fatalf("b announces data address %q: want the bound 127.0.0.1 port", bb.Data)
	}
	stranger := selfSigned(t)
	refused := b.linkErrs(t, "refused")
	expectRefused := func(what string) {
		t.Helper()
		refused++
		testutil.WaitFor(t, what+" counted as refused", 10*time.Second, func() bool { return b.linkErrs(t, "refused") == refused })
	}

	// (a) Not TLS at all: closed without an answer.
	raw, err := net.Dial("tcp", bb.Data)
	if err != nil {
		t.Fatal(err)
	}
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := raw.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(raw); isTimeout(err) {
		t.Fatalf("junk: the node did not close the connection: %v", err)
	}
	raw.Close()
	expectRefused("a plain TCP connection sending junk")

	// (b) TLS with a certificate of its own, the hello naming a real peer
	// (a): refused, the certificate is not the one a announced.
	hello := func(num uint64) []byte { return binary.AppendUvarint([]byte(linkHello), num) }
	answer, err := strangerTLS(t, bb, &stranger, hello(ba.Num))
	if len(answer) == 0 || answer[0] != 1 || !strings.Contains(string(answer), "certificate") || isTimeout(err) {
		t.Fatalf("a stranger's certificate posing as node la: answer %q, err %v; want 1 and why, then the close", answer, err)
	}
	expectRefused("a stranger's certificate posing as la")

	// (c) The hello naming a node that is no peer (node numbers are odd).
	answer, err = strangerTLS(t, bb, &stranger, hello(2))
	if len(answer) == 0 || answer[0] != 1 || !strings.Contains(string(answer), "not a live peer") || isTimeout(err) {
		t.Fatalf("an unknown node number: answer %q, err %v; want 1 and why, then the close", answer, err)
	}
	expectRefused("an unknown node number")

	// (d) TLS without a client certificate: the handshake fails.
	answer, err = strangerTLS(t, bb, nil, hello(ba.Num))
	if len(answer) != 0 || err == nil || isTimeout(err) {
		t.Fatalf("no client certificate: answer %q, err %v; want the handshake to fail", answer, err)
	}
	expectRefused("a TLS client without a certificate")

	// (e) TLS, but not the data link protocol.
	answer, err = strangerTLS(t, bb, &stranger, []byte("hello there, this is no link\n"))
	if len(answer) == 0 || answer[0] != 1 || !strings.Contains(string(answer), "not a switchboard data link") || isTimeout(err) {
		t.Fatalf("a wrong hello: answer %q, err %v; want 1 and why, then the close", answer, err)
	}
	expectRefused("a wrong hello")

	// The real links are untouched and carry the traffic.
	natsBefore, outBefore := w.natsData(t), a.linkMsgs(t, "out")
	streamtest.Echo(t, b.ws+"/dl/", "lb")
	c := dial(t, a.node, "/dl/x")
	for _, m := range []string{"one", "two", "three"} {
		if got := roundTrip(t, c, m); got != "lb:"+m {
			t.Fatalf("got %q want %q", got, "lb:"+m)
		}
	}
	if a.links(t) != 1 || b.links(t) != 1 || a.linkErrs(t, "lost")+b.linkErrs(t, "lost") != 0 {
		t.Fatalf("the real links suffered: links %v and %v, lost %v", a.links(t), b.links(t), a.linkErrs(t, "lost")+b.linkErrs(t, "lost"))
	}
	if a.linkMsgs(t, "out") <= outBefore || w.natsData(t) != natsBefore {
		t.Fatalf("traffic after the strangers: %v messages over a's link, %d over NATS", a.linkMsgs(t, "out")-outBefore, w.natsData(t)-natsBefore)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// strangerTLS dials a node's data address with TLS as the node's heartbeat
// describes it (the node must answer with the certificate it pinned
// there), presenting cert (nil: none), writes hello and reads until the
// node closes: it returns what the node answered and the error that ended
// the reading (EOF, or the handshake's).
func strangerTLS(t *testing.T, to beat, cert *tls.Certificate, hello []byte) ([]byte, error) {
	t.Helper()
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, // pinned instead
		VerifyConnection: func(cs tls.ConnectionState) error {
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if hex.EncodeToString(sum[:]) != to.DataPin {
				return errors.New("the node's certificate is not the one its heartbeat pins")
			}
			return nil
		}}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	raw, err := net.Dial("tcp", to.Data)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	conn := tls.Client(raw, cfg)
	if err := conn.Handshake(); err != nil {
		if strings.Contains(err.Error(), "pins") {
			t.Fatal(err)
		}
		return nil, err
	}
	if _, err := conn.Write(hello); err != nil {
		return nil, err
	}
	answer, err := io.ReadAll(conn)
	if err == nil {
		err = io.EOF
	}
	return answer, err
}

// selfSigned makes a certificate nobody announced.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "switchboard node la"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestDataLinkTakesOverFromNATS: the nodes start with their data
// addresses unreachable (the proxies in front refuse), so a stream runs
// over NATS; when the proxies let the links through, the stream moves
// onto them under way with nothing lost, duplicated or reordered, and no
// 1012, and NATS carries no more of it.
func TestDataLinkTakesOverFromNATS(t *testing.T) {
	la, pa := proxiedData(t)
	lb, pb := proxiedData(t)
	pa.SetCut(true)
	pb.SetCut(true)
	w, a, b := linkedPair(t, [2]string{la, pa.Addr()}, [2]string{lb, pb.Addr()})
	pointAt(t, pa, a)
	pointAt(t, pb, b)
	testutil.WaitFor(t, "both nodes to try their links and fail", 20*time.Second, func() bool {
		return a.linkErrs(t, "dial") > 0 && b.linkErrs(t, "dial") > 0
	})
	streamtest.EchoLabelled(t, b.ws+"/dl/", "v1")
	s := streamtest.Stream(t, dial(t, a.node, "/dl/x"))
	streamtest.WaitProgress(t, []*streamtest.Streamer{s}, 500)
	if w.natsData(t) == 0 || a.linkMsgs(t, "out")+b.linkMsgs(t, "out") != 0 || a.links(t)+b.links(t) != 0 {
		t.Fatalf("with the links refused the stream should go over NATS: %d NATS messages, %v link messages, %v links",
			w.natsData(t), a.linkMsgs(t, "out")+b.linkMsgs(t, "out"), a.links(t)+b.links(t))
	}

	pa.SetCut(false)
	pb.SetCut(false)
	waitLinks(t, "links up under traffic", a, b)
	streamtest.WaitProgress(t, []*streamtest.Streamer{s}, 500) // fails on a gap, a reorder or a close
	if a.linkMsgs(t, "out") == 0 || b.linkMsgs(t, "out") == 0 || b.linkMsgs(t, "in") == 0 || a.linkMsgs(t, "in") == 0 {
		t.Fatalf("the stream did not move onto the links: out %v and %v, in %v and %v",
			a.linkMsgs(t, "out"), b.linkMsgs(t, "out"), a.linkMsgs(t, "in"), b.linkMsgs(t, "in"))
	}
	natsBefore, outBefore := w.natsData(t), a.linkMsgs(t, "out")
	streamtest.WaitProgress(t, []*streamtest.Streamer{s}, 1000)
	if d := w.natsData(t) - natsBefore; d != 0 {
		t.Errorf("%d data messages still crossed NATS with the links up", d)
	}
	if a.linkMsgs(t, "out") <= outBefore {
		t.Errorf("a's link carried nothing of the last 1000 echoes")
	}
	if _, _, err := s.Progress(); err != nil {
		t.Fatal(err)
	}
	if d := s.Duplicates(); d != 0 {
		t.Errorf("%d echoes came back twice: a path's messages were taken again", d)
	}
}

// TestDataLinkConfigErrors: data link settings that cannot work are
// refused by cluster.New, saying what to give.
func TestDataLinkConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		listen, advertise, want string
	}{
		{"0.0.0.0:0", "", "--cluster-data-advertise"},
		{"[::]:7000", "", "--cluster-data-advertise"},
		{":7000", "", "--cluster-data-advertise"},
		{"127.0.0.1", "", "data listen address"},
		{"127.0.0.1:0", "nope", "data advertise address"},
		{"", "127.0.0.1:7000", "--cluster-data"},
	} {
		_, err := cluster.New(cluster.Config{URL: "nats://127.0.0.1:1", Node: "x", DataListen: tc.listen, DataAdvertise: tc.advertise})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("listen %q advertise %q: error %v, want one mentioning %s", tc.listen, tc.advertise, err, tc.want)
		}
	}
	if _, err := cluster.New(cluster.Config{URL: "nats://127.0.0.1:1", Node: "x", DataListen: "0.0.0.0:0", DataAdvertise: "10.0.0.1:7000"}); err != nil {
		t.Errorf("every interface with an advertised address: %v", err)
	}
}

// TestDataLinkGreetingFlood: connections that open a node's data address
// and say nothing hold at most 32 places in the handshake; more are closed
// at once and counted as refused, the links up keep carrying traffic, and
// the places are free again when the silent connections go.
func TestDataLinkGreetingFlood(t *testing.T) {
	const places = 32 // datalink.go's maxGreeting
	w, a, b := linkedPair(t, direct, direct)
	waitLinks(t, "links up both ways", a, b)
	bb := w.beat(t, "lb")
	refused := b.linkErrs(t, "refused")
	var silent []net.Conn
	defer func() {
		for _, c := range silent {
			c.Close()
		}
	}()
	for range places {
		c, err := net.Dial("tcp", bb.Data)
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, c)
	}
	const more = 8
	for i := range more {
		c, err := net.Dial("tcp", bb.Data)
		if err != nil {
			t.Fatal(err)
		}
		// Well under the 10 s a connection has for its handshake.
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
		if err == nil || isTimeout(err) {
			t.Fatalf("connection %d past the %d silent ones: read %v, want it closed at once", places+i+1, places, err)
		}
	}
	testutil.WaitFor(t, "the connections past the silent ones counted as refused", 10*time.Second, func() bool {
		return b.linkErrs(t, "refused") == refused+more
	})

	streamtest.Echo(t, b.ws+"/dl/", "lb")
	c := dial(t, a.node, "/dl/x")
	outBefore := a.linkMsgs(t, "out")
	if got := roundTrip(t, c, "during"); got != "lb:during" {
		t.Fatalf("got %q during the flood", got)
	}
	if a.linkMsgs(t, "out") <= outBefore || b.links(t) != 1 {
		t.Fatalf("the links up did not carry the traffic during the flood")
	}

	for _, c := range silent {
		c.Close()
	}
	silent = nil
	testutil.WaitFor(t, "the silent connections' handshakes to fail", 10*time.Second, func() bool {
		return b.linkErrs(t, "refused") == refused+more+places
	})
	// A place is free: a stranger gets as far as the hello again.
	stranger := selfSigned(t)
	answer, err := strangerTLS(t, bb, &stranger, binary.AppendUvarint([]byte(linkHello), 2))
	if len(answer) == 0 || answer[0] != 1 || !strings.Contains(string(answer), "not a live peer") || isTimeout(err) {
		t.Fatalf("after the flood: answer %q, err %v; want the refusal of an unknown node", answer, err)
	}
}
