package main

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/portmap"
)

// TestPortmapMetrics: Status changes drive the switchboard_portmap_* metrics.
func TestPortmapMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	p, err := newPortmapper(false, "", reg)
	if err != nil {
		t.Fatal(err)
	}
	// metrics returns mapped, external port, lost and errors as gathered.
	metrics := func() [4]float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var got [4]float64
		for _, mf := range mfs {
			for i, name := range []string{"switchboard_portmap_mapped", "switchboard_portmap_external_port", "switchboard_portmap_lost_total", "switchboard_portmap_errors_total"} {
				if mf.GetName() == name {
					m := mf.GetMetric()[0]
					got[i] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
				}
			}
		}
		return got
	}
	check := func(want [4]float64) {
		t.Helper()
		if got := metrics(); got != want {
			t.Fatalf("mapped, external_port, lost_total, errors_total = %v, want %v", got, want)
		}
	}
	ip := netip.MustParseAddr("203.0.113.7")
	p.observe(portmap.Status{Protocol: "pcp", Err: "no answer"})
	p.observe(portmap.Status{Protocol: "pcp", Err: "no answer"}) // same reason: counted once
	check([4]float64{0, 0, 0, 1})
	p.observe(portmap.Status{Protocol: "pcp", Mapped: true, ExternalIP: ip, ExternalPort: 18080, LeaseExpires: time.Now().Add(time.Hour)})
	check([4]float64{1, 18080, 0, 1})
	p.observe(portmap.Status{Protocol: "pcp", Lost: 1, Err: "gateway restarted"})
	p.observe(portmap.Status{Protocol: "pcp", Mapped: true, ExternalIP: ip, ExternalPort: 18080, Lost: 1})
	check([4]float64{1, 18080, 1, 2})
}

// TestPublicURL: mapped scope URLs name the external address and port (or
// the ACME name), with the scheme of the broker's port.
func TestPublicURL(t *testing.T) {
	mapped := portmap.Status{Mapped: true, ExternalIP: netip.MustParseAddr("203.0.113.7"), ExternalPort: 18080}
	on443 := mapped
	on443.ExternalPort = 443
	for _, c := range []struct {
		scope, scheme, host string
		s                   portmap.Status
		want                string
	}{
		{"ws://127.0.0.1:8080/echo/", "ws", "", mapped, "ws://203.0.113.7:18080/echo/"},
		{"ws://127.0.0.1:8080/echo/", "ws", "", portmap.Status{}, "ws://127.0.0.1:8080/echo/"},
		{"wss://10.0.0.2:8443/a/b/", "wss", "", mapped, "wss://203.0.113.7:18080/a/b/"},
		{"wss://10.0.0.2:8443/a/", "wss", "home.example.org", on443, "wss://home.example.org/a/"},
		{"ws://localhost:8080/x/", "wss", "home.example.org", mapped, "wss://home.example.org:18080/x/"},
	} {
		if got := publicURL(c.scope, c.scheme, c.host, c.s); got != c.want {
			t.Errorf("publicURL(%q, %s, %q, mapped %v) = %q, want %q", c.scope, c.scheme, c.host, c.s.Mapped, got, c.want)
		}
	}
}

// TestPortmapFlagMisuse: an unknown --portmap protocol is a usage error.
func TestPortmapFlagMisuse(t *testing.T) {
	out, err := testutil.Command(t, "serve", "--listen", "127.0.0.1:0", "--portmap", "carrier-pigeon").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "unknown protocol") {
		t.Fatalf("serve --portmap carrier-pigeon: %v, output %s; want exit 2 naming the protocol", err, out)
	}
}
