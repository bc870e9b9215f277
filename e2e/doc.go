// Package e2e holds end-to-end tests: the broker over real sockets with
// clients nobody here wrote (Python websockets, Node ws), the raw-frame
// conformance cases, and the real switchboard binary in separate processes
// (serve, listen, connect, SIGTERM, SIGKILL handover cycles).
package e2e
