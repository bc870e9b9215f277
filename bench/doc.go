// Package bench is Switchboard's benchmark harness: it starts Switchboard and
// its peers (a direct echo server, nginx with one and two workers, HAProxy
// with one and two threads, Pushpin) side by side on loopback,
// drives each with the same github.com/coder/websocket load generator, and
// reports every figure as a ratio against the direct echo server and
// against each peer, measured in the same run.
//
// Scenarios: echo ping-pong throughput with server CPU per round trip,
// latency at a fixed rate, connect rate, idle memory per connection,
// fan-out delivery time (to the kernel's receive timestamp on each client's
// socket, see fanWatch), and cross-node relay in a cluster. Targets are
// measured interleaved, in rounds, and the median of the rounds is
// reported, because the machine is small and noisy. "The best proxy" in the
// goals is, figure by figure, the best of the four nginx and HAProxy runs.
// Switchboard's idle memory is also measured at more points (each on a
// fresh broker), with the least-squares slope, and per wss:// and per
// permessage-deflate client.
//
// The soak (soak.go) runs the real `switchboard serve --config` (a
// production config: a credential owns the scope, an admin token guards
// /metrics, no --dev) as a process of its own, with 15,000 idle clients that
// answer its pings and 500 active ones in echo sessions held by the
// harness's process (a file limit of 20,000 per process would not fit both
// ends in one), and samples the broker's RSS (/proc) and its goroutines and
// heap (/metrics) through the run; smoke mode runs it small, in the test
// suite.
//
// The cluster scenario (issues 7 and 14) runs two brokers clustered over
// Debian's nats-server, with data links unless Mode.ClusterOverNATS, and
// compares a client on the echo service's node with a client on the other
// node, on the same processes in the same run.
//
// The package knows processes, sockets and /proc; it knows nothing of the
// broker's internals: Switchboard is driven through its CLI binary like
// any other target, except for fan-out, where the harness attaches its own
// service with the Go SDK (sdk.Listen, Listener.Push), since no CLI
// command pushes on a trigger.
package bench
