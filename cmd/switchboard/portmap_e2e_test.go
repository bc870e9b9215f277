package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/portmap/gatewaytest"
)

// TestPortmapGateway runs the real binary against a real router (miniupnpd
// in network namespaces, see portmap/gatewaytest), once per protocol: serve
// in the LAN namespace maps its port, a listen --echo service attaches and
// is told the external URL, a client in the WAN namespace gets its echo
// through the mapped port, status shows the mapping, a router reboot is
// noticed and the mapping restored, a denied port is reported in status,
// and SIGTERM removes the mapping. It needs root and the packages that
// gatewaytest names; without them it fails, unless SWITCHBOARD_SKIP_NETNS=1.
func TestPortmapGateway(t *testing.T) {
	for _, proto := range []string{"upnp", "natpmp", "pcp"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			testPortmapGateway(t, proto)
		})
	}
}

func testPortmapGateway(t *testing.T, proto string) {
	gw := gatewaytest.New(t, gatewaytest.Options{})
	fast := []string{"--portmap", proto, "--portmap-check-interval", "300ms", "--portmap-lease", "30s", "--portmap-retry", "200ms"}

	serve := startNS(t, gw, gw.LAN, append([]string{"serve", "--dev", "--listen", "0.0.0.0:8080"}, fast...)...)
	// A service attached as soon as the broker listens, before the mapping
	// (about 2 s with UPnP), is told the public URL when it changes.
	serve.URL()
	early := startNS(t, gw, gw.LAN, "listen", "ws://127.0.0.1:8080/early/", "--echo")
	denied := startNS(t, gw, gw.LAN, append([]string{"serve", "--dev", "--listen", fmt.Sprintf("0.0.0.0:%d", gatewaytest.DeniedPort)}, fast...)...)
	external := gatewaytest.GatewayWANAddr + ":8080"
	serve.WaitLine(`msg="port mapped".* protocol=` + proto + ` .*external=` + regexp.QuoteMeta(external))
	if !gw.Forwards(8080) {
		t.Fatal("the broker logged the mapping but the gateway does not forward port 8080")
	}

	// The service attaches on loopback and is told the public URL.
	lis := startNS(t, gw, gw.LAN, "listen", "ws://127.0.0.1:8080/echo/", "--echo")
	lis.WaitLine(`switchboard: listening on ws://` + regexp.QuoteMeta(external) + `/echo/`)
	early.WaitLine(`switchboard: listening on ws://` + regexp.QuoteMeta(external) + `/early/`)
	// UPnP maps in about 2 s, so the service usually attached first, on the
	// local URL (on a loaded machine the mapping may win): then it must
	// have been told the external URL since.
	for _, l := range early.Lines() {
		if strings.HasSuffix(l, "listening on ws://127.0.0.1:8080/early/") {
			early.WaitLine(`switchboard: listening on ws://` + regexp.QuoteMeta(external) + `/early/ \(the public URL changed\)`)
			break
		}
	}

	wanEcho(t, gw, "ws://"+external+"/echo/from-wan", "hello from the internet")

	st := nsStatus(t, gw, 8080)
	if !st.Mapped || st.Protocol != proto || st.External != external || st.PublicURL != "ws://"+external+"/" || st.Error != "" {
		t.Fatalf("status portmap = %+v, want mapped %s via %s", st, external, proto)
	}
	out, err := gw.Command(gw.LAN, testutil.SwitchboardBinary(t), "status", "--broker", "http://127.0.0.1:8080").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "port mapping "+proto+" via gateway "+gatewaytest.GatewayLANAddr+": "+external) {
		t.Fatalf("switchboard status: %v\n%s", err, out)
	}

	// A refusal is reported, and that broker still serves locally.
	gatewaytest.WaitFor(t, 10*time.Second, "the denied port's refusal in status", func() (bool, string) {
		st := nsStatus(t, gw, gatewaytest.DeniedPort)
		return !st.Mapped && strings.Contains(st.Error, "refused"), fmt.Sprintf("%+v", st)
	})

	// The router reboots and forgets the mapping; the broker notices and maps again.
	gw.Reboot()
	gatewaytest.WaitFor(t, 15*time.Second, "the mapping restored after the router reboot", func() (bool, string) {
		st := nsStatus(t, gw, 8080)
		return st.Mapped && st.Lost >= 1 && gw.Forwards(8080), fmt.Sprintf("%+v", st)
	})
	serve.WaitLine(`msg="port mapping was lost"`)
	wanEcho(t, gw, "ws://"+external+"/echo/after-reboot", "hello again")

	// SIGTERM removes the mapping before the broker exits.
	for _, p := range []*testutil.Process{serve, denied} {
		p.Signal(syscall.SIGTERM)
		if code := p.Wait(); code != 0 {
			t.Fatalf("%v exited %d", p.Cmd.Args, code)
		}
	}
	if gw.Forwards(8080) {
		t.Fatal("the gateway still forwards port 8080 after the broker stopped")
	}
	serve.WaitLine(`msg="port mapping removed"`)
}

// startNS runs the switchboard binary with args in namespace ns, like
// testutil.Start.
func startNS(t *testing.T, gw *gatewaytest.Gateway, ns string, args ...string) *testutil.Process {
	t.Helper()
	cmd := gw.Command(ns, testutil.SwitchboardBinary(t), args...)
	cmd.Env = testutil.Command(t).Env
	return testutil.StartProcess(t, cmd)
}

// nsStatus returns the "portmap" object of the admin status of the broker
// on port in the LAN namespace (zero if absent).
func nsStatus(t *testing.T, gw *gatewaytest.Gateway, port int) portmapStatus {
	t.Helper()
	out, err := gw.Command(gw.LAN, testutil.SwitchboardBinary(t), "status", "--json", "--broker", fmt.Sprintf("http://127.0.0.1:%d", port)).Output()
	if err != nil {
		t.Fatalf("switchboard status --json on port %d: %v", port, err)
	}
	var st struct {
		PortMap *portmapStatus `json:"portmap"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, out)
	}
	if st.PortMap == nil {
		t.Fatalf("status has no portmap object: %s", out)
	}
	return *st.PortMap
}

// wanEcho runs switchboard connect in the WAN namespace: msg must come back.
func wanEcho(t *testing.T, gw *gatewaytest.Gateway, url, msg string) {
	t.Helper()
	cmd := gw.Command(gw.WAN, testutil.SwitchboardBinary(t), "connect", url)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if _, err := io.WriteString(stdin, msg+"\n"); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		got <- strings.TrimSpace(line)
	}()
	select {
	case line := <-got:
		if line != msg {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("connect %s from the WAN: got %q, want %q; stderr: %s", url, line, msg, stderr.String())
		}
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("connect %s from the WAN: no echo within 15s; stderr: %s", url, stderr.String())
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("connect %s from the WAN: %v; stderr: %s", url, err, stderr.String())
	}
}
