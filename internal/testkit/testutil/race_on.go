//go:build race

package testutil

// RaceEnabled is set when the tests run under the race detector, which
// slows everything several times: timing-based tests widen their timeouts
// or skip on it.
const RaceEnabled = true
