package broker

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-dev/switchboard/scope"
)

// Registration is a scope with its instances and channels. Channels belong
// to the registration, not to the instance that accepted them.
type Registration struct {
	b     *Broker
	scope scope.Scope // static
	owner string      // static

	active atomic.Pointer[Instance] // written under mu; read without it on the relay path

	mu        sync.Mutex
	instances []*Instance         // attach order; guarded by mu
	channels  map[uint64]*Channel // guarded by mu
	pending   int                 // unanswered connect requests; guarded by mu
	timer     *time.Timer         // handover timeout while no instance is active; guarded by mu
	gone      bool                // removed from the registry; guarded by mu

	// The hold (hold.go); guarded by mu.
	hold      time.Duration // the newest instance's Hello.Hold, capped
	holdUntil time.Time     // end of the hold in force; zero: none
	holdTimer *time.Timer   // removes the registration when the hold ends idle
	activated chan struct{} // closed when an instance becomes active; nil: nobody waits
	held      int           // connects waiting in awaitActive
}

// attach adds inst, keeping instances in attach order across nodes (order,
// then id: no clock is compared), and reports whether it is the newest.
// With standby (Hello flag HelloStandby), an instance whose label is the
// live active instance's is placed just before it instead, on every node:
// it waits, and becomes active when that one goes away; inst.standby says
// so. Called with b.mu held, before inst is shared. welcome (nil for a
// remote instance) queues the link's Welcome under reg.mu, once standby is
// known: a detach of the active instance, which takes reg.mu but not b.mu,
// may make inst active as soon as reg.mu is let go, and its State and Open
// frames must follow the Welcome.
func (reg *Registration) attach(inst *Instance, standby bool, welcome func()) bool {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if reg.gone {
		if welcome != nil {
			welcome()
		}
		return false
	}
	if a := reg.active.Load(); standby && a != nil && !a.dead.Load() && a.label == inst.label && a.order > 0 {
		inst.order, inst.standby, inst.standbyFor = a.order-1, true, a.id
	}
	i := len(reg.instances)
	for i > 0 && inst.before(reg.instances[i-1]) {
		i--
	}
	reg.instances = append(reg.instances, nil)
	copy(reg.instances[i+1:], reg.instances[i:])
	reg.instances[i] = inst
	if i == len(reg.instances)-1 {
		reg.setHoldLocked(inst.hold)
	}
	if welcome != nil {
		welcome()
	}
	return i == len(reg.instances)-1
}

// before reports whether inst attached before o.
func (inst *Instance) before(o *Instance) bool {
	if inst.order != o.order {
		return inst.order < o.order
	}
	return inst.id < o.id
}

// activate makes inst the active instance: it is told of every open channel
// (Open), then each channel's waiting messages flow to it. A live older
// active instance is told it is no longer active.
func (reg *Registration) activate(inst *Instance) {
	reg.mu.Lock()
	old := reg.active.Load()
	if inst.dead.Load() || old == inst || reg.gone {
		reg.mu.Unlock()
		return
	}
	reg.stopTimerLocked()
	chans := make([]*Channel, 0, len(reg.channels))
	for _, ch := range reg.channels {
		chans = append(chans, ch)
	}
	sort.Slice(chans, func(i, j int) bool { return chans[i].id < chans[j].id })
	for _, ch := range chans {
		inst.sendFrame(&ch.info)
	}
	reg.active.Store(inst)
	reg.wakeHeldLocked()
	reg.mu.Unlock()

	if old != nil && !old.dead.Load() {
		old.sendState(false)
		reg.b.log.Info("instance superseded", "scope", reg.scope.String(), "old", old.id, "new", inst.id)
	}
	if len(chans) > 0 {
		reg.b.m.handovers.Inc()
		reg.b.log.Info("channels handed over", "scope", reg.scope.String(), "instance", inst.id, "channels", len(chans))
	}
	for _, ch := range chans {
		ch.mu.Lock()
		ch.pumpLocked()
		ch.mu.Unlock()
	}
}

// detach removes a dead instance. Its unacknowledged messages become unsent
// again; if it was active, the newest remaining instance takes over, or the
// handover timer starts.
func (reg *Registration) detach(inst *Instance) {
	reg.mu.Lock()
	for i, x := range reg.instances {
		if x == inst {
			reg.instances = append(reg.instances[:i], reg.instances[i+1:]...)
			break
		}
	}
	wasActive := reg.active.Load() == inst
	var next *Instance
	if wasActive {
		reg.active.Store(nil)
		if n := len(reg.instances); n > 0 {
			next = reg.instances[n-1]
		} else {
			reg.startHoldLocked()
			if len(reg.channels) > 0 && !reg.gone {
				reg.timer = time.AfterFunc(reg.b.cfg.Limits.HandoverTimeout, reg.handoverExpired)
			}
		}
	}
	chans := make([]*Channel, 0, len(reg.channels))
	for _, ch := range reg.channels {
		chans = append(chans, ch)
	}
	reg.mu.Unlock()

	for _, ch := range chans {
		ch.mu.Lock()
		ch.instanceGoneLocked(inst)
		ch.pumpLocked() // a superseded instance left: its unacked messages go to the active one now
		done := ch.done
		ch.mu.Unlock()
		if done {
			ch.reg.removeChannel(ch)
		}
	}
	if next != nil {
		next.sendState(true)
		reg.activate(next)
	}
	reg.b.removeIfIdle(reg)
}

// handoverExpired closes every channel with 1012 when no instance became
// active in time.
func (reg *Registration) handoverExpired() {
	reg.mu.Lock()
	if reg.active.Load() != nil || reg.timer == nil {
		reg.mu.Unlock()
		return
	}
	reg.timer = nil
	chans := make([]*Channel, 0, len(reg.channels))
	for _, ch := range reg.channels {
		chans = append(chans, ch)
	}
	reg.mu.Unlock()
	reg.b.log.Warn("handover timed out: closing channels", "scope", reg.scope.String(), "channels", len(chans))
	for _, ch := range chans {
		ch.brokerClose(1012, "service restart")
	}
}

func (reg *Registration) stopTimerLocked() {
	if reg.timer != nil {
		reg.timer.Stop()
		reg.timer = nil
	}
}

// addChannel records a channel accepted by inst. If another instance is
// active by now, that one is told of it.
func (reg *Registration) addChannel(ch *Channel, by *Instance) bool {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if reg.gone {
		return false
	}
	if reg.channels == nil {
		reg.channels = make(map[uint64]*Channel)
	}
	reg.channels[ch.id] = ch
	if a := reg.active.Load(); a != nil && a != by {
		a.sendFrame(&ch.info)
	}
	return true
}

func (reg *Registration) channel(id uint64) *Channel {
	reg.mu.Lock()
	ch := reg.channels[id]
	reg.mu.Unlock()
	return ch
}

func (reg *Registration) removeChannel(ch *Channel) {
	reg.mu.Lock()
	_, ok := reg.channels[ch.id]
	delete(reg.channels, ch.id)
	reg.mu.Unlock()
	if ok {
		reg.b.m.channels.Dec()
		reg.b.removeIfIdle(reg)
	}
}

// each calls f for every channel, outside reg.mu.
func (reg *Registration) each(f func(*Channel)) {
	reg.mu.Lock()
	chans := make([]*Channel, 0, len(reg.channels))
	for _, ch := range reg.channels {
		chans = append(chans, ch)
	}
	reg.mu.Unlock()
	for _, ch := range chans {
		f(ch)
	}
}

// shutdown closes channels with 1001 and detaches instances.
func (reg *Registration) shutdown() {
	reg.mu.Lock()
	reg.stopTimerLocked()
	reg.stopHoldLocked()
	insts := append([]*Instance(nil), reg.instances...)
	reg.mu.Unlock()
	reg.each(func(ch *Channel) { ch.brokerClose(1001, "going away") })
	for _, inst := range insts {
		inst.fail(errShutdown)
	}
}

func (reg *Registration) status() RegistrationStatus {
	reg.mu.Lock()
	rs := RegistrationStatus{Scope: reg.scope.String(), Owner: reg.owner, Pending: reg.pending,
		Instances: []InstanceStatus{}, Channels: []ChannelStatus{}}
	active := reg.active.Load()
	for _, inst := range reg.instances {
		rs.Instances = append(rs.Instances, InstanceStatus{ID: inst.id, Node: inst.node, Label: inst.label, Active: inst == active,
			Remote: inst.remote, Since: inst.since})
	}
	chans := make([]*Channel, 0, len(reg.channels))
	for _, ch := range reg.channels {
		chans = append(chans, ch)
	}
	reg.mu.Unlock()
	for _, ch := range chans {
		rs.Channels = append(rs.Channels, ch.status())
	}
	sort.Slice(rs.Channels, func(i, j int) bool { return rs.Channels[i].ID < rs.Channels[j].ID })
	return rs
}
