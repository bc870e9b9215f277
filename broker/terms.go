package broker

import (
	"context"
	"time"

	"github.com/switchboard-dev/switchboard/protocol"
	"github.com/switchboard-dev/switchboard/scope"
)

// Terms bound one instance's attachment. Config.Authorize may fill them in
// (AuthRequest.Terms) when it admits a service on limited terms: a listen
// grant that expires or caps channels, an anonymous page's private scope
// with a lifetime (package grant).
type Terms struct {
	// Expires ends the instance's link at this time with an Unauthorized
	// error ("… expired"); its channels stay with the registration for the
	// next instance, as after any detach. Zero: no end.
	Expires time.Time
	// ExpiredMessage is the Error frame's message at Expires. Empty:
	// "listen grant expired".
	ExpiredMessage string
	// MaxChannels caps the registration's open channels while this
	// instance is active: connects beyond it are rejected (reason
	// "channel_cap"), like any rejection. 0: no cap.
	MaxChannels int
	// Release is called once when the instance detaches (or when the
	// attach fails after Authorize admitted it). Nil: nothing.
	Release func()
}

type linkOriginKey struct{}

// WithLinkOrigin returns ctx carrying the Origin header of a service link's
// WebSocket handshake, for AuthRequest.Origin (the transport sets it; a
// page's link has one, a process's usually none). It is kept in canonical
// form (scope.CanonicalOrigin), so that every policy compares the same
// spelling; a value that is no origin ("null") is kept as it came, and
// matches no listed origin.
func WithLinkOrigin(ctx context.Context, origin string) context.Context {
	if origin == "" {
		return ctx
	}
	if o, err := scope.CanonicalOrigin(origin); err == nil {
		origin = o
	}
	return context.WithValue(ctx, linkOriginKey{}, origin)
}

func linkOrigin(ctx context.Context) string {
	s, _ := ctx.Value(linkOriginKey{}).(string)
	return s
}

// startTerms arms the instance's expiry; the returned stop undoes it and
// calls Release. Called once the instance is attached.
func (inst *Instance) startTerms(t *Terms) (stop func()) {
	var timer *time.Timer
	if !t.Expires.IsZero() {
		msg := t.ExpiredMessage
		if msg == "" {
			msg = "listen grant expired"
		}
		timer = time.AfterFunc(time.Until(t.Expires), func() {
			inst.b.log.Info("instance terms expired", "scope", inst.reg.scope.String(), "instance", inst.id)
			inst.fail(&linkError{protocol.ErrCodeUnauthorized, msg})
		})
	}
	return func() {
		if timer != nil {
			timer.Stop()
		}
		if t.Release != nil {
			t.Release()
		}
	}
}

// overChannelCap reports whether the registration already holds as many
// channels as the active instance's terms allow.
func (reg *Registration) overChannelCap(inst *Instance) bool {
	if inst.maxChannels <= 0 {
		return false
	}
	reg.mu.Lock()
	n := len(reg.channels)
	reg.mu.Unlock()
	return n >= inst.maxChannels
}
