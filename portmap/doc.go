// Package portmap asks the home router to forward an external TCP port to a
// local one, and keeps that mapping alive: it renews the lease, notices a
// gateway restart or a new external address and maps again, and removes the
// mapping on Shutdown. It speaks PCP (RFC 6887 MAP), NAT-PMP (RFC 6886) and
// UPnP IGD (WANIPConnection:1/2, WANPPPConnection:1, through
// github.com/huin/goupnp); Auto tries them in that order.
//
// Failure is reported, never fatal: Start fails only for an invalid Config;
// a missing gateway or a refusal shows in Status.Err and is retried with
// backoff. Status is the only output (for logs, metrics and admin APIs).
//
// The package knows nothing of the broker, its flags or HTTP. See
// docs/PORTMAP.md for the protocol order, the failures and how the tests
// build a real gateway (miniupnpd in network namespaces).
package portmap
