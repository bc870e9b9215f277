package portmap

// A real gateway for the tests: Debian's miniupnpd in network namespaces.
//
//	lan ns (10.77.0.2, default via .1) ──veth── gw ns (lan0 10.77.0.1, wan0 11.77.0.1, miniupnpd)
//	                                                  └──veth── wan ns (11.77.0.2, no default route)
//
// miniupnpd refuses to map behind a private or reserved WAN address, so the
// WAN side uses 11.77.0.0/24; it exists only inside these namespaces, which
// have no route out. See docs/PORTMAP.md and shared notes/testbeds.md.

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

const (
	gwLANAddr  = "10.77.0.1"
	lanAddr    = "10.77.0.2"
	gwWANAddr  = "11.77.0.1"
	wanAddr    = "11.77.0.2"
	deniedPort = 7777 // miniupnpd.conf denies mappings to this internal port
)

var testbedSeq atomic.Int32

type testbed struct {
	t            *testing.T
	lan, gw, wan string // namespace names, unique per process and testbed
	dir, conf    string
	upnpOnly     bool
	mu           sync.Mutex
	daemonPID    int       // running miniupnpd, 0 when stopped
	daemonUp     time.Time // when the running daemon started listening
}

// requireNetns fails the test (or skips it with SWITCHBOARD_SKIP_NETNS=1)
// when this machine cannot build the gateway.
func requireNetns(t *testing.T) {
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

// gatewayOptions vary the gateway's miniupnpd.conf.
type gatewayOptions struct {
	upnpOnly bool // enable_natpmp=no: no NAT-PMP and no PCP
}

func newTestbed(t *testing.T, opts gatewayOptions) *testbed {
	t.Helper()
	requireNetns(t)
	prefix := fmt.Sprintf("sbpm%d-%d-", os.Getpid(), testbedSeq.Add(1))
	tb := &testbed{t: t, lan: prefix + "lan", gw: prefix + "gw", wan: prefix + "wan", dir: t.TempDir(), upnpOnly: opts.upnpOnly}
	t.Cleanup(tb.destroy)
	for _, ns := range []string{tb.lan, tb.gw, tb.wan} {
		tb.run("ip", "netns", "add", ns)
		tb.run("ip", "-n", ns, "link", "set", "lo", "up")
	}
	tb.run("ip", "-n", tb.gw, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", tb.lan)
	tb.run("ip", "-n", tb.gw, "link", "add", "wan0", "type", "veth", "peer", "name", "eth0", "netns", tb.wan)
	for _, a := range [][3]string{{tb.gw, "lan0", gwLANAddr}, {tb.gw, "wan0", gwWANAddr}, {tb.lan, "eth0", lanAddr}, {tb.wan, "eth0", wanAddr}} {
		tb.run("ip", "-n", a[0], "addr", "add", a[2]+"/24", "dev", a[1])
		tb.run("ip", "-n", a[0], "link", "set", a[1], "up")
	}
	tb.run("ip", "-n", tb.lan, "route", "add", "default", "via", gwLANAddr)
	tb.run("ip", "netns", "exec", tb.gw, "sysctl", "-qw", "net.ipv4.ip_forward=1")

	// miniupnpd 2.3.1 does not create its table (and Debian's nft_init.sh is broken).
	rules := filepath.Join(tb.dir, "gateway.nft")
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
	tb.run("ip", "netns", "exec", tb.gw, "nft", "-f", rules)

	// system_uptime=no: the NAT-PMP/PCP epoch counts from the daemon's start,
	// so a daemon restart looks like a router reboot.
	natpmp := "yes"
	if opts.upnpOnly {
		natpmp = "no"
	}
	tb.conf = filepath.Join(tb.dir, "miniupnpd.conf")
	writeFile(t, tb.conf, fmt.Sprintf(`ext_ifname=wan0
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
`, natpmp, filepath.Join(tb.dir, "leases"), deniedPort))
	tb.startDaemon()
	return tb
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (tb *testbed) run(args ...string) string {
	tb.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		tb.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// startDaemon starts miniupnpd in the gw namespace and waits until it
// listens. It runs as a daemon, without -d: with -d it logs every port it
// tries, and a denied NAT-PMP/PCP request (miniupnpd walks all 65535 external
// ports first) takes minutes instead of milliseconds. The test process is a
// child subreaper (see TestMain), so the daemon is reparented to it and
// stopDaemon can reap it.
func (tb *testbed) startDaemon() {
	tb.t.Helper()
	pidFile := filepath.Join(tb.dir, "miniupnpd.pid")
	os.Remove(pidFile)
	tb.run("ip", "netns", "exec", tb.gw, "miniupnpd", "-f", tb.conf, "-P", pidFile)
	waitFor(tb.t, 10*time.Second, "miniupnpd listening", func() (bool, string) {
		out, err := exec.Command("ip", "netns", "exec", tb.gw, "ss", "-Hlntu").CombinedOutput()
		ok := err == nil && strings.Contains(string(out), ":5000 ")
		if !tb.upnpOnly {
			ok = ok && strings.Contains(string(out), ":5351 ")
		}
		return ok, string(out)
	})
	var pid int
	waitFor(tb.t, 10*time.Second, "miniupnpd pid file", func() (bool, string) {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false, err.Error()
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0, string(b)
	})
	tb.mu.Lock()
	tb.daemonPID, tb.daemonUp = pid, time.Now()
	tb.mu.Unlock()
}

// stopDaemon stops miniupnpd (SIGTERM, then SIGKILL) and reaps it.
func (tb *testbed) stopDaemon() {
	tb.mu.Lock()
	pid := tb.daemonPID
	tb.daemonPID = 0
	tb.mu.Unlock()
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

// rebootGateway is a router reboot: the daemon stops, its rules and leases
// are gone (miniupnpd leaves both behind on SIGTERM), and it starts afresh.
//
// NAT-PMP and PCP clients see a reboot as the epoch (seconds since the
// daemon started) going back, which only shows once the gateway has been up
// for a couple of seconds: a gateway that restarts within a second of its
// previous start is indistinguishable by protocol. So the reboot waits until
// the daemon has been up for 3 s, as any real router has.
func (tb *testbed) rebootGateway() {
	tb.t.Helper()
	waitFor(tb.t, 10*time.Second, "gateway up for 3s", func() (bool, string) {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		return time.Since(tb.daemonUp) >= 3*time.Second, "up for " + time.Since(tb.daemonUp).String()
	})
	tb.stopDaemon()
	for _, chain := range []string{"prerouting_miniupnpd", "postrouting_miniupnpd", "miniupnpd"} {
		tb.run("ip", "netns", "exec", tb.gw, "nft", "flush", "chain", "inet", "miniupnpd", chain)
	}
	os.Remove(filepath.Join(tb.dir, "leases"))
	if out := tb.run("ip", "netns", "exec", tb.gw, "nft", "list", "chain", "inet", "miniupnpd", "prerouting_miniupnpd"); strings.Contains(out, "dport") {
		tb.t.Fatalf("rebooting gateway still forwards ports:\n%s", out)
	}
	tb.startDaemon()
}

// gatewayForwards reports whether the gateway's DNAT chain holds a rule for
// the external TCP port.
func (tb *testbed) gatewayForwards(port int) bool {
	tb.t.Helper()
	out := tb.run("ip", "netns", "exec", tb.gw, "nft", "list", "chain", "inet", "miniupnpd", "prerouting_miniupnpd")
	return strings.Contains(out, fmt.Sprintf("dport %d ", port))
}

func (tb *testbed) destroy() {
	tb.stopDaemon()
	for _, ns := range []string{tb.lan, tb.gw, tb.wan} {
		exec.Command("ip", "netns", "del", ns).Run()
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
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

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
