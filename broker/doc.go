// Package broker is Switchboard's core: the registry of scopes, the connect
// flow, channels and the relay between clients and service instances, and
// handover between instances.
//
// It works on WebSocket connections that a transport has already accepted
// (package server does the HTTP side): Offer asks the service about a client
// handshake, Serve relays an accepted client, ServeLink runs a service link.
// It knows nothing of flags, files or HTTP muxes.
//
// Lock order (outer to inner): Broker.mu, Registration.mu, Channel.mu,
// Instance.outMu. Instance.pendMu is a leaf. Helpers that need a lock held end
// in Locked.
package broker
