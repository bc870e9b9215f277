package broker

import (
	"context"
	"time"
)

// The hold: a registration whose service asked for it (Hello.Hold) keeps
// its scope while it has no active instance (a service restarting, a page
// reloading), and a new client's connect waits for the next instance up
// to the hold instead of being refused at once. It is opt-in because a
// held connect reveals that the registration exists (docs/SECURITY.md).

// holdOf caps a Hello's hold (milliseconds) by the accept timeout.
func (b *Broker) holdOf(ms uint64) time.Duration {
	d := time.Duration(min(ms, uint64(time.Hour/time.Millisecond))) * time.Millisecond
	return min(d, b.cfg.Limits.AcceptTimeout)
}

// setHoldLocked records the hold of the newest instance. reg.mu held.
func (reg *Registration) setHoldLocked(d time.Duration) {
	reg.hold = d
	reg.holdUntil = time.Time{}
	if reg.holdTimer != nil {
		reg.holdTimer.Stop()
		reg.holdTimer = nil
	}
}

// startHoldLocked begins a hold after the last instance left; the
// registration is removed at its end if still idle. reg.mu held.
func (reg *Registration) startHoldLocked() {
	if reg.hold <= 0 || reg.gone {
		return
	}
	reg.holdUntil = time.Now().Add(reg.hold)
	reg.wakeHeldLocked() // connects that saw the instance dying look again
	if reg.holdTimer != nil {
		reg.holdTimer.Stop()
	}
	reg.holdTimer = time.AfterFunc(reg.hold, func() {
		reg.mu.Lock()
		reg.holdUntil = time.Time{}
		reg.holdTimer = nil
		reg.mu.Unlock()
		reg.b.removeIfIdle(reg)
	})
}

// holdingLocked reports whether the registration is in a hold. reg.mu held.
func (reg *Registration) holdingLocked() bool {
	return !reg.holdUntil.IsZero() && time.Now().Before(reg.holdUntil)
}

// stopHoldLocked ends a hold for good (shutdown). reg.mu held.
func (reg *Registration) stopHoldLocked() {
	if reg.holdTimer != nil {
		reg.holdTimer.Stop()
		reg.holdTimer = nil
	}
	reg.holdUntil = time.Time{}
	reg.wakeHeldLocked()
}

// wakeHeldLocked wakes the connects waiting for an instance. reg.mu held.
func (reg *Registration) wakeHeldLocked() {
	if reg.activated != nil {
		close(reg.activated)
		reg.activated = nil
	}
}

// awaitActive waits, during a hold, for an active instance: it returns
// one, or nil when there is no hold, it ends, the client leaves, the
// broker shuts down, or MaxPendingConnects connects wait already.
func (reg *Registration) awaitActive(ctx context.Context) *Instance {
	reg.mu.Lock()
	if reg.held >= reg.b.cfg.Limits.MaxPendingConnects {
		reg.mu.Unlock()
		return nil
	}
	reg.held++
	reg.mu.Unlock()
	defer func() {
		reg.mu.Lock()
		reg.held--
		reg.mu.Unlock()
	}()
	var dyingUntil time.Time // while a dead instance is not yet detached
	for {
		reg.mu.Lock()
		a := reg.active.Load()
		if a != nil && !a.dead.Load() {
			reg.mu.Unlock()
			return a
		}
		if reg.gone || reg.hold <= 0 {
			reg.mu.Unlock()
			return nil
		}
		until := reg.holdUntil
		if a != nil {
			// The active instance died and its detach (which starts the
			// hold and wakes us) is on its way.
			if dyingUntil.IsZero() {
				dyingUntil = time.Now().Add(reg.hold)
			}
			until = dyingUntil
		}
		if until.IsZero() || !time.Now().Before(until) {
			reg.mu.Unlock()
			return nil
		}
		if reg.activated == nil {
			reg.activated = make(chan struct{})
		}
		woken, left := reg.activated, time.Until(until)
		reg.mu.Unlock()
		t := time.NewTimer(left)
		select {
		case <-woken:
			t.Stop()
		case <-t.C:
			if a := reg.active.Load(); a != nil && !a.dead.Load() {
				return a
			}
			return nil
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-reg.b.shutdown:
			t.Stop()
			return nil
		}
	}
}
