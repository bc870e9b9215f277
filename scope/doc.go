// Package scope is what both sides of Switchboard must agree on about an
// address: the scope of a registration (an optional host plus a path prefix
// that starts and ends with "/") and the wsapp:// URL of an app.
//
// The broker, the config, the apps policy, the server and the Go SDK all
// parse and compare addresses here, so that they can never disagree on what
// a scope is or which scope a request falls in. The package knows nothing
// of registrations, connections, credentials or metrics, and imports
// nothing of Switchboard but the protocol's constants: the SDK depends on
// it without pulling in the broker.
package scope
