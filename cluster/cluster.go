// Package cluster connects Switchboard brokers over NATS so that any node
// reaches any service: a client on one node talks to an instance attached
// to another, push and the client list span the cluster, and handover works
// across nodes. With Config.DataListen the data streams between two nodes
// go over a direct link instead (datalink.go), and NATS carries membership
// and control. It implements broker.Cluster and knows nothing of HTTP or
// flags.
//
// Subjects (PREFIX defaults to "switchboard"; see docs/CLUSTER.md):
//
//	PREFIX.hb                      every node, every HeartbeatInterval: its name, number, instances and data link address and pin (JSON)
//	PREFIX.inst.up / .down         an instance attached to / detached from a node (JSON), ahead of the next heartbeat
//	PREFIX.n.NODE.to.INSTANCE      service-protocol frames for a real instance on NODE, from proxies elsewhere
//	PREFIX.n.NODE.from.INSTANCE    frames from INSTANCE for channels whose clients are on NODE
//	                               (both over a direct data link instead when NODE has one: datalink.go)
//	PREFIX.n.NODE.resync.INSTANCE  frames toward INSTANCE were lost: resend (empty)
//	PREFIX.n.NODE.cut.INSTANCE     INSTANCE broke the protocol elsewhere: end its link (uvarint code + reason)
//	PREFIX.revocations             chooser-token revocations (JSON list): one made here, or all to a node that joins
//	PREFIX.reload                  a node's configuration was reloaded (JSON: node, generation, digest): re-read yours
//	PREFIX.push                    a Push frame for the scope named before it (stamped like data, then uvarint length + scope)
//
// The data subjects carry the service protocol's own frames, batched as the
// link writer batches them, so a relayed message costs one NATS message per
// batch and no re-encoding.
package cluster

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/apps"
	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/scope"
)

// Config configures a cluster node.
type Config struct {
	// URL of NATS, e.g. nats://127.0.0.1:4222; comma-separated for the
	// servers of a NATS cluster (the client picks one, fails over to the
	// others, and learns the rest of the cluster from the server). tls://
	// URLs, or a CAFile, make the connection TLS.
	URL string
	// CAFile is a PEM file of the CAs that sign the NATS servers'
	// certificates (TLS); empty: the system's roots.
	CAFile string
	// CertFile and KeyFile are this node's client certificate and key,
	// for a NATS server that verifies clients (TLS verify).
	CertFile, KeyFile string
	// At most one way to authenticate to NATS: User and Password, Token,
	// NKeySeedFile (a file holding a user nkey seed, SU…), or CredsFile (a
	// .creds file: user JWT and seed, for NATS in operator mode). Empty:
	// none, or whatever the URL carries (nats://user:pass@host).
	User, Password string
	Token          string
	NKeySeedFile   string
	CredsFile      string
	// Node is this node's name, unique in the cluster.
	Node string
	// Prefix of every subject. Default "switchboard".
	Prefix string
	// HeartbeatInterval is how often a node announces itself. Default 1 s.
	HeartbeatInterval time.Duration
	// NodeTimeout is how long a silent node is trusted; after it the node
	// is lost: its instances' channels wait for a handover. Default 4 s.
	NodeTimeout time.Duration
	// DataListen (host:port) turns on data links (datalink.go): peers
	// dial this address to send this node their data streams directly
	// instead of over NATS. DataAdvertise is the address they dial when
	// it is not DataListen's (which must then name one interface). Empty:
	// data goes over NATS.
	DataListen, DataAdvertise string
	Logger                    *slog.Logger
	Registerer                prometheus.Registerer
}

// Cluster is one node's membership in a cluster.
type Cluster struct {
	cfg    Config
	num    uint64
	log    *slog.Logger
	b      broker.Node // set by Bind, from broker.New
	nc     *nats.Conn
	subs   []*nats.Subscription
	stop   chan struct{}
	wg     sync.WaitGroup
	closed sync.Once

	connected prometheus.Gauge
	peersG    prometheus.Gauge
	lost      prometheus.Counter
	msgs      *prometheus.CounterVec
	msgsIn    prometheus.Counter // msgs{direction="in"}, looked up once
	msgsOut   prometheus.Counter
	pubErrs   prometheus.Counter
	asyncErrs prometheus.Counter

	cfgMismatch prometheus.Gauge

	mu    sync.Mutex
	peers map[uint64]*peer // guarded by mu
	err   error            // why the node is not ready; guarded by mu
	down  time.Time        // when the NATS link broke; guarded by mu

	// Configuration reloads (reload.go); guarded by mu.
	reload    func(context.Context) (string, error) // nil: reloads are not shared
	cfgDigest string                                // the configuration this node applies
	cfgGen    uint64                                // generation of the last reload applied here
	cfgSeen   uint64                                // newest generation heard of (or asked for)
	reloads   chan reloadReq

	revs *apps.Revocations // shared with the other nodes; set before Start

	// memMu orders this node's membership messages (heartbeat, inst.up,
	// inst.down) as its broker's state changed: a heartbeat's list is
	// taken and published under it, so no beat listing the instances of a
	// moment ago goes out after the up or down that changed them.
	memMu sync.Mutex
	// members receives every node's membership messages through one
	// channel, in the order NATS delivers them (per sender, the order it
	// published), handled one at a time by the membership goroutine. With
	// a goroutine per subject an inst.down could be handled before the
	// heartbeat published ahead of it, and that stale beat would attach the
	// dead instance again (or detach a live one, dropping what it sent).
	members chan *nats.Msg

	subjects sync.Map // streamKey → its subject, built once

	dp *dataPlane // data links; nil without Config.DataListen

	seqMu     sync.Mutex
	sendSeq   map[streamKey]uint64    // last sequence number sent per data stream; guarded by seqMu
	inStreams map[streamKey]*inStream // streams received; guarded by seqMu
}

// streamKey names one ordered stream of data-subject messages: to or from
// one instance, between this node and node.
type streamKey struct {
	node, inst uint64
	to         bool
}

type peer struct {
	name   string
	seen   time.Time
	pin    string // its data links' certificate (SHA-256), from its heartbeat
	gen    uint64 // its configuration generation (reload.go)
	digest string // and digest
	warned bool   // its digest differs from ours and that was logged
}

type heartbeat struct {
	Node      string                `json:"node"`
	Num       uint64                `json:"num"`
	Instances []broker.InstanceInfo `json:"instances"`
	// ConfigGen and ConfigDigest describe the node's configuration
	// (reload.go).
	ConfigGen    uint64 `json:"config_gen,omitempty"`
	ConfigDigest string `json:"config_digest,omitempty"`
	// Data and DataPin are where to dial the node's data links and the
	// SHA-256 (hex) of the certificate it answers with (datalink.go).
	Data    string `json:"data,omitempty"`
	DataPin string `json:"data_pin,omitempty"`
}

// reconnectBuffer is how much the NATS client holds while disconnected.
// Past it publishes fail; the receivers see the gap in the stream's
// sequence numbers and react (resend, or close with 1012).
const reconnectBuffer = 32 << 20

// membersBuffer is how many membership messages may wait for the
// membership goroutine; past it NATS drops them as a slow consumer (the
// next heartbeat repairs what was missed).
const membersBuffer = 8192

// NodeNum derives a node number from its name (23 bits, never 0). Names
// whose numbers collide are reported as an error by Start's peers.
func NodeNum(name string) uint64 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return uint64(h.Sum32()&(1<<23-1)) | 1
}

// New prepares a node; pass it as broker.Config.Cluster with
// NodeNum: c.NodeNum(), then call Start once broker.New has returned.
func New(cfg Config) (*Cluster, error) {
	if cfg.URL == "" {
		return nil, errors.New("cluster: no NATS URL")
	}
	if cfg.Node == "" {
		return nil, errors.New("cluster: a node name is required (--node-name)")
	}
	auths := 0
	for _, set := range []bool{cfg.User != "" || cfg.Password != "", cfg.Token != "", cfg.NKeySeedFile != "", cfg.CredsFile != ""} {
		if set {
			auths++
		}
	}
	if auths > 1 {
		return nil, errors.New("cluster: give one way to authenticate to NATS: user and password, token, nkey or creds file")
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("cluster: a client certificate for NATS needs both its certificate and key files")
	}
	if strings.ContainsAny(cfg.Node, " .*>") {
		return nil, fmt.Errorf("cluster: node name %q may not contain spaces, dots, * or >", cfg.Node)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "switchboard"
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = time.Second
	}
	if cfg.NodeTimeout <= 0 {
		cfg.NodeTimeout = 4 * cfg.HeartbeatInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	c := &Cluster{cfg: cfg, num: NodeNum(cfg.Node), log: cfg.Logger.With("node", cfg.Node),
		stop: make(chan struct{}), members: make(chan *nats.Msg, membersBuffer), reloads: make(chan reloadReq, 1), peers: make(map[uint64]*peer), err: errors.New("not connected to NATS yet"),
		sendSeq: make(map[streamKey]uint64), inStreams: make(map[streamKey]*inStream)}
	c.connected = prometheus.NewGauge(prometheus.GaugeOpts{Name: "switchboard_cluster_connected", Help: "1 when the node is connected to NATS."})
	c.peersG = prometheus.NewGauge(prometheus.GaugeOpts{Name: "switchboard_cluster_peers", Help: "Other nodes heard from within the node timeout."})
	c.lost = prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_cluster_nodes_lost_total", Help: "Nodes declared lost after the node timeout."})
	c.msgs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_cluster_messages_total", Help: "NATS messages sent and received, by direction."}, []string{"direction"})
	c.pubErrs = prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_cluster_publish_errors_total", Help: "NATS publishes that failed (e.g. while disconnected)."})
	c.asyncErrs = prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_cluster_async_errors_total", Help: "Errors NATS reported asynchronously (slow consumer: messages dropped)."})
	c.cfgMismatch = newMismatchGauge()
	c.msgsIn, c.msgsOut = c.msgs.WithLabelValues("in"), c.msgs.WithLabelValues("out")
	cfg.Registerer.MustRegister(c.connected, c.peersG, c.lost, c.msgs, c.pubErrs, c.asyncErrs, c.cfgMismatch)
	if cfg.DataListen != "" {
		dp, err := newDataPlane(c, cfg.DataListen, cfg.DataAdvertise)
		if err != nil {
			return nil, err
		}
		c.dp = dp
	} else if cfg.DataAdvertise != "" {
		return nil, errors.New("cluster: a data advertise address needs a data listen address (--cluster-data)")
	}
	return c, nil
}

// NodeNum is this node's number, for broker.Config.NodeNum.
func (c *Cluster) NodeNum() uint64 { return c.num }

func (c *Cluster) subject(parts ...string) string {
	return c.cfg.Prefix + "." + strings.Join(parts, ".")
}

// Bind implements broker.Cluster: broker.New hands over its side.
func (c *Cluster) Bind(n broker.Node) { c.b = n }

// Start connects to NATS (retrying in the background while it is down),
// subscribes, and starts the heartbeat. The broker must exist (Bind).
func (c *Cluster) Start() error {
	if c.b == nil {
		return errors.New("cluster: Start before broker.New bound the cluster")
	}
	opts, err := c.authOptions()
	if err != nil {
		return err
	}
	if c.dp != nil {
		if err := c.dp.start(); err != nil {
			return err
		}
	}
	nc, err := nats.Connect(c.cfg.URL, append(opts,
		nats.Name("switchboard "+c.cfg.Node),
		nats.NoEcho(),
		nats.SetCustomDialer(newNATSDialer()),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectBufSize(reconnectBuffer), // frames published during an outage go out, in order, when NATS is back
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			c.log.Warn("NATS error", "subject", subj, "err", err) // e.g. a slow consumer: messages dropped
			c.asyncErrs.Inc()
		}),
		nats.ConnectHandler(func(nc *nats.Conn) { c.setConnected(nc, nil) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { c.setConnected(nc, nil) }),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err == nil {
				err = errors.New("disconnected")
			}
			c.setConnected(nc, fmt.Errorf("NATS: %w", err))
		}),
	)...)
	if err != nil {
		c.closeData()
		return fmt.Errorf("cluster: connect to NATS at %s: %w", c.cfg.URL, err)
	}
	c.mu.Lock()
	c.nc = nc
	c.mu.Unlock()
	self := strconv.FormatUint(c.num, 10)
	for _, subj := range []string{c.subject("hb"), c.subject("inst", "up"), c.subject("inst", "down")} {
		s, err := nc.ChanSubscribe(subj, c.members)
		if err != nil {
			nc.Close()
			c.closeData()
			return fmt.Errorf("cluster: subscribe %s: %w", subj, err)
		}
		c.subs = append(c.subs, s)
	}
	for subj, h := range map[string]nats.MsgHandler{
		c.subject("n", self, "to", "*"):     c.onTo,
		c.subject("n", self, "from", "*"):   c.onFrom,
		c.subject("push"):                   c.onPush,
		c.subject("n", self, "resync", "*"): c.onResync,
		c.subject("n", self, "cut", "*"):    c.onCut,
		c.subject("revocations"):            c.onRevocations,
		c.subject("reload"):                 c.onReload,
	} {
		s, err := nc.Subscribe(subj, h)
		if err != nil {
			nc.Close()
			c.closeData()
			return fmt.Errorf("cluster: subscribe %s: %w", subj, err)
		}
		s.SetPendingLimits(-1, 256<<20)
		c.subs = append(c.subs, s)
	}
	if nc.IsConnected() {
		c.setConnected(nc, nil)
	} else {
		c.log.Warn("NATS not reachable yet; serving local traffic and retrying", "url", c.cfg.URL)
	}
	c.wg.Add(3)
	go c.loop()
	go c.membership()
	go c.reloader()
	return nil
}

// membership handles heartbeats, inst.up and inst.down one at a time, in
// the order they arrived.
func (c *Cluster) membership() {
	defer c.wg.Done()
	hb, up := c.subject("hb"), c.subject("inst", "up")
	for {
		select {
		case <-c.stop:
			return
		case m := <-c.members:
			switch m.Subject {
			case hb:
				c.onHeartbeat(m)
			case up:
				c.onUp(m)
			default:
				c.onDown(m)
			}
		}
	}
}

// authOptions turns the TLS and credential settings into NATS options,
// checking that the files exist so a typo fails at startup.
func (c *Cluster) authOptions() ([]nats.Option, error) {
	var opts []nats.Option
	for _, f := range []string{c.cfg.CAFile, c.cfg.CertFile, c.cfg.KeyFile, c.cfg.NKeySeedFile, c.cfg.CredsFile} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
	}
	if c.cfg.CAFile != "" {
		opts = append(opts, nats.RootCAs(c.cfg.CAFile))
	}
	if c.cfg.CertFile != "" {
		opts = append(opts, nats.ClientCert(c.cfg.CertFile, c.cfg.KeyFile))
	}
	switch {
	case c.cfg.User != "" || c.cfg.Password != "":
		opts = append(opts, nats.UserInfo(c.cfg.User, c.cfg.Password))
	case c.cfg.Token != "":
		opts = append(opts, nats.Token(c.cfg.Token))
	case c.cfg.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(c.cfg.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("cluster: nkey seed %s: %w", c.cfg.NKeySeedFile, err)
		}
		opts = append(opts, o)
	case c.cfg.CredsFile != "":
		opts = append(opts, nats.UserCredentials(c.cfg.CredsFile))
	}
	return opts, nil
}

func (c *Cluster) conn() *nats.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nc
}

func (c *Cluster) setConnected(nc *nats.Conn, err error) {
	c.mu.Lock()
	c.err = err
	var outage time.Duration
	if err != nil {
		c.down = time.Now()
	} else if !c.down.IsZero() {
		outage, c.down = time.Since(c.down), time.Time{}
	}
	c.mu.Unlock()
	if outage > c.cfg.NodeTimeout && c.b != nil {
		// Peers may have taken this node for lost and closed its channels
		// toward their instances: close them here too (1012), so clients
		// reconnect instead of waiting on channels nobody serves.
		c.log.Warn("back after an outage longer than the node timeout: closing cross-node channels", "outage", outage.Round(time.Millisecond))
		c.b.Rejoined()
	}
	if err != nil {
		c.connected.Set(0)
		c.log.Warn("cluster link down; serving local traffic", "err", err)
		return
	}
	c.mu.Lock()
	for _, p := range c.peers {
		p.seen = time.Now()
	}
	c.mu.Unlock()
	c.connected.Set(1)
	c.log.Info("connected to NATS", "url", nc.ConnectedUrl())
	c.sendRevocations(nil) // those made on either side while cut off
	c.heartbeat()          // announce at once, so peers (re)attach our instances
}

// Ready reports why the node is not part of the cluster, or nil. While
// NATS refuses the node (bad credentials, TLS), that is the reason given.
func (c *Cluster) Ready() error {
	c.mu.Lock()
	err, nc := c.err, c.nc
	c.mu.Unlock()
	if err != nil && nc != nil {
		if last := nc.LastError(); last != nil {
			return fmt.Errorf("%w (NATS: %v)", err, last)
		}
	}
	return err
}

// Peers returns the names of the nodes heard from recently.
func (c *Cluster) Peers() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, p := range c.peers {
		out = append(out, p.name)
	}
	return out
}

func (c *Cluster) loop() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		c.heartbeat()
		c.expirePeers()
		c.expireHolds(c.cfg.HeartbeatInterval)
	}
}

func (c *Cluster) heartbeat() {
	if c.b == nil || c.conn() == nil {
		return
	}
	c.memMu.Lock()
	defer c.memMu.Unlock()
	c.mu.Lock()
	gen, digest := c.cfgGen, c.cfgDigest
	c.mu.Unlock()
	beat := heartbeat{Node: c.cfg.Node, Num: c.num, Instances: c.b.Local(), ConfigGen: gen, ConfigDigest: digest}
	if c.dp != nil {
		beat.Data, beat.DataPin = c.dp.advertise, c.dp.pin
	}
	hb, _ := json.Marshal(beat)
	c.publish(c.subject("hb"), hb)
}

// expirePeers declares nodes lost that have been silent past NodeTimeout.
// While this node itself is cut off from NATS nobody is declared lost (the
// silence is ours); when the link is back every peer gets a fresh
// NodeTimeout to be heard again.
func (c *Cluster) expirePeers() {
	now := time.Now()
	var lost []uint64
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	for num, p := range c.peers {
		if now.Sub(p.seen) > c.cfg.NodeTimeout {
			lost = append(lost, num)
			delete(c.peers, num)
			c.log.Warn("node lost", "peer", p.name, "silent_for", now.Sub(p.seen).Round(time.Millisecond))
		}
	}
	c.peersG.Set(float64(len(c.peers)))
	c.mu.Unlock()
	for _, num := range lost {
		c.lost.Inc()
		if c.dp != nil {
			c.dp.peerLost(num)
		}
		c.b.NodeLost(num)
	}
	if len(lost) > 0 {
		c.checkDigests()
	}
}

func (c *Cluster) publish(subj string, data []byte) {
	nc := c.conn()
	if nc == nil {
		return
	}
	if err := nc.Publish(subj, data); err != nil {
		c.pubErrs.Inc()
		return
	}
	c.msgsOut.Inc()
}

func (c *Cluster) onHeartbeat(m *nats.Msg) {
	c.msgsIn.Inc()
	var hb heartbeat
	if err := json.Unmarshal(m.Data, &hb); err != nil || hb.Num == c.num && hb.Node == c.cfg.Node {
		return
	}
	if hb.Num == c.num {
		c.log.Error("two nodes share a node number: give one another --node-name", "other", hb.Node)
		c.mu.Lock()
		c.err = fmt.Errorf("node number clash with %s", hb.Node)
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	p := c.peers[hb.Num]
	joined := p == nil
	if joined {
		p = &peer{name: hb.Node}
		c.peers[hb.Num] = p
		c.log.Info("node joined", "peer", hb.Node)
	}
	p.seen = time.Now()
	p.pin = hb.DataPin
	c.mu.Unlock()
	if c.dp != nil {
		c.dp.peerSeen(hb.Num, hb.Node, hb.Data, hb.DataPin)
	}
	if joined {
		c.sendRevocations(nil) // a node that joins late learns them all
	}
	c.peerConfig(hb.Num, hb.ConfigGen, hb.ConfigDigest)
	// The heartbeat is the truth: attach what is new, detach what is gone.
	if err := c.b.Announce(hb.Num, hb.Instances, true); err != nil {
		c.log.Warn("remote instance refused", "err", err)
	}
}

func (c *Cluster) onUp(m *nats.Msg) {
	c.msgsIn.Inc()
	var info broker.InstanceInfo
	if json.Unmarshal(m.Data, &info) == nil {
		if err := c.b.Announce(info.Node, []broker.InstanceInfo{info}, false); err != nil {
			c.log.Warn("remote instance refused", "err", err)
		}
	}
}

func (c *Cluster) onDown(m *nats.Msg) {
	c.msgsIn.Inc()
	var info broker.InstanceInfo
	if json.Unmarshal(m.Data, &info) == nil {
		c.b.Gone(info.ID, "detached on its node")
		c.forgetInstance(info.ID)
	}
}

func lastID(subject string) (uint64, bool) {
	i := strings.LastIndexByte(subject, '.')
	v, err := strconv.ParseUint(subject[i+1:], 10, 64)
	return v, err == nil
}

func (c *Cluster) onTo(m *nats.Msg) {
	c.msgsIn.Inc()
	if id, ok := lastID(m.Subject); ok {
		c.receive(0, id, true, m.Data, true)
	}
}

func (c *Cluster) onFrom(m *nats.Msg) {
	c.msgsIn.Inc()
	if id, ok := lastID(m.Subject); ok {
		c.receive(0, id, false, m.Data, true)
	}
}

func (c *Cluster) onResync(m *nats.Msg) {
	c.msgsIn.Inc()
	if id, ok := lastID(m.Subject); ok {
		c.b.Receive(broker.Message{Kind: broker.Resync, Instance: id})
	}
}

func (c *Cluster) onPush(m *nats.Msg) {
	c.msgsIn.Inc()
	c.receive(0, 0, false, m.Data, true)
}

func (c *Cluster) onCut(m *nats.Msg) {
	c.msgsIn.Inc()
	id, ok := lastID(m.Subject)
	code, k := binary.Uvarint(m.Data)
	if !ok || k <= 0 {
		return
	}
	c.b.Receive(broker.Message{Kind: broker.CutLink, Instance: id, Code: code, Reason: string(m.Data[k:])})
}

// ShareRevocations makes the chooser-token revocations of r the cluster's:
// a revocation made on this node reaches every other node (which writes it
// to its own file), and every node sends its whole list to a node that
// joins and after an outage, so a node that was away learns what it
// missed. Call it before Start.
func (c *Cluster) ShareRevocations(r *apps.Revocations) {
	c.revs = r
	r.Watch(func(rv apps.Revocation) { c.sendRevocations([]apps.Revocation{rv}) })
}

// sendRevocations publishes list, or with nil the whole list.
func (c *Cluster) sendRevocations(list []apps.Revocation) {
	if c.revs == nil {
		return
	}
	if list == nil {
		list = c.revs.List()
	}
	if len(list) == 0 {
		return
	}
	data, err := json.Marshal(list)
	if err != nil {
		return
	}
	c.publish(c.subject("revocations"), data)
}

func (c *Cluster) onRevocations(m *nats.Msg) {
	c.msgsIn.Inc()
	if c.revs == nil {
		return
	}
	var list []apps.Revocation
	if err := json.Unmarshal(m.Data, &list); err != nil {
		c.log.Warn("bad revocations from another node", "err", err)
		return
	}
	for _, rv := range list {
		if err := c.revs.Merge(rv); err != nil {
			c.log.Warn("revocation from another node refused", "err", err)
		}
	}
}

// Cut implements broker.Cluster.
func (c *Cluster) Cut(node, instance, code uint64, reason string) {
	data := binary.AppendUvarint(make([]byte, 0, len(reason)+4), code)
	c.publish(c.subject("n", strconv.FormatUint(node, 10), "cut", strconv.FormatUint(instance, 10)), append(data, reason...))
}

// InstanceUp implements broker.Cluster.
func (c *Cluster) InstanceUp(info broker.InstanceInfo) {
	data, _ := json.Marshal(info)
	c.memMu.Lock()
	c.publish(c.subject("inst", "up"), data)
	c.memMu.Unlock()
}

// InstanceDown implements broker.Cluster.
func (c *Cluster) InstanceDown(info broker.InstanceInfo) {
	defer c.forgetInstance(info.ID)
	data, _ := json.Marshal(info)
	c.memMu.Lock()
	c.publish(c.subject("inst", "down"), data)
	c.memMu.Unlock()
}

// ToInstance implements broker.Cluster.
func (c *Cluster) ToInstance(node, instance uint64, frames []byte) {
	c.sendStream(node, instance, true, frames)
}

// FromInstance implements broker.Cluster.
func (c *Cluster) FromInstance(node, instance uint64, frames []byte) {
	c.sendStream(node, instance, false, frames)
}

// Push implements broker.Cluster.
func (c *Cluster) Push(scope scope.Scope, frame []byte) {
	s := scope.String()
	data := binary.AppendUvarint(make([]byte, 0, len(s)+len(frame)+4), uint64(len(s)))
	data = append(append(data, s...), frame...)
	c.sendStream(0, 0, false, data) // the push stream: to every node
}

// Shutdown leaves the cluster: it stops the heartbeat and closes the NATS
// connection after flushing. Call it after the broker's Shutdown.
func (c *Cluster) Shutdown(ctx context.Context) error {
	var err error
	c.closed.Do(func() {
		close(c.stop)
		c.wg.Wait()
		c.closeData() // what its links held goes to NATS, flushed below
		if nc := c.conn(); nc != nil {
			if nc.IsConnected() {
				err = nc.FlushWithContext(ctx)
			}
			nc.Close()
		}
	})
	if err != nil {
		return fmt.Errorf("cluster shutdown: %w", err)
	}
	return nil
}

// closeData ends the data links, if any.
func (c *Cluster) closeData() {
	if c.dp != nil {
		c.dp.close()
	}
}

// peerPin returns the data link certificate pin and the name of a live
// peer ("" when num is not one).
func (c *Cluster) peerPin(num uint64) (pin, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.peers[num]; p != nil {
		return p.pin, p.name
	}
	return "", ""
}
