package cluster

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/internal/rawconn"
)

// Data links take the data streams between two nodes off NATS. With
// Config.DataListen set, a node listens for links from its peers and
// announces the address (and its certificate's SHA-256) in its heartbeat;
// each node that hears it dials one link to it and sends it, from then
// on, the frames it would have published on PREFIX.n.NODE.to|from.*:
// the same stamped messages (stream.go), framed as
//
//	uvarint length, kind (1: to, 2: from), uvarint instance, stamped message
//
// after a hello of linkMagic and the dialer's node number. A link carries
// one direction; the peer dials its own link back. Everything else
// (membership, resync, cut, push, revocations, reload) stays on NATS.
//
// Links are mutual TLS 1.3 with certificates each node makes at start and
// that nobody signs: each side checks that the other's certificate is the
// one the other's latest heartbeat announced, so the trust is NATS's
// (whoever may publish heartbeats there is a member already). A stranger
// that connects is refused during the handshake, and a link from a node
// that is not a live peer is closed.
//
// A link that breaks hands what it had not written to NATS, and the
// streams go on over NATS until the next heartbeat dials a new link. The
// receiver joins both paths in each stream's order (stream.go): a message
// that comes by one path ahead of its predecessors on the other waits for
// them, up to holdTimeout.
const (
	linkMagic = "switchboard-data/1\n"
	kindTo    = 1
	kindFrom  = 2
	// linkMaxFrame bounds one framed message: a NATS-sized fragment
	// (sendStream fragments for NATS, so a fragment can fall back) and
	// its header.
	linkMaxFrame = 64<<20 + 64
	// linkMaxPending is how much may wait for an outbound link's writer
	// before senders wait for it, as they do for NATS's socket.
	linkMaxPending = 8 << 20
	// linkTimeout bounds a dial with its handshake and each write.
	linkTimeout = 10 * time.Second
	// dialWarnAfter is how many dials in a row fail before it is logged
	// as a warning.
	dialWarnAfter = 3
	// maxGreeting bounds the inbound connections in their handshake (each
	// has linkTimeout to finish it); more are closed at once.
	maxGreeting = 32
)

// dataPlane is a node's data links: its listener, its links to peers and
// theirs to it.
type dataPlane struct {
	c         *Cluster
	listen    string // Config.DataListen
	advertise string // what peers dial
	cert      tls.Certificate
	pin       string // hex SHA-256 of cert's DER
	ln        net.Listener
	ids       atomic.Uint64 // path ids of inbound links (0 is NATS)
	greeting  atomic.Int32  // inbound connections in their handshake
	wg        sync.WaitGroup
	ctx       context.Context // ends dials in progress at close
	cancel    context.CancelFunc

	mu      sync.RWMutex
	out     map[uint64]*outLink // by destination node; guarded by mu
	dialing map[uint64]bool     // guarded by mu
	failing map[uint64]int      // dials to the node that failed in a row; guarded by mu
	in      map[*inLink]bool    // guarded by mu
	closed  bool                // guarded by mu

	linksG  prometheus.Gauge
	msgsIn  prometheus.Counter
	msgsOut prometheus.Counter
	errs    *prometheus.CounterVec
}

func newDataPlane(c *Cluster, listen, advertise string) (*dataPlane, error) {
	if advertise == "" {
		host, _, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, fmt.Errorf("cluster: data listen address %q: %w", listen, err)
		}
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			return nil, fmt.Errorf("cluster: data listen address %q is every interface's: give the address other nodes dial (--cluster-data-advertise)", listen)
		}
	} else if _, _, err := net.SplitHostPort(advertise); err != nil {
		return nil, fmt.Errorf("cluster: data advertise address %q: %w", advertise, err)
	}
	cert, pin, err := nodeCert(c.cfg.Node)
	if err != nil {
		return nil, fmt.Errorf("cluster: data link certificate: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	dp := &dataPlane{c: c, listen: listen, advertise: advertise, cert: cert, pin: pin, ctx: ctx, cancel: cancel,
		out: make(map[uint64]*outLink), dialing: make(map[uint64]bool), failing: make(map[uint64]int), in: make(map[*inLink]bool)}
	dp.linksG = prometheus.NewGauge(prometheus.GaugeOpts{Name: "switchboard_cluster_data_links", Help: "Data links up from this node to others."})
	msgs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_cluster_data_messages_total", Help: "Stream messages sent and received over data links, by direction."}, []string{"direction"})
	dp.msgsIn, dp.msgsOut = msgs.WithLabelValues("in"), msgs.WithLabelValues("out")
	dp.errs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_cluster_data_link_errors_total",
		Help: "Data link failures, by kind: dial (could not reach a peer), refused (a connection that was not a live peer's), lost (a link broke)."}, []string{"kind"})
	c.cfg.Registerer.MustRegister(dp.linksG, msgs, dp.errs)
	return dp, nil
}

// nodeCert makes the node's self-signed certificate for its data links.
func nodeCert(node string) (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return tls.Certificate{}, "", err
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "switchboard node " + node},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	sum := sha256.Sum256(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, hex.EncodeToString(sum[:]), nil
}

// tlsConfig is what both ends of a link use: TLS 1.3, this node's
// certificate, full-size records (links are long-lived bulk streams).
func (dp *dataPlane) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{dp.cert}, DynamicRecordSizingDisabled: true}
}

// checkPin accepts exactly the certificate whose SHA-256 is pin.
func checkPin(cs tls.ConnectionState, pin string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("no certificate")
	}
	sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
	if pin == "" || hex.EncodeToString(sum[:]) != pin {
		return errors.New("certificate is not the one its node announced")
	}
	return nil
}

// start listens; the advertised address defaults to the bound one.
func (dp *dataPlane) start() error {
	ln, err := net.Listen("tcp", dp.listen)
	if err != nil {
		return fmt.Errorf("cluster: data links: %w", err)
	}
	dp.ln = ln
	if dp.advertise == "" {
		dp.advertise = ln.Addr().String()
	}
	dp.wg.Add(1)
	go dp.accept()
	return nil
}

// close ends every link (what outbound links held goes to NATS) and waits
// for their goroutines.
func (dp *dataPlane) close() {
	dp.cancel()
	dp.mu.Lock()
	dp.closed = true
	var outs []*outLink
	for _, l := range dp.out {
		outs = append(outs, l)
	}
	for l := range dp.in {
		l.conn.Close()
	}
	dp.mu.Unlock()
	if dp.ln != nil {
		dp.ln.Close()
	}
	for _, l := range outs {
		l.stop(nil)
	}
	dp.wg.Wait()
}

// DataAddr is the address the data links listen on, once Start bound it
// ("" without data links): with DataListen's port 0, the port chosen.
func (c *Cluster) DataAddr() string {
	if c.dp == nil || c.dp.ln == nil {
		return ""
	}
	return c.dp.ln.Addr().String()
}

// link returns the live link to node, or nil.
func (dp *dataPlane) link(node uint64) *outLink {
	dp.mu.RLock()
	l := dp.out[node]
	dp.mu.RUnlock()
	return l
}

// peerSeen is called with each heartbeat of a live peer: it dials a link
// to the peer when it has none (or has one to an address or certificate
// the peer no longer announces: it restarted).
func (dp *dataPlane) peerSeen(num uint64, name, addr, pin string) {
	dp.mu.Lock()
	if dp.closed {
		dp.mu.Unlock()
		return
	}
	l := dp.out[num]
	if l != nil && (l.addr != addr || l.pin != pin) {
		dp.mu.Unlock()
		l.stop(errors.New("the node announces another address or certificate"))
		dp.mu.Lock()
		l = dp.out[num]
	}
	if addr == "" || l != nil || dp.dialing[num] || dp.closed {
		dp.mu.Unlock()
		return
	}
	dp.dialing[num] = true
	dp.wg.Add(1)
	dp.mu.Unlock()
	go dp.dial(num, name, addr, pin)
}

// peerLost ends the links to and from a node taken for lost.
func (dp *dataPlane) peerLost(num uint64) {
	dp.mu.Lock()
	delete(dp.failing, num)
	l := dp.out[num]
	for in := range dp.in {
		if in.node == num {
			in.conn.Close()
		}
	}
	dp.mu.Unlock()
	if l != nil {
		l.stop(errors.New("the node was taken for lost"))
	}
}

func (dp *dataPlane) dial(num uint64, name, addr, pin string) {
	defer dp.wg.Done()
	conn, err := dp.handshake(addr, pin)
	dp.mu.Lock()
	delete(dp.dialing, num)
	if err == nil && dp.closed {
		err = errors.New("shutting down")
	}
	if err != nil {
		dp.failing[num]++
		// A node that joined may dial before the peer has heard it: say
		// so when it goes on.
		warn := dp.failing[num] == dialWarnAfter && !dp.closed
		dp.mu.Unlock()
		if conn != nil {
			conn.Close()
		}
		dp.errs.WithLabelValues("dial").Inc()
		if warn {
			dp.c.log.Warn("no data link to a node: its streams go over NATS; retrying with its heartbeats", "peer", name, "addr", addr, "err", err)
		} else {
			dp.c.log.Debug("data link dial failed", "peer", name, "addr", addr, "err", err)
		}
		return
	}
	delete(dp.failing, num)
	l := &outLink{dp: dp, node: num, name: name, addr: addr, pin: pin, conn: conn}
	l.room = sync.NewCond(&l.mu)
	dp.out[num] = l
	dp.wg.Add(1)
	dp.mu.Unlock()
	dp.linksG.Inc()
	dp.c.log.Info("data link up", "peer", name, "addr", addr)
	go l.watch()
}

// handshake dials addr and proves this node to it: TLS with the peer's
// announced certificate, then the hello.
func (dp *dataPlane) handshake(addr, pin string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(dp.ctx, linkTimeout)
	defer cancel()
	raw, err := (&net.Dialer{KeepAlive: 15 * time.Second}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	cfg := dp.tlsConfig()
	cfg.InsecureSkipVerify = true // the peer's certificate is pinned instead: VerifyConnection
	cfg.VerifyConnection = func(cs tls.ConnectionState) error { return checkPin(cs, pin) }
	conn := tls.Client(rawconn.Wrap(raw), cfg)
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	if err := conn.HandshakeContext(ctx); err != nil {
		return conn, fmt.Errorf("TLS: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) }) // close: stop waiting for the answer
	defer stop()
	hello := binary.AppendUvarint([]byte(linkMagic), dp.c.num)
	if _, err := conn.Write(hello); err != nil {
		return conn, err
	}
	// The answer: 0, or 1 and why the peer refuses (it has not heard
	// this node yet, say).
	answer := make([]byte, 256)
	n, err := conn.Read(answer)
	switch {
	case err != nil:
		return conn, fmt.Errorf("no answer to the hello: %w", err)
	case answer[0] != 0:
		return conn, fmt.Errorf("refused: %s", answer[1:n])
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

func (dp *dataPlane) accept() {
	defer dp.wg.Done()
	var backoff time.Duration
	for {
		raw, err := dp.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors, say: as net/http does, wait and retry.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			dp.c.log.Warn("data links: accept failed; retrying", "err", err, "in", backoff)
			select {
			case <-dp.ctx.Done():
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		if dp.greeting.Load() >= maxGreeting {
			// Links come from a handful of peers: this many connections
			// still in their handshake is a flood (or a scan).
			dp.errs.WithLabelValues("refused").Inc()
			raw.Close()
			continue
		}
		dp.mu.Lock()
		if dp.closed {
			dp.mu.Unlock()
			raw.Close()
			return
		}
		cfg := dp.tlsConfig()
		cfg.ClientAuth = tls.RequireAnyClientCert // checked against the node's pin after the hello
		cfg.SessionTicketsDisabled = true         // a link is dialed anew, with a fresh check
		l := &inLink{id: dp.ids.Add(1), conn: tls.Server(rawconn.Wrap(raw), cfg)}
		dp.in[l] = true
		dp.wg.Add(1)
		dp.greeting.Add(1)
		dp.mu.Unlock()
		go dp.serve(l)
	}
}

var (
	errNotPeer    = errors.New("not a live peer here")
	errPeerClosed = errors.New("closed by the peer")
)

// inLink is a link a peer dialed to this node.
type inLink struct {
	id   uint64    // its path id for the streams (never 0: NATS)
	node uint64    // the peer, once it said (guarded by dataPlane.mu)
	conn *tls.Conn // closed to end it
}

// serve checks who dialed and reads its stream messages.
func (dp *dataPlane) serve(l *inLink) {
	defer dp.wg.Done()
	defer func() {
		dp.mu.Lock()
		delete(dp.in, l)
		dp.mu.Unlock()
		l.conn.Close()
	}()
	conn := l.conn
	conn.SetDeadline(time.Now().Add(linkTimeout))
	r := bufio.NewReaderSize(conn, 64<<10)
	node, err := dp.hello(conn, r)
	dp.greeting.Add(-1)
	if err != nil {
		dp.errs.WithLabelValues("refused").Inc()
		level := slog.LevelWarn
		if errors.Is(err, errNotPeer) {
			level = slog.LevelDebug // a node that joined and heard this one first: it dials again
		}
		dp.c.log.Log(context.Background(), level, "data link refused", "remote", conn.RemoteAddr().String(), "err", err)
		if conn.ConnectionState().HandshakeComplete {
			conn.Write(append([]byte{1}, err.Error()...))
		}
		return
	}
	if _, err := conn.Write([]byte{0}); err != nil {
		return
	}
	conn.SetDeadline(time.Time{})
	dp.mu.Lock()
	l.node = node
	dp.mu.Unlock()
	var buf []byte
	for {
		n, err := binary.ReadUvarint(r)
		if err == nil && (n < 2 || n > linkMaxFrame) {
			err = fmt.Errorf("message of %d bytes", n)
		}
		if err != nil {
			dp.linkEnded(node, err)
			return
		}
		// One buffer, reused: the broker copies what it keeps (as from its
		// own links' reused buffers), and a held message is copied.
		if uint64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		msg := buf[:n]
		if _, err := io.ReadFull(r, msg); err != nil {
			dp.linkEnded(node, err)
			return
		}
		to, inst, stamped, ok := linkMessage(msg)
		if !ok {
			dp.linkEnded(node, errors.New("bad message header"))
			return
		}
		dp.msgsIn.Inc()
		dp.c.receive(l.id, inst, to, stamped, false)
		if cap(buf) > 4<<20 {
			buf = nil // an outsize one is not kept
		}
	}
}

// hello completes the handshake of a link dialed to this node and returns
// the dialer's node number, refusing what is not a live peer with the
// certificate it announced.
func (dp *dataPlane) hello(conn *tls.Conn, r *bufio.Reader) (uint64, error) {
	if err := conn.Handshake(); err != nil {
		return 0, fmt.Errorf("TLS: %w", err)
	}
	magic := make([]byte, len(linkMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != linkMagic {
		return 0, errors.New("not a switchboard data link")
	}
	node, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, errors.New("no node number")
	}
	pin, name := dp.c.peerPin(node)
	if name == "" {
		return 0, fmt.Errorf("node %d: %w", node, errNotPeer)
	}
	if err := checkPin(conn.ConnectionState(), pin); err != nil {
		return 0, fmt.Errorf("node %s: %w", name, err)
	}
	return node, nil
}

func (dp *dataPlane) linkEnded(node uint64, err error) {
	dp.mu.RLock()
	closed := dp.closed
	dp.mu.RUnlock()
	if closed || errors.Is(err, net.ErrClosed) {
		return
	}
	dp.c.log.Info("data link from a node ended", "peer", strconv.FormatUint(node, 10), "err", err)
}

// outLink is this node's link to one peer. A sender that finds nobody
// writing writes what has gathered itself, on its own goroutine (no hand-
// off to a writer), and goes on while others append; senders that come
// meanwhile only append, and the writer takes their messages too, so
// under load one write carries many.
type outLink struct {
	dp              *dataPlane
	node            uint64
	name, addr, pin string
	conn            net.Conn

	mu      sync.Mutex
	room    *sync.Cond // buf was taken, or the link ended
	buf     []byte     // framed messages waiting; guarded by mu
	spare   []byte     // the other buffer; guarded by mu
	count   int        // messages in buf; guarded by mu
	writing bool       // a sender is writing; guarded by mu
	closing bool       // stop was called; guarded by mu
	ended   bool       // end has run or is running; guarded by mu
	ending  bool       // end is handing buf to NATS; guarded by mu
	dead    bool       // guarded by mu
	why     error      // what ended it (nil: shutdown); guarded by mu
}

// send queues one message (its stamp, then its frames), and writes when
// nobody is. It waits while too much is queued. It reports false when the
// link has ended: the caller publishes on NATS.
func (l *outLink) send(to bool, inst uint64, stamp, frames []byte) bool {
	kind := byte(kindFrom)
	if to {
		kind = kindTo
	}
	l.mu.Lock()
	for !l.dead && (l.ending || len(l.buf) > linkMaxPending) {
		l.room.Wait()
	}
	if l.dead {
		l.mu.Unlock()
		return false
	}
	var hdr [1 + binary.MaxVarintLen64]byte
	hdr[0] = kind
	h := 1 + binary.PutUvarint(hdr[1:], inst)
	l.buf = binary.AppendUvarint(l.buf, uint64(h+len(stamp)+len(frames)))
	l.buf = append(append(append(l.buf, hdr[:h]...), stamp...), frames...)
	l.count++
	if l.writing || l.closing {
		l.mu.Unlock() // the writer, or end, takes it
		return true
	}
	l.writing = true
	for len(l.buf) > 0 && !l.closing {
		b, n := l.buf, l.count
		l.buf, l.count, l.spare = l.spare[:0], 0, nil
		l.mu.Unlock()
		l.room.Broadcast()
		l.dp.msgsOut.Add(float64(n)) // before the write: never behind what the peer got
		l.conn.SetWriteDeadline(time.Now().Add(linkTimeout))
		_, err := l.conn.Write(b)
		l.mu.Lock()
		if err != nil {
			l.ended = true // this writer runs end: stop (ours or watch's) must not
			l.mu.Unlock()
			l.stop(fmt.Errorf("write: %w", err))
			l.mu.Lock()
			l.writing = false
			l.mu.Unlock()
			l.end(b)
			return true
		}
		if cap(b) <= 4*linkMaxPending {
			l.spare = b[:0]
		}
	}
	l.writing = false
	run := l.closing && !l.ended
	l.ended = l.ended || run
	l.mu.Unlock()
	if run {
		l.end(nil)
	}
	return true
}

// stop ends the link (why nil: shutdown). What it holds goes to NATS: end
// runs here, or in the sender writing now, when its write returns.
func (l *outLink) stop(why error) {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return
	}
	l.closing, l.why = true, why
	run := !l.writing && !l.ended
	l.ended = l.ended || run
	l.mu.Unlock()
	l.conn.Close()
	if run {
		l.end(nil)
	}
}

// watch reads the link, which the peer never writes to, to learn at once
// when the peer closes it.
func (l *outLink) watch() {
	defer l.dp.wg.Done()
	var b [1]byte
	_, err := l.conn.Read(b[:])
	if err == nil {
		err = errors.New("the peer wrote on a one-way link")
	}
	l.stop(fmt.Errorf("%w: %w", errPeerClosed, err))
}

// end runs once, when the link ends: what was not written (a failed
// write, unwritten, or written in part, and what gathered after it) goes
// to NATS in order, before any sender that finds the link dead publishes
// there. The receiver drops what it had already.
func (l *outLink) end(failed []byte) {
	l.mu.Lock()
	l.ending = true
	rest := l.buf
	l.buf, l.count = nil, 0
	why := l.why
	l.mu.Unlock()
	dp := l.dp
	for _, b := range [][]byte{failed, rest} {
		dp.c.republish(l.node, b)
	}
	l.mu.Lock()
	l.dead, l.ending = true, false
	l.mu.Unlock()
	l.room.Broadcast()
	dp.mu.Lock()
	if dp.out[l.node] == l {
		delete(dp.out, l.node)
	}
	closed := dp.closed
	dp.mu.Unlock()
	dp.linksG.Dec()
	if why != nil && !closed {
		dp.errs.WithLabelValues("lost").Inc()
		level := slog.LevelWarn
		if errors.Is(why, errPeerClosed) {
			level = slog.LevelInfo // it left, or took this node for lost
		}
		dp.c.log.Log(context.Background(), level, "data link ended: its streams go over NATS until the next heartbeat dials it again", "peer", l.name, "err", why)
	}
}

// republish publishes framed link messages on their NATS subjects.
func (c *Cluster) republish(node uint64, b []byte) {
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n || n < 2 {
			return
		}
		to, inst, stamped, ok := linkMessage(b[k : k+int(n)])
		b = b[k+int(n):]
		if !ok {
			return
		}
		c.publish(c.streamSubject(streamKey{node, inst, to}), stamped)
	}
}

// linkMessage splits one framed link message (after its length) into its
// direction, instance and stamped message, as send wrote it.
func linkMessage(msg []byte) (to bool, inst uint64, stamped []byte, ok bool) {
	if len(msg) < 2 || msg[0] != kindTo && msg[0] != kindFrom {
		return false, 0, nil, false
	}
	inst, k := binary.Uvarint(msg[1:])
	if k <= 0 {
		return false, 0, nil, false
	}
	return msg[0] == kindTo, inst, msg[1+k:], true
}
