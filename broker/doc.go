// Package broker is Switchboard's core: the registry of scopes, the connect
// flow, channels and the relay between clients and service instances, and
// handover between instances.
//
// It works on WebSocket connections that a transport has already accepted
// (package server does the HTTP side): Offer asks the service about a client
// handshake, Serve relays an accepted client, ServeLink runs a service link.
// It knows nothing of flags, files or HTTP muxes.
//
// A channel reaches its client through a clientConn (client.go): the
// channel hands it messages (wake, then nextOut/wroteOut), holds back a
// client message it has no room for (received returns recvHeld until the
// channel calls resume), and asks it for pings; the transport calls the
// channel back when the client's messages or close arrive. The transport
// today is wsClient (client_ws.go, coder/websocket, goroutines per
// connection).
//
// Goroutines, and when they exist:
//
//	per broker:          keepalive ticker ─── every ping_interval: ping every client, no waiting
//	per service link:    ServeLink (reader) ── writeLoop ── pingLoop        for the link's life
//	per client (wsClient):
//	  Serve's goroutine (net/http's handler): readLoop   ─┐ for the connection's life;
//	  writeLoop                                          ─┘ an idle client holds both
//	  ping (track)       from a ping until its pong, or until it times out (cut)
//	  close linger       none: the reader finishes the closing handshake itself,
//	                     bounded by a 2 s timer that closes the socket
//
// Every goroutine is counted in Broker.wg (Serve and ServeLink through
// enter, the others through track) and ends by Shutdown.
//
// Lock order (outer to inner): Broker.mu, Registration.mu, Channel.mu,
// Instance.outMu. Instance.pendMu is a leaf. Helpers that need a lock held end
// in Locked. A clientConn's methods are called with Channel.mu held (ping
// aside) and take none of these locks.
package broker
