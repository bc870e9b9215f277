package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/protocol"
	"github.com/switchboard-dev/switchboard/scope"
)

// Cluster is how a broker reaches the other nodes of a cluster (package
// cluster implements it over NATS). New hands it the broker's side of the
// seam with Bind; the broker then calls the rest, and the cluster calls
// back only through the Node it was given. A broker without a Cluster is a
// single node.
//
// Ids of channels and instances carry the number of the node that made them
// in their top bits (NodeShift), so any node can tell where a frame for a
// channel must go.
type Cluster interface {
	// Bind receives the broker's side of the seam, once, from New.
	Bind(n Node)
	// InstanceUp and InstanceDown announce a local instance.
	InstanceUp(info InstanceInfo)
	InstanceDown(info InstanceInfo)
	// ToInstance carries frames from a local proxy to the real instance on
	// its node.
	ToInstance(node, instance uint64, frames []byte)
	// FromInstance carries frames from a local instance to channels owned
	// by another node.
	FromInstance(node, instance uint64, frames []byte)
	// Push carries a Push frame of a local instance to every other node.
	Push(scope scope.Scope, frame []byte)
	// Cut asks an instance's node to end its link with an Error frame
	// (code, reason): it broke the protocol or overran its credit toward
	// channels of this node.
	Cut(node, instance, code uint64, reason string)
}

// Node is the broker as its Cluster sees it: what other nodes tell it.
type Node interface {
	// Local describes the instances attached to this node, for heartbeats.
	Local() []InstanceInfo
	// Announce attaches proxies for instances of another node. When all is
	// true, infos is that node's whole list (a heartbeat): the node's
	// proxies it does not name are detached.
	Announce(node uint64, infos []InstanceInfo, all bool) error
	// Gone detaches the proxy of an instance that left its node.
	Gone(instance uint64, reason string)
	// Receive handles a message from another node; lost says messages of
	// the same stream were lost before it.
	Receive(m Message)
	// NodeLost: a node was silent past the node timeout.
	NodeLost(node uint64)
	// Rejoined: this node is back on the cluster after an outage longer
	// than the node timeout, so peers may have taken it for lost.
	Rejoined()
}

// MessageKind says what a cluster Message carries.
type MessageKind int

// Kinds of cluster messages.
const (
	// ToLocal: frames from a proxy elsewhere for a local instance.
	ToLocal MessageKind = iota + 1
	// FromRemote: frames from an instance elsewhere for this node's channels.
	FromRemote
	// Resync: a node missed frames of its proxy of Instance; resend them.
	Resync
	// PushFrame: a Push frame for this node's channels of Scope.
	PushFrame
	// CutLink: end the link of local Instance with an Error frame (Code,
	// Reason), as if it had broken the protocol here.
	CutLink
)

// Message is what a Cluster hands its Node.
type Message struct {
	Kind     MessageKind
	Instance uint64
	Scope    string // PushFrame
	Frames   []byte // service-protocol frames; owned by the broker after Receive
	Lost     bool   // messages of this stream were lost before this one
	Code     uint64 // CutLink: the Error frame's code
	Reason   string // CutLink: and its message
}

// InstanceInfo describes an instance to other nodes.
type InstanceInfo struct {
	ID        uint64    `json:"id"`
	Node      uint64    `json:"node"`
	Scope     string    `json:"scope"`
	Owner     string    `json:"owner"`
	Label     string    `json:"label"`
	Remote    string    `json:"remote"`
	Since     time.Time `json:"since"`
	Order     uint64    `json:"order"` // attach order across the cluster (nextOrder)
	Window    int       `json:"window"`
	Protocols []string  `json:"protocols,omitempty"`
	Origins   []string  `json:"origins,omitempty"`
}

// NodeShift is where the node number starts in ids: the low 40 bits count,
// the bits above name the node (up to 2^23 nodes).
const NodeShift = 40

// NodeOf returns the node number in an id.
func NodeOf(id uint64) uint64 { return id >> NodeShift }

func (b *Broker) newID() uint64 { return b.cfg.NodeNum<<NodeShift | b.nextID.Add(1) }

// nextOrder returns the attach order of a new local instance: a hybrid
// logical clock, greater than the order of every instance this node has
// heard of and otherwise the node's clock in microseconds. So an instance
// that attaches after its node learnt of another one is newer than it
// whatever the nodes' clocks say, and instances whose nodes had not heard
// of each other fall back to (roughly synchronised) wall-clock order. Ties
// are broken by id (Registration.attach), the same on every node.
func (b *Broker) nextOrder() uint64 {
	for {
		last := b.order.Load()
		next := max(last+1, uint64(b.cfg.Now().UnixMicro()))
		if b.order.CompareAndSwap(last, next) {
			return next
		}
	}
}

// seeOrder moves the clock past the order of an instance heard of.
func (b *Broker) seeOrder(o uint64) {
	for {
		last := b.order.Load()
		if o <= last || b.order.CompareAndSwap(last, o) {
			return
		}
	}
}

func (inst *Instance) info() InstanceInfo {
	return InstanceInfo{ID: inst.id, Node: inst.b.cfg.NodeNum, Scope: inst.reg.scope.String(), Owner: inst.reg.owner,
		Label: inst.label, Remote: inst.remote, Since: inst.since, Order: inst.order, Window: inst.window,
		Protocols: inst.policy.protocols, Origins: inst.policy.origins}
}

// node is the broker's side of the cluster seam.
type node struct{ b *Broker }

func (n node) Local() []InstanceInfo { return n.b.localInstances() }

func (n node) Announce(num uint64, infos []InstanceInfo, all bool) error {
	var errs []error
	listed := make(map[uint64]bool, len(infos))
	for _, info := range infos {
		listed[info.ID] = true
		if err := n.b.remoteInstanceUp(info); err != nil {
			errs = append(errs, err)
		}
	}
	if all {
		for _, id := range n.b.remoteInstances(num) {
			if !listed[id] {
				n.b.remoteInstanceDown(id, "not in its node's heartbeat")
			}
		}
	}
	return errors.Join(errs...)
}

func (n node) Gone(id uint64, reason string) { n.b.remoteInstanceDown(id, reason) }

func (n node) Receive(m Message) {
	switch m.Kind {
	case ToLocal:
		n.b.toLocalInstance(m.Instance, m.Frames)
	case FromRemote:
		if m.Lost {
			n.b.log.Warn("frames from a remote instance were lost; closing its channels here with 1012", "instance", m.Instance)
			n.b.remoteFramesLost(m.Instance)
		}
		n.b.fromRemoteInstance(m.Instance, m.Frames)
	case Resync:
		n.b.resyncRemote(m.Instance)
	case PushFrame:
		n.b.applyPush(m.Scope, m.Frames)
	case CutLink:
		n.b.mu.RLock()
		inst := n.b.links[m.Instance]
		n.b.mu.RUnlock()
		if inst != nil {
			n.b.log.Warn("another node cuts a local instance's link", "instance", m.Instance, "reason", m.Reason)
			inst.fail(&linkError{m.Code, m.Reason})
		}
	}
}

func (n node) NodeLost(num uint64) { n.b.nodeLost(num) }

func (n node) Rejoined() { n.b.closeCrossNodeChannels() }

// remoteLink is the link of a proxy: an instance on another node, reached
// through the cluster.
type remoteLink struct {
	c        Cluster
	node, id uint64
}

func (l remoteLink) write(b []byte) error { l.c.ToInstance(l.node, l.id, b); return nil }
func (l remoteLink) local() bool          { return false }

// end asks the instance's node to cut its link when this node refused
// what it sent (a linkError); otherwise the instance's own node ends it.
func (l remoteLink) end(err error) {
	var le *linkError
	if errors.As(err, &le) && le != errShutdown {
		l.c.Cut(l.node, l.id, le.code, le.message)
	}
}

// remoteInstanceUp attaches a proxy for an instance on another node. Frames
// the broker queues to it go through Cluster.ToInstance.
func (b *Broker) remoteInstanceUp(info InstanceInfo) error {
	if info.Node == b.cfg.NodeNum || b.cfg.Cluster == nil {
		return nil
	}
	sc, err := scope.Parse(info.Scope, false)
	if err != nil {
		return fmt.Errorf("remote instance %d: %w", info.ID, err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	if _, dup := b.remotes[info.ID]; dup {
		b.mu.Unlock()
		return nil
	}
	delete(b.lostNodes, info.Node) // heard from again
	b.seeOrder(info.Order)
	reg := b.reg.get(sc)
	if reg == nil {
		reg = &Registration{b: b, scope: sc, owner: info.Owner}
		b.reg.put(sc, reg)
	}
	if reg.owner != info.Owner {
		b.mu.Unlock()
		return fmt.Errorf("remote instance %d: scope %s is owned by %s here, not %s", info.ID, sc, reg.owner, info.Owner)
	}
	inst := &Instance{
		b: b, reg: reg, link: remoteLink{b.cfg.Cluster, info.Node, info.ID}, id: info.ID, node: info.Node, label: info.Label, remote: info.Remote, since: info.Since, order: info.Order,
		window: info.Window, policy: policy{protocols: info.Protocols, origins: info.Origins},
		done: make(chan struct{}), wake: make(chan struct{}, 1), pending: make(map[uint64]*pendingConnect),
	}
	if inst.window <= 0 {
		inst.window = b.cfg.Limits.Window
	}
	newest := reg.attach(inst, false, nil) // a standby's order already places it
	b.remotes[info.ID] = inst
	b.mu.Unlock()
	b.m.instances.Inc()
	if !b.track(inst.writeLoop) {
		inst.fail(errShutdown)
	}
	b.log.Info("remote instance attached", "scope", sc.String(), "instance", info.ID, "node", info.Node)
	if newest {
		reg.activate(inst)
	}
	return nil
}

// resyncRemote resends to a remote instance what frames lost on the way
// may have carried: every channel bound to its proxy sends Open again
// (services ignore it for a channel they know) and then, in order, every
// client message not acknowledged. The proxy stays attached, so nothing
// the instance sends meanwhile is dropped.
func (b *Broker) resyncRemote(id uint64) {
	b.mu.RLock()
	inst := b.remotes[id]
	b.mu.RUnlock()
	if inst == nil || inst.dead.Load() {
		return
	}
	inst.reg.each(func(ch *Channel) {
		ch.mu.Lock()
		if ch.inst == inst {
			inst.sendFrame(&ch.info)
			ch.sent, ch.inflight, ch.closeSent = 0, 0, false
			ch.pumpLocked()
		}
		ch.mu.Unlock()
	})
	b.log.Info("resent unacknowledged messages to a remote instance", "instance", id)
}

// remoteInstanceDown detaches the proxy of a remote instance that went away
// (or whose node did): its channels are handed over as after a crash.
func (b *Broker) remoteInstanceDown(id uint64, reason string) {
	b.mu.Lock()
	inst := b.remotes[id]
	delete(b.remotes, id)
	b.mu.Unlock()
	if inst == nil {
		return
	}
	inst.fail(fmt.Errorf("remote instance down: %s", reason))
	inst.reg.detach(inst)
	b.m.instances.Dec()
	b.log.Info("remote instance detached", "scope", inst.reg.scope.String(), "instance", id, "reason", reason)
}

// remoteInstances lists the ids of proxies for instances on node.
func (b *Broker) remoteInstances(node uint64) []uint64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var ids []uint64
	for id, inst := range b.remotes {
		if inst.node == node {
			ids = append(ids, id)
		}
	}
	return ids
}

// localInstances describes the instances attached to this node.
func (b *Broker) localInstances() []InstanceInfo {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]InstanceInfo, 0, len(b.links))
	for _, inst := range b.links {
		if inst.reg != nil {
			out = append(out, inst.info())
		}
	}
	return out
}

// fromRemoteInstance dispatches frames that a real instance on another
// node sent for channels of this node.
func (b *Broker) fromRemoteInstance(id uint64, msg []byte) {
	b.mu.RLock()
	inst := b.remotes[id]
	b.mu.RUnlock()
	if inst == nil || inst.dead.Load() {
		b.mu.RLock()
		lost := b.lostNodes[NodeOf(id)]
		b.mu.RUnlock()
		if lost {
			// Its node was taken for lost but the instance still talks:
			// what it sent these channels cannot be delivered in order any
			// more, so they are closed rather than silently skipped.
			b.closeChannelsIn(msg, "frames from an instance whose node was taken for lost")
		}
		// Otherwise the instance is gone: like a link that died, what it
		// sent last is dropped, and its unacknowledged input is resent.
		return
	}
	for len(msg) > 0 {
		ft, body, rest, err := protocol.Next(msg)
		if err == nil {
			err = inst.dispatch(ft, body, msg[:len(msg)-len(rest)])
		} else {
			err = protoErr("%v", err)
		}
		var le *linkError
		if errors.As(err, &le) {
			// As on a local link: the service is cut (its node ends the
			// link with this Error frame) and its proxy detaches here.
			b.log.Warn("remote instance broke the service protocol: cutting its link", "instance", id, "err", err)
			inst.fail(err)
			b.remoteInstanceDown(id, err.Error())
			return
		}
		msg = rest
	}
}

// toLocalInstance queues frames that a proxy on another node sent to a
// local instance, and keeps the instance's list of remote channels.
func (b *Broker) toLocalInstance(id uint64, msg []byte) {
	b.mu.RLock()
	inst := b.links[id]
	b.mu.RUnlock()
	if inst == nil || inst.dead.Load() {
		return
	}
	inst.remoteChans.observe(msg, b.cfg.Limits.AcceptTimeout)
	// As for local channels (sendFrame): Data and Close keep their order on
	// the data queue, everything else (Connect, Open, Credit…) goes ahead
	// of it, so a remote client's handshake does not wait behind megabytes
	// of messages. Each run of frames of one kind is queued at once.
	for len(msg) > 0 {
		n, data := 0, false
		for rest := msg; len(rest) > 0; {
			ft, _, r, err := protocol.Next(rest)
			if err != nil {
				b.log.Warn("bad frames from another node for a local instance", "instance", id, "err", err)
				return
			}
			d := ft == protocol.TypeData || ft == protocol.TypeClose
			if n > 0 && d != data {
				break
			}
			data = d
			n += len(rest) - len(r)
			rest = r
		}
		run := msg[:n]
		inst.enqueue(!data, func(q []byte) []byte { return append(q, run...) })
		msg = msg[n:]
	}
}

// applyPush delivers a push from an instance on another node to this
// node's channels of scope.
func (b *Broker) applyPush(rawScope string, frame []byte) {
	sc, err := scope.Parse(rawScope, false)
	if err != nil {
		return
	}
	b.mu.RLock()
	reg := b.reg.get(sc)
	b.mu.RUnlock()
	ft, body, _, err := protocol.Next(frame)
	if reg == nil || err != nil || ft != protocol.TypePush {
		return
	}
	var f protocol.Push
	if f.Decode(body) == nil {
		reg.pushLocal(&f)
	}
}

// remoteChannels is what a local instance serves on other nodes, learnt
// from the frames proxies send it: the cluster-wide part of its client
// list, kept without asking other nodes.
//
// A connect request the service never answers expires with the request
// (the accept timeout, on the client's node): its entry is dropped by a
// later sweep, so unanswered requests cannot pile up.
type remoteChannels struct {
	mu      sync.Mutex
	pending map[uint64]pendingRemote // connect requests seen
	open    map[uint64]protocol.ChannelInfo
	swept   time.Time // last sweep of expired pending requests
}

type pendingRemote struct {
	info    protocol.ChannelInfo
	expires time.Time
}

// observe notes the Connect, Open and Close frames in msg; ttl is how long
// an unanswered connect request lives.
func (rc *remoteChannels) observe(msg []byte, ttl time.Duration) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.open == nil {
		rc.pending = make(map[uint64]pendingRemote)
		rc.open = make(map[uint64]protocol.ChannelInfo)
	}
	now := time.Now()
	rc.sweepLocked(now, ttl)
	for len(msg) > 0 {
		ft, body, rest, err := protocol.Next(msg)
		if err != nil {
			return
		}
		msg = rest
		switch ft {
		case protocol.TypeConnect:
			var f protocol.Connect
			if f.Decode(body) == nil {
				rc.pending[f.Channel] = pendingRemote{expires: now.Add(ttl), info: protocol.ChannelInfo{Channel: f.Channel,
					Origin: f.Origin, Target: f.Target, App: f.App, Remote: f.Remote, Since: uint64(now.UnixMilli())}}
			}
		case protocol.TypeOpen:
			var f protocol.ChannelInfo
			if f.Decode(body) == nil {
				rc.open[f.Channel] = f
			}
		case protocol.TypeClose:
			var f protocol.Close
			if f.Decode(body) == nil {
				delete(rc.open, f.Channel)
				delete(rc.pending, f.Channel)
			}
		}
	}
}

// sweepLocked drops expired connect requests, at most every ttl/4 (so the
// cost is spread over many frames).
func (rc *remoteChannels) sweepLocked(now time.Time, ttl time.Duration) {
	if len(rc.pending) == 0 || now.Sub(rc.swept) < ttl/4 {
		return
	}
	rc.swept = now
	for id, p := range rc.pending {
		if now.After(p.expires) {
			delete(rc.pending, id)
		}
	}
}

// pendingCount is how many remote connect requests wait for an answer.
func (rc *remoteChannels) pendingCount() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.pending)
}

// answered moves a remote connect request to the open list (the instance
// accepted it) or drops it.
func (rc *remoteChannels) answered(ch uint64, protocolName string, accepted bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	p, ok := rc.pending[ch]
	delete(rc.pending, ch)
	if ok && accepted {
		p.info.Protocol = protocolName
		rc.open[ch] = p.info
	}
}

func (rc *remoteChannels) closed(ch uint64) {
	rc.mu.Lock()
	delete(rc.open, ch)
	delete(rc.pending, ch)
	rc.mu.Unlock()
}

// dropNode forgets the channels of a lost node and returns their ids.
func (rc *remoteChannels) dropNode(node uint64) []uint64 {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var ids []uint64
	for id := range rc.open {
		if NodeOf(id) == node {
			ids = append(ids, id)
			delete(rc.open, id)
		}
	}
	for id := range rc.pending {
		if NodeOf(id) == node {
			delete(rc.pending, id)
		}
	}
	return ids
}

func (rc *remoteChannels) list() []protocol.ChannelInfo {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make([]protocol.ChannelInfo, 0, len(rc.open))
	for _, c := range rc.open {
		out = append(out, c)
	}
	return out
}

// closeChannelsIn closes, with 1012, the local channels that frames in msg
// are for.
func (b *Broker) closeChannelsIn(msg []byte, why string) {
	ids := map[uint64]bool{}
	for len(msg) > 0 {
		ft, body, rest, err := protocol.Next(msg)
		if err != nil {
			break
		}
		if ch, ok := channelOf(ft, body); ok && NodeOf(ch) == b.cfg.NodeNum {
			ids[ch] = true
		}
		msg = rest
	}
	if len(ids) == 0 {
		return
	}
	b.mu.RLock()
	regs := b.registrationsLocked()
	b.mu.RUnlock()
	for _, reg := range regs {
		reg.each(func(ch *Channel) {
			if ids[ch.id] {
				b.log.Warn("closing channel: cluster frames lost", "channel", ch.id, "why", why)
				ch.brokerClose(1012, "service restart")
			}
		})
	}
}

// closeCrossNodeChannels closes, with 1012, every local channel served by
// an instance on another node.
func (b *Broker) closeCrossNodeChannels() {
	b.mu.RLock()
	regs := b.registrationsLocked()
	b.mu.RUnlock()
	for _, reg := range regs {
		reg.each(func(ch *Channel) {
			ch.mu.Lock()
			remote := ch.servedBy != 0 && NodeOf(ch.servedBy) != b.cfg.NodeNum
			ch.mu.Unlock()
			if remote {
				ch.brokerClose(1012, "service restart")
			}
		})
	}
}

// remoteFramesLost closes, with 1012, this node's channels served by a
// remote instance whose frames toward them were lost on the way: the
// service may have sent them messages they will never get, and a client
// must be told rather than silently miss them.
func (b *Broker) remoteFramesLost(id uint64) {
	b.mu.RLock()
	regs := b.registrationsLocked()
	b.mu.RUnlock()
	for _, reg := range regs {
		reg.each(func(ch *Channel) {
			ch.mu.Lock()
			hit := ch.servedBy == id
			ch.mu.Unlock()
			if hit {
				ch.brokerClose(1012, "service restart")
			}
		})
	}
}

// nodeLost tells local instances that the channels of a lost node are gone
// (Close 1006), and detaches the proxies of its instances.
func (b *Broker) nodeLost(node uint64) {
	b.mu.Lock()
	b.lostNodes[node] = true
	b.mu.Unlock()
	for _, id := range b.remoteInstances(node) {
		b.remoteInstanceDown(id, "node lost")
	}
	b.mu.RLock()
	links := make([]*Instance, 0, len(b.links))
	for _, inst := range b.links {
		links = append(links, inst)
	}
	b.mu.RUnlock()
	for _, inst := range links {
		for _, ch := range inst.remoteChans.dropNode(node) {
			inst.sendFrame(&protocol.Close{Channel: ch, Code: 1006, Reason: "node lost"})
		}
	}
}

// channelOf reads the channel id that starts a frame body, for the frame
// types that carry one.
func channelOf(ft protocol.Type, body []byte) (uint64, bool) {
	switch ft {
	case protocol.TypeData, protocol.TypeAck, protocol.TypeClose, protocol.TypeAccept, protocol.TypeRespond, protocol.TypeReject:
		v, n := binary.Uvarint(body)
		return v, n > 0
	}
	return 0, false
}
