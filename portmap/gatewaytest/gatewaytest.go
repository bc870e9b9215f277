// Package gatewaytest builds a real home router for tests: Debian's
// miniupnpd (UPnP IGD, NAT-PMP, PCP) in network namespaces the test creates.
//
//	lan ns (10.77.0.2, default via .1) ──veth── gw ns (lan0 10.77.0.1, wan0 11.77.0.1, miniupnpd)
//	                                                  └──veth── wan ns (11.77.0.2, no default route)
//
// A program run in the LAN namespace (Gateway.Command) can map a port; a
// client run in the WAN namespace reaches it through GatewayWANAddr. It needs
// root, network namespaces, ip, nft and miniupnpd; where they are missing New
// fails the test with the apt line to fix it, or skips it when
// SWITCHBOARD_SKIP_NETNS=1.
//
// miniupnpd refuses to map behind a private or reserved WAN address, so the
// WAN side uses 11.77.0.0/24; it exists only inside these namespaces, which
// have no route out. See docs/PORTMAP.md.
package gatewaytest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Addresses inside the namespaces.
const (
	GatewayLANAddr = "10.77.0.1" // the LAN host's default gateway
	LANAddr        = "10.77.0.2"
	GatewayWANAddr = "11.77.0.1" // the external address mappings are made on
	WANAddr        = "11.77.0.2"
	DeniedPort     = 7777 // the gateway's policy refuses mappings to this internal port
)

var testbedSeq atomic.Int32

const prSetChildSubreaper = 36

var subreaper struct {
	sync.Once
	err error
}

// Gateway is one set of namespaces with miniupnpd running in GW.
type Gateway struct {
	LAN, GW, WAN string // namespace names, unique per process and Gateway

	t         testing.TB
	dir, conf string
	upnpOnly  bool
	mu        sync.Mutex
	daemonPID int       // running miniupnpd, 0 when stopped
	daemonUp  time.Time // when the running daemon started listening
}

// Require fails the test (or skips it with SWITCHBOARD_SKIP_NETNS=1) when
// this machine cannot build the gateway. New calls it.
func Require(t testing.TB) {
	t.Helper()
	netnsProbe.once.Do(func() { netnsProbe.missing = probeNetns() })
	if len(netnsProbe.missing) == 0 {
		return
	}
	msg := "the port-mapping gateway tests need " + strings.Join(netnsProbe.missing, ", ") +
		"; install with: DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iproute2 nftables miniupnpd miniupnpd-nftables, and run as root"
	if os.Getenv("SWITCHBOARD_SKIP_NETNS") == "1" {
		t.Skip("SWITCHBOARD_SKIP_NETNS=1: " + msg)
	}
	t.Fatal(msg + " (set SWITCHBOARD_SKIP_NETNS=1 to skip them knowingly)")
}

// netnsProbe holds what this machine lacks, probed once per test process.
var netnsProbe struct {
	once    sync.Once
	missing []string
}

func probeNetns() []string {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (to create network namespaces)")
	}
	for _, bin := range []string{"ip", "nft", "miniupnpd"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) == 0 {
		name := fmt.Sprintf("sbpm%d-probe", os.Getpid())
		if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
			missing = append(missing, fmt.Sprintf("network namespaces (ip netns add: %v: %s)", err, bytes.TrimSpace(out)))
		} else {
			exec.Command("ip", "netns", "del", name).Run()
		}
	}
	return missing
}

// Options vary the gateway's miniupnpd.conf.
type Options struct {
	UPnPOnly bool // enable_natpmp=no: no NAT-PMP and no PCP
}

// New builds the namespaces, starts miniupnpd and registers their removal
// with t.Cleanup. The test process becomes a child subreaper (see
// startDaemon), which is harmless for tests.
func New(t testing.TB, opts Options) *Gateway {
	t.Helper()
	Require(t)
	subreaper.Do(func() {
		// miniupnpd daemonizes; PID 1 of a container may not reap it.
		if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
			subreaper.err = errno
		}
	})
	if subreaper.err != nil {
		t.Fatalf("prctl(PR_SET_CHILD_SUBREAPER): %v", subreaper.err)
	}
	prefix := fmt.Sprintf("sbpm%d-%d-", os.Getpid(), testbedSeq.Add(1))
	g := &Gateway{t: t, LAN: prefix + "lan", GW: prefix + "gw", WAN: prefix + "wan", dir: t.TempDir(), upnpOnly: opts.UPnPOnly}
	t.Cleanup(g.destroy)
	for _, ns := range []string{g.LAN, g.GW, g.WAN} {
		g.run("ip", "netns", "add", ns)
		g.run("ip", "-n", ns, "link", "set", "lo", "up")
	}
	g.run("ip", "-n", g.GW, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", g.LAN)
	g.run("ip", "-n", g.GW, "link", "add", "wan0", "type", "veth", "peer", "name", "eth0", "netns", g.WAN)
	for _, a := range [][3]string{{g.GW, "lan0", GatewayLANAddr}, {g.GW, "wan0", GatewayWANAddr}, {g.LAN, "eth0", LANAddr}, {g.WAN, "eth0", WANAddr}} {
		g.run("ip", "-n", a[0], "addr", "add", a[2]+"/24", "dev", a[1])
		g.run("ip", "-n", a[0], "link", "set", a[1], "up")
	}
	g.run("ip", "-n", g.LAN, "route", "add", "default", "via", GatewayLANAddr)
	g.run("ip", "netns", "exec", g.GW, "sysctl", "-qw", "net.ipv4.ip_forward=1")

	// miniupnpd 2.3.1 does not create its table (and Debian's nft_init.sh is broken).
	rules := filepath.Join(g.dir, "gateway.nft")
	writeFile(t, rules, `table inet miniupnpd {
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "lan0" accept
    jump miniupnpd
  }
  chain miniupnpd {
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
    oifname "wan0" masquerade
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
}
`)
	g.run("ip", "netns", "exec", g.GW, "nft", "-f", rules)

	// system_uptime=no: the NAT-PMP/PCP epoch counts from the daemon's start,
	// so a daemon restart looks like a router reboot.
	natpmp := "yes"
	if opts.UPnPOnly {
		natpmp = "no"
	}
	g.conf = filepath.Join(g.dir, "miniupnpd.conf")
	writeFile(t, g.conf, fmt.Sprintf(`ext_ifname=wan0
listening_ip=lan0
http_port=5000
enable_natpmp=%s
enable_upnp=yes
secure_mode=yes
system_uptime=no
uuid=5b832699-67ed-439d-83b6-3b5e670920c8
lease_file=%s
upnp_table_name=miniupnpd
upnp_nat_table_name=miniupnpd
min_lifetime=1
deny 0-65535 10.77.0.0/24 %d
allow 1024-65535 10.77.0.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
`, natpmp, filepath.Join(g.dir, "leases"), DeniedPort))
	g.startDaemon()
	return g
}

func writeFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (g *Gateway) run(args ...string) string {
	g.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		g.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// startDaemon starts miniupnpd in the gw namespace and waits until it
// listens. It runs as a daemon, without -d: with -d it logs every port it
// tries, and a denied NAT-PMP/PCP request (miniupnpd walks all 65535 external
// ports first) takes minutes instead of milliseconds. The test process is a
// child subreaper (see New), so the daemon is reparented to it and
// stopDaemon can reap it.
func (g *Gateway) startDaemon() {
	g.t.Helper()
	pidFile := filepath.Join(g.dir, "miniupnpd.pid")
	os.Remove(pidFile)
	g.run("ip", "netns", "exec", g.GW, "miniupnpd", "-f", g.conf, "-P", pidFile)
	WaitFor(g.t, 10*time.Second, "miniupnpd listening", func() (bool, string) {
		out, err := exec.Command("ip", "netns", "exec", g.GW, "ss", "-Hlntu").CombinedOutput()
		ok := err == nil && strings.Contains(string(out), ":5000 ")
		if !g.upnpOnly {
			ok = ok && strings.Contains(string(out), ":5351 ")
		}
		return ok, string(out)
	})
	var pid int
	WaitFor(g.t, 10*time.Second, "miniupnpd pid file", func() (bool, string) {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false, err.Error()
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0, string(b)
	})
	g.mu.Lock()
	g.daemonPID, g.daemonUp = pid, time.Now()
	g.mu.Unlock()
}

// stopDaemon stops miniupnpd (SIGTERM, then SIGKILL) and reaps it.
func (g *Gateway) stopDaemon() {
	g.mu.Lock()
	pid := g.daemonPID
	g.daemonPID = 0
	g.mu.Unlock()
	if pid == 0 {
		return
	}
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(5 * time.Second)
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if got == pid || err != nil { // err: not our child (no subreaper); it is gone or not ours to reap
			return
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(5 * time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Reboot is a router reboot: the daemon stops, its rules and leases
// are gone (miniupnpd leaves both behind on SIGTERM), and it starts afresh.
//
// NAT-PMP and PCP clients see a reboot as the epoch (seconds since the
// daemon started) going back, which only shows once the gateway has been up
// for a couple of seconds: a gateway that restarts within a second of its
// previous start is indistinguishable by protocol. So the reboot waits until
// the daemon has been up for 3 s, as any real router has.
func (g *Gateway) Reboot() {
	g.t.Helper()
	WaitFor(g.t, 10*time.Second, "gateway up for 3s", func() (bool, string) {
		g.mu.Lock()
		defer g.mu.Unlock()
		return time.Since(g.daemonUp) >= 3*time.Second, "up for " + time.Since(g.daemonUp).String()
	})
	g.stopDaemon()
	for _, chain := range []string{"prerouting_miniupnpd", "postrouting_miniupnpd", "miniupnpd"} {
		g.run("ip", "netns", "exec", g.GW, "nft", "flush", "chain", "inet", "miniupnpd", chain)
	}
	os.Remove(filepath.Join(g.dir, "leases"))
	if out := g.run("ip", "netns", "exec", g.GW, "nft", "list", "chain", "inet", "miniupnpd", "prerouting_miniupnpd"); strings.Contains(out, "dport") {
		g.t.Fatalf("rebooting gateway still forwards ports:\n%s", out)
	}
	g.startDaemon()
}

// Forwards reports whether the gateway's DNAT chain holds a rule for
// the external TCP port.
func (g *Gateway) Forwards(port int) bool {
	g.t.Helper()
	out := g.run("ip", "netns", "exec", g.GW, "nft", "list", "chain", "inet", "miniupnpd", "prerouting_miniupnpd")
	return strings.Contains(out, fmt.Sprintf("dport %d ", port))
}

func (g *Gateway) destroy() {
	g.stopDaemon()
	for _, ns := range []string{g.LAN, g.GW, g.WAN} {
		exec.Command("ip", "netns", "del", ns).Run()
	}
}

// WaitFor polls cond every 50 ms until it holds, and fails t when limit
// passes; cond's string describes the last state for the failure message.
func WaitFor(t testing.TB, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last state: %s", limit, what, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Command returns a command that runs name with args in namespace ns (one of
// LAN, GW, WAN).
func (g *Gateway) Command(ns, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}
