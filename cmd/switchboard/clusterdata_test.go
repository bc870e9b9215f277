package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// TestProductionClusterDataLinks: two production brokers (config file, no
// --dev) cluster over Debian's nats-server with --cluster-data: each dials
// a data link to the other (logged, and switchboard_cluster_data_links is
// 1 on both), and a client on a reaches a service on b over them (the data
// message counters grow on both sides). A data address on every interface
// without --cluster-data-advertise stops serve with an error that says to
// give it.
func TestProductionClusterDataLinks(t *testing.T) {
	url := "nats://" + startDebianNATS(t, "")

	a := startProdBroker(t, "--node-name", "a", "--cluster", url, "--cluster-data", "127.0.0.1:0")
	b := startProdBroker(t, "--node-name", "b", "--cluster", url, "--cluster-data", "127.0.0.1:0")
	a.p.WaitLine(`level=INFO msg="data link up".* peer=b addr=127\.0\.0\.1:`)
	b.p.WaitLine(`level=INFO msg="data link up".* peer=a addr=127\.0\.0\.1:`)
	testutil.Eventually(t, "a data link up on both nodes", func() bool {
		return metric(a.http, "switchboard_cluster_data_links") == "1" && metric(b.http, "switchboard_cluster_data_links") == "1"
	})

	testutil.StartListen(t, b.ws+"/svc/echo/", "--echo", "--credential", b.secret)
	c := dialAcross(t, a.ws+"/svc/echo/x")
	defer c.CloseNow()
	for i := range 20 {
		send(t, c, websocket.MessageText, "across "+strconv.Itoa(i))
		expect(t, c, websocket.MessageText, "across "+strconv.Itoa(i))
	}
	count := func(base, direction string) float64 {
		v, _ := strconv.ParseFloat(metric(base, `switchboard_cluster_data_messages_total{direction="`+direction+`"}`), 64)
		return v
	}
	for _, n := range []struct {
		name string
		p    *prodBroker
	}{{"a", a}, {"b", b}} {
		if out, in := count(n.p.http, "out"), count(n.p.http, "in"); out == 0 || in == 0 {
			t.Errorf("node %s: %v messages out and %v in over data links, want both", n.name, out, in)
		}
	}

	_, stderr, code := testutil.Run(t, "", nil, "serve", "--config", a.cfg, "--node-name", "x", "--cluster", url, "--cluster-data", "0.0.0.0:0")
	if code == 0 || !strings.Contains(stderr, "--cluster-data-advertise") {
		t.Fatalf("--cluster-data 0.0.0.0:0 alone: exit %d, stderr %q; want a failure that says to give --cluster-data-advertise", code, stderr)
	}
}
