// Package protocol defines the Switchboard service protocol: the frames that a
// broker and a service exchange over a service link, their binary layout, and
// the protocol version. It is the one definition shared by the broker, the Go
// SDK and (through docs/PROTOCOL.md and the test vectors in testdata/) the
// JavaScript library.
//
// A service link is a WebSocket connection from a service to the broker at
// LinkPath, negotiated with the subprotocol Subprotocol. Every WebSocket
// message on the link is binary and carries one or more frames back to back:
//
//	frame   = type:u8 length:uvarint body[length]
//
// Integers inside bodies are unsigned LEB128 varints ("uvarint"), strings and
// byte strings are a uvarint length followed by the bytes, lists are a uvarint
// count followed by the elements. The data-path frames (Data, Ack, Credit) are
// encoded and decoded without allocating.
//
// Protocol flow (see docs/PROTOCOL.md for the whole story):
//
//	service                          broker
//	Hello{scope, credential, ...} -->
//	                              <-- Welcome{instance, active, window}   or Error + close
//	                              <-- Connect{channel, origin, target, handshake}
//	Accept / Respond / Reject     -->
//	                              <-- Data{channel, seq, payload}   (client → service)
//	Ack{channel, seq}             -->
//	Data{channel, payload}        -->                               (service → client)
//	                              <-- Credit{channel, bytes}
//	Close{channel, code, reason}  <->
//	                              <-- Open{channel info}  (channels handed over)
//	                              <-- State{active}       (takeover)
//
// This package knows nothing of sockets, brokers or the SDK.
package protocol
