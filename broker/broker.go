package broker

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/internal/netpoll"
)

// Broker is the core. Create it with New; stop it with Shutdown.
type Broker struct {
	cfg    Config // static after New
	log    *slog.Logger
	m      *metrics
	ctx    context.Context // cancelled when Shutdown gives up waiting
	cancel context.CancelFunc

	stopCtx    context.Context // cancelled when Shutdown starts, like shutdown
	stopCancel context.CancelFunc

	pollOnce sync.Once
	poll     *netpoll.Poller // the epoll loops of ServePolled's clients, nil until then
	pollErr  error

	wg       sync.WaitGroup // every goroutine the broker starts or serves in
	nextID   atomic.Uint64  // channel and instance ids
	order    atomic.Uint64  // hybrid logical clock ordering instances (nextOrder)
	buffered atomic.Int64   // client bytes held, over all channels

	mu        sync.RWMutex
	reg       registry             // guarded by mu
	links     map[uint64]*Instance // this node's instances by id; guarded by mu
	remotes   map[uint64]*Instance // proxies of instances on other nodes; guarded by mu
	lostNodes map[uint64]bool      // nodes taken for lost and not heard from since; guarded by mu
	closed    bool                 // guarded by mu
	shutdown  chan struct{}        // closed when Shutdown starts
}

// ioCtx is the context of reads and writes on the data path. It is never
// done: the library then sets up no timer per call, which keeps the relay
// free of allocations. Blocked I/O is cut by closing the connection
// (Shutdown's cutAll, keepalive) instead of by cancelling a context.
var ioCtx = context.Background()

// ErrClosed is returned by Offer, Serve and ServeLink after Shutdown began.
var ErrClosed = errors.New("broker: shut down")

// New returns a running broker.
func New(cfg Config) *Broker {
	cfg.Limits.setDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Node == "" {
		cfg.Node = "local"
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	b := &Broker{
		cfg:       cfg,
		log:       cfg.Logger,
		links:     make(map[uint64]*Instance),
		remotes:   make(map[uint64]*Instance),
		lostNodes: make(map[uint64]bool),
		shutdown:  make(chan struct{}),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.stopCtx, b.stopCancel = context.WithCancel(context.Background())
	b.m = newMetrics(cfg.Registerer, func() float64 { return float64(b.buffered.Load()) })
	b.track(b.keepalive)
	if cfg.Cluster != nil {
		cfg.Cluster.Bind(node{b})
	}
	return b
}

// Limits returns the limits in effect (defaults filled in).
func (b *Broker) Limits() Limits { return b.cfg.Limits }

// track runs f in a goroutine that Shutdown waits for. It returns false,
// without running f, once the broker is closed.
func (b *Broker) track(f func()) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return false
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f()
	}()
	return true
}

// enter counts a goroutine the transport runs in (Serve, ServeLink) so that
// Shutdown waits for it too.
func (b *Broker) enter() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return false
	}
	b.wg.Add(1)
	return true
}

// Shutdown stops accepting, closes every channel with 1001 (going away),
// detaches every instance, and waits for every goroutine. When ctx ends
// first, it cuts the remaining connections and still waits for the
// goroutines to return. It is safe to call more than once.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	first := !b.closed
	b.closed = true
	var regs []*Registration
	if first {
		close(b.shutdown)
		b.stopCancel()
		regs = b.registrationsLocked()
	}
	b.mu.Unlock()
	for _, reg := range regs {
		reg.shutdown()
	}
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		b.cancel()
		b.stopPoller()
		return nil
	case <-ctx.Done():
		b.cancel()
		b.cutAll()
		<-done
		b.stopPoller()
		return fmt.Errorf("broker shutdown: %w", ctx.Err())
	}
}

// cutAll closes every connection at once, when Shutdown's grace is over.
func (b *Broker) cutAll() {
	b.mu.RLock()
	links := make([]*Instance, 0, len(b.links))
	for _, inst := range b.links {
		links = append(links, inst)
	}
	regs := b.registrationsLocked()
	b.mu.RUnlock()
	for _, inst := range links {
		inst.link.end(nil)
	}
	for _, reg := range regs {
		reg.each(func(ch *Channel) {
			ch.mu.Lock()
			conn := ch.conn
			ch.mu.Unlock()
			if conn != nil {
				conn.abort()
			}
		})
	}
}

// registrationsLocked lists every registration. Called with b.mu held.
func (b *Broker) registrationsLocked() []*Registration {
	var regs []*Registration
	for _, e := range b.reg.byPath {
		if e.any != nil {
			regs = append(regs, e.any)
		}
		for _, r := range e.byHost {
			regs = append(regs, r)
		}
	}
	return regs
}

// lookup returns the registration that owns host and path.
func (b *Broker) lookup(host, path string) *Registration {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.reg.match(host, path)
}

// removeIfIdle drops reg from the registry when it has no instance and no
// channel left.
func (b *Broker) removeIfIdle(reg *Registration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if len(reg.instances) == 0 && len(reg.channels) == 0 && !reg.gone && !reg.holdingLocked() {
		reg.gone = true
		reg.stopTimerLocked()
		b.reg.remove(reg.scope, reg)
		b.log.Info("registration removed", "scope", reg.scope.String())
	}
}

func randomToken(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(buf))
}

// Status is a snapshot of the broker for the admin API.
type Status struct {
	Node          string               `json:"node"`
	Registrations []RegistrationStatus `json:"registrations"`
	Counters      Counters             `json:"counters"`
}

// Counters are running totals since the broker started (rates are their
// differences over time), and the channels open now.
type Counters struct {
	MessagesIn  uint64 `json:"messages_in"`  // client → service
	MessagesOut uint64 `json:"messages_out"` // service → client
	BytesIn     uint64 `json:"bytes_in"`
	BytesOut    uint64 `json:"bytes_out"`
	Connections uint64 `json:"connections"` // client connections accepted, in all
	Channels    int    `json:"channels"`    // open now, on this node
	WriteWaits  uint64 `json:"write_waits"` // writes to clients that waited for the socket (slow clients)
}

// RegistrationStatus describes one registration.
type RegistrationStatus struct {
	Scope     string           `json:"scope"`
	Owner     string           `json:"owner"`
	Instances []InstanceStatus `json:"instances"`
	Channels  []ChannelStatus  `json:"channels"`
	Pending   int              `json:"pending_connects"`
}

// InstanceStatus describes one attached instance.
type InstanceStatus struct {
	ID     uint64    `json:"id"`
	Node   uint64    `json:"node"`
	Label  string    `json:"label"`
	Active bool      `json:"active"`
	Remote string    `json:"remote"`
	Since  time.Time `json:"since"`
}

// ChannelStatus describes one open channel.
type ChannelStatus struct {
	ID            uint64    `json:"id"`
	Origin        string    `json:"origin"`
	Target        string    `json:"target"`
	Protocol      string    `json:"protocol"`
	App           string    `json:"app,omitempty"`
	Remote        string    `json:"remote"`
	Since         time.Time `json:"since"`
	Instance      uint64    `json:"instance"`
	Unacked       int       `json:"unacked"`
	BufferedBytes int       `json:"buffered_bytes"`
	QueuedOut     int       `json:"queued_out_bytes"`
}

// Status returns a snapshot of registrations, instances and channels.
func (b *Broker) Status() Status {
	b.mu.RLock()
	regs := b.registrationsLocked()
	b.mu.RUnlock()
	st := Status{Node: b.cfg.Node, Registrations: []RegistrationStatus{}}
	for _, reg := range regs {
		st.Registrations = append(st.Registrations, reg.status())
	}
	sort.Slice(st.Registrations, func(i, j int) bool { return st.Registrations[i].Scope < st.Registrations[j].Scope })
	st.Counters = Counters{MessagesIn: counterValue(b.m.msgIn), MessagesOut: counterValue(b.m.msgOut),
		BytesIn: counterValue(b.m.bytesIn), BytesOut: counterValue(b.m.bytesOut), Connections: counterValue(b.m.clients),
		Channels: int(gaugeValue(b.m.channels)), WriteWaits: counterValue(b.m.writeWaits)}
	return st
}

// messageType maps protocol flags to the WebSocket message type.
func messageType(flags byte) websocket.MessageType {
	if flags&1 != 0 {
		return websocket.MessageBinary
	}
	return websocket.MessageText
}
