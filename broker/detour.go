package broker

import "io"

// A Detourer is a connection that can hand its reads and writes to
// another reader and writer: after Detour(rw), Read and Write call rw's.
// The server's accepted connections are Detourers, so that a wss://
// client runs on the broker's loops: crypto/tls keeps its *tls.Conn (the
// handshake and the session's keys), and ServePolled detours the
// connection under it to a non-blocking wire of the loop's.
type Detourer interface {
	Detour(rw io.ReadWriter)
}
