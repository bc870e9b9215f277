// Package sdk lets a Go program accept WebSocket connections through a
// Switchboard broker, without owning a public port.
//
// Listen opens a service link to the broker and registers a scope (a URL
// prefix such as ws://127.0.0.1:8080/echo/). Clients then connect to URLs
// under that scope with any standard WebSocket client; for each one the
// broker asks this service through Listener.Accept, and the service answers
// with Request.Accept, Request.Respond or Request.Reject. An accepted client
// is a Channel that reads and writes whole messages.
//
// Channels belong to the registration, not to the listener that accepted
// them: when a listener goes away (Close, a crash, a broken network), the
// broker keeps its clients connected and hands their channels to the next
// listener of the same scope, which receives them from Accept as requests
// with Resumed set. Every client message is delivered at least once, in
// order: Channel.Read acknowledges the previous message when it is called
// again, so a message is acknowledged only after the handler has dealt with
// it, and messages that were delivered but not acknowledged are delivered
// again to the next listener.
//
// Attach keeps an instance attached across lost links and broker restarts
// (backoff with jitter): its Service.Accept goes on from link to link, the
// channels that stayed open come back as resumed requests, and a Service
// that a newer instance supersedes drains and detaches. `switchboard
// listen` is built on it. Listen is a single link.
//
// No client is left waiting: a Request whose Accept or Respond fails is
// rejected at once (Request.Choose picks a subprotocol Accept always
// takes), at most ListenOptions.MaxPending requests wait for Accept (more
// are rejected at once), and requests that waited past the broker's accept
// timeout are dropped; Listener.Stats counts each case.
//
// A client's close is answered, not just received: Channel.Read returns
// the client's websocket.CloseError after every message sent before it,
// and answers the close then, after what the handler wrote in reply (the
// broker holds a client's close until the answer, so that those
// replies reach it). Channel.HoldClose leaves the answer to Channel.Close,
// for replies that come later from elsewhere.
//
// Memory is bounded: the broker never sends a channel more unacknowledged
// bytes than the window the listener asked for, and Channel.Write waits for
// credit from the broker, so a client that does not read holds back only its
// own channel.
//
// The wire protocol is package protocol, documented in docs/PROTOCOL.md.
// This package knows nothing of the broker's internals or of the CLI.
package sdk
