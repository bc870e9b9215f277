// Package broker is Switchboard's core: the registry of scopes, the connect
// flow, channels and the relay between clients and service instances, and
// handover between instances.
//
// It works on WebSocket connections that a transport has already accepted
// (package server does the HTTP side): Offer asks the service about a client
// handshake, Serve and ServePolled relay an accepted client, ServeLink runs
// a service link.
// It knows nothing of flags, files or HTTP muxes.
//
// A channel reaches its client through a clientConn (client.go): the
// channel hands it messages (wake, then nextOut/wroteOut), holds back a
// client message it has no room for (received returns recvHeld until the
// channel calls resume), and asks it for pings; the transport calls the
// channel back when the client's messages or close arrive. Two transports
// implement it:
//
//   - pollClient (client_poll.go, Linux): ws:// and wss:// clients, with or
//     without permessage-deflate, on epoll loops (internal/netpoll) with
//     gobwas/ws's frame rules. ServePolled returns at once; the connection
//     then holds no goroutine, and a buffer only while a message is in
//     flight. A wss:// client keeps its *tls.Conn (crypto/tls did the
//     handshake in net/http's goroutine); the connection under it is
//     detoured (Detourer) to a wire of the loop's (client_poll_tls.go):
//     reads are non-blocking, and the ciphertext of a write waits in the
//     wire while the socket is full. crypto/tls keeps its record buffers
//     and keys per connection, which is what a wss:// client costs beyond a
//     ws:// one.
//   - wsClient (client_ws.go): clients on other systems than Linux, clients
//     whose TLS connection did not come from the server's listener or came
//     over HTTP/2, and every client with server.Config.GoroutineClients, on
//     coder/websocket, with goroutines per connection.
//
// A client that closes first: pollClient passes its close frame to the
// service (Channel.clientClosing) and goes on writing the service's
// messages until the service's Close, which it sends as its close frame,
// or until Limits.CloseTimeout, when it echoes the client's close.
// coder/websocket answers a close frame as soon as it reads one, so a
// wsClient's connection is read through a CloseHold (closehold.go), which
// keeps the client's close frame from the library, and tells the channel,
// until the service's Close or the close timeout.
//
// Goroutines, and when they exist:
//
//	per broker   keepalive ticker    from New until Shutdown; every ping_interval asks
//	                                 every client for a ping and waits for none (a
//	                                 silent client is cut at the next tick)
//	             epoll loops         GOMAXPROCS of them (internal/netpoll), from the
//	                                 first polled client until Shutdown; every polled
//	                                 client's reads, parsing, writes, pings and closes
//	                                 run on its loop; an idle loop is parked in Go's
//	                                 poller, not in a blocking epoll_wait
//	per link     ServeLink (net/http's handler goroutine): reader  ┐ for the link's
//	             writeLoop, pingLoop                                ┘ life
//	             one more while an ending link writes its Error frame (bounded)
//	per remote   writeLoop           a service instance on another node (cluster.go),
//	instance                         from its attach until it detaches
//	per client   net/http's handler goroutine, from the request until the service
//	handshake                        accepts or refuses (a refusal also waits out the
//	                                 refusal floor); Offer runs in it
//	per polled   none, idle or busy; its handshake goroutine returns once ServePolled
//	client                           has registered the connection with a loop (a timer
//	                                 bounds a close the broker started, lingerTime,
//	                                 and one the client started, Limits.CloseTimeout)
//	per wsClient Serve (the handshake's goroutine, kept): readLoop  ┐ for the
//	             writeLoop                                           ┘ connection's life
//	             ping                from a ping until its pong (or its timeout)
//
// Timers (handover, hold, a grant's expiry, the accept timeout) hold no
// goroutine until they fire.
//
// A relayed message costs, on the client's side, one read (a read that does
// not fill the buffer, on an edge of data alone, took all there was) and
// one writev of header and payload, both raw system calls on the client's
// loop (over TLS: reads until EAGAIN, and one write of the record that
// holds header and payload); on the link's side the frames of many clients share one write and
// one read (the link's connection reads and writes raw too:
// internal/rawconn).
//
// So N idle ws:// or wss:// clients over one link cost the broker 1 + GOMAXPROCS + 3
// goroutines, whatever N; the soak in bench/ (make bench) samples the
// count through /metrics to check it stays flat under load.
//
// Every goroutine is counted in Broker.wg (Serve and ServeLink through
// enter, the others through track) and ends by Shutdown; a polled client
// counts in it from ServePolled until its connection closes, and the loops
// stop once every client is gone.
//
// Lock order (outer to inner): Broker.mu, Registration.mu, Channel.mu,
// Instance.outMu. Instance.pendMu is a leaf. Helpers that need a lock held end
// in Locked. A clientConn's methods are called with Channel.mu held (ping
// aside) and take none of these locks; a loop calls into channels with no
// lock of its own held.
package broker
