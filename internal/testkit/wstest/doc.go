// Package wstest is the test kit for RFC 6455 conformance and interop.
//
// It speaks to a WebSocket echo endpoint over a raw TCP socket with frames
// built by hand (Frame, AppendFrame, ReadFrame), so that it can send what no
// library would: reserved bits, unknown opcodes, unmasked or oversized
// frames, broken UTF-8. Cases returns the checks, grouped like the
// categories of the Autobahn testsuite; Run runs them all as subtests
// against an endpoint that follows the broker's relay policy:
//
//   - text and binary messages come back as they were sent, fragments joined;
//   - invalid UTF-8 in a text message closes with 1007, a message over the
//     limit with 1009;
//   - protocol errors (reserved bits or opcodes, bad control frames,
//     unmasked frames, broken fragmentation, invalid close codes or
//     reasons) close with 1002 or drop the connection, never echo;
//   - a ping gets a pong with its payload; a close gets a close back and
//     the end of the TCP connection.
//
// RawHandshake, RawResponse and ReadRawResponse give the handshake and its
// HTTP response as bytes, for tests that compare rejections byte for byte.
// RunClient drives the third-party clients under tests/interop (Python
// websockets, Node ws).
//
// The package knows nothing of the broker: it sees a URL.
package wstest
