// Package testkit holds, in its sub-packages, the code only tests use, so
// that internal/ shows at a glance what ships and what does not:
//
//   - testutil: condition waits (WaitFor), the race-detector flag, and the
//     starters of brokers and processes that every suite shares;
//   - behaviour: the scenarios the Go SDK and the JS library both run;
//   - wstest: the raw-frame RFC 6455 conformance cases and the interop
//     drivers for other clients;
//   - streamtest: the ordered-stream checks of relay tests;
//   - soak: the long-running soak test (make soak);
//   - behaviour: the one behaviour suite of the service libraries
//     (scenarios.json), run against the Go SDK and the JS library.
//
// Production code (broker, sdk, server, cmd) never imports testkit; the
// packages beside it under internal/ (bufpool, netpoll, version, ...) are
// the production ones.
package testkit
