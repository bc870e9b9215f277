//go:build race

package cluster_test

// raceEnabled: the race detector slows everything several times; heartbeats
// need a longer node timeout to mean anything.
const raceEnabled = true
