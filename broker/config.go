package broker

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/scope"
)

// Config configures a Broker. The zero value, with defaults filled in by New,
// is a working single-node broker that admits no service without Authorize.
type Config struct {
	// Logger receives the broker's logs. Nil: slog.Default().
	Logger *slog.Logger

	// Registerer receives the broker's metrics. Nil: a private registry
	// (metrics still work, nobody exports them).
	Registerer prometheus.Registerer

	// Node names this broker in logs and status. Empty: "local".
	Node string

	// Authorize decides whether a service may listen on a scope. It gets the
	// credential from Hello and returns the owner name to record (instances
	// of one registration must share an owner). Nil: every attach is refused.
	Authorize func(ctx context.Context, req AuthRequest) (owner string, err error)

	// PublicURL returns the URL clients use to reach scope, as told to
	// services in Welcome. Nil: the scope URL the service gave.
	PublicURL func(scopeURL string) string

	Limits Limits

	// Cluster connects this broker to other nodes; nil: a single node.
	Cluster Cluster
	// NodeNum is this node's number in the cluster, unique per node (see
	// NodeShift). 0 for a single node.
	NodeNum uint64
	// Now is this node's clock; nil: time.Now. Tests set it to a clock
	// that is minutes off: the order of instances across nodes must not
	// depend on it (see Registration.attach).
	Now func() time.Time
}

// AuthRequest is what Config.Authorize decides on.
type AuthRequest struct {
	Credential string
	Scope      scope.Scope
	Remote     netip.AddrPort
	// Origin is the Origin header of the link's handshake (a page's
	// origin), set by the transport with WithLinkOrigin; empty without one.
	Origin string
	// Private is set when the service asked for a fresh private scope
	// (Scope is that scope, made by the broker).
	Private bool
	// Terms, never nil, may be filled in to bound the attachment.
	Terms *Terms
}

// Limits bounds what the broker accepts and holds. Zero fields take the
// defaults documented on each.
type Limits struct {
	// MaxMessage is the largest message relayed in either direction; a
	// client that sends more is closed with 1009. Default 1 MiB.
	MaxMessage int
	// AcceptTimeout is how long a service has to answer a connect request.
	// Default 10 s.
	AcceptTimeout time.Duration
	// HandoverTimeout is how long channels wait for an active instance
	// before they are closed with 1012. Default 30 s.
	HandoverTimeout time.Duration
	// MaxPendingConnects bounds unanswered connect requests per
	// registration. Default 1024.
	MaxPendingConnects int
	// Window is the default per-channel bytes in flight to an instance
	// unacknowledged, and the credit a service starts with per channel.
	// Default 256 KiB.
	Window int
	// ChannelBuffer bounds the client bytes a channel holds (sent and not
	// acknowledged, or not yet sent); beyond it the broker stops reading
	// from that client. Default 1 MiB.
	ChannelBuffer int
	// TotalBuffer bounds those bytes over all channels. Default 256 MiB.
	TotalBuffer int64
	// LinkBuffer bounds the bytes queued to one service link; a service
	// that does not read past it is disconnected. Default 64 MiB.
	LinkBuffer int
	// PingInterval is how often clients are pinged; one that does not
	// answer within the next interval is cut. Default 30 s.
	PingInterval time.Duration
	// CloseTimeout bounds how long a client that sent its close
	// frame waits for the service's Close: the service's messages still
	// reach the client until then, and the broker answers the client's
	// close frame when the service's Close arrives or this time is up.
	// Default 3 s (under the 5 s most client libraries wait for the
	// answer).
	CloseTimeout time.Duration
}

func (l *Limits) setDefaults() {
	if l.MaxMessage <= 0 {
		l.MaxMessage = 1 << 20
	}
	if l.AcceptTimeout <= 0 {
		l.AcceptTimeout = 10 * time.Second
	}
	if l.HandoverTimeout <= 0 {
		l.HandoverTimeout = 30 * time.Second
	}
	if l.MaxPendingConnects <= 0 {
		l.MaxPendingConnects = 1024
	}
	if l.Window <= 0 {
		l.Window = 256 << 10
	}
	if l.ChannelBuffer <= 0 {
		l.ChannelBuffer = 1 << 20
	}
	if l.ChannelBuffer < l.Window {
		l.ChannelBuffer = l.Window
	}
	if l.TotalBuffer <= 0 {
		l.TotalBuffer = 256 << 20
	}
	if l.PingInterval <= 0 {
		l.PingInterval = 30 * time.Second
	}
	if l.CloseTimeout <= 0 {
		l.CloseTimeout = 3 * time.Second
	}
	if l.LinkBuffer <= 0 {
		l.LinkBuffer = 64 << 20
	}
	if l.LinkBuffer < 4*l.MaxMessage {
		l.LinkBuffer = 4 * l.MaxMessage
	}
}
