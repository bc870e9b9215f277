package portmap

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/portmap/gatewaytest"
)

// The namespace tests run the Mapper in the lan namespace and the client in
// the wan namespace by re-executing this test binary under `ip netns exec`
// with childModeEnv set; TestMain then runs the child instead of the tests.
const (
	childModeEnv   = "SWITCHBOARD_PORTMAP_CHILD"  // "mapper" or "dial"
	childConfigEnv = "SWITCHBOARD_PORTMAP_CONFIG" // mapper: JSON childConfig; dial: "addr message"
)

func TestMain(m *testing.M) {
	switch os.Getenv(childModeEnv) {
	case "":
		os.Exit(m.Run())
	case "mapper":
		os.Exit(childMapper())
	case "dial":
		os.Exit(childDial())
	default:
		fmt.Fprintf(os.Stderr, "unknown %s %q\n", childModeEnv, os.Getenv(childModeEnv))
		os.Exit(2)
	}
}

// childConfig is the part of Config a mapper child is given.
type childConfig struct {
	Protocol     Protocol
	InternalPort int
	ExternalPort int
	Lease        time.Duration
}

// childStatus is one line a mapper child prints.
type childStatus struct {
	Status
	Final       bool   // printed after Shutdown returned
	ShutdownErr string // Shutdown's error, on the final line
}

// childMapper serves an echo on InternalPort, keeps the mapping, prints every
// Status as a JSON line on stdout, and shuts down when stdin closes.
func childMapper() int {
	var cc childConfig
	if err := json.Unmarshal([]byte(os.Getenv(childConfigEnv)), &cc); err != nil {
		fmt.Fprintln(os.Stderr, "child config:", err)
		return 2
	}
	ln, err := net.Listen("tcp4", ":"+strconv.Itoa(cc.InternalPort))
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		return 2
	}
	go serveEcho(ln)
	var outMu sync.Mutex
	enc := json.NewEncoder(os.Stdout)
	emit := func(s childStatus) {
		outMu.Lock()
		defer outMu.Unlock()
		enc.Encode(s)
	}
	m, err := Start(context.Background(), Config{
		Protocol:       cc.Protocol,
		InternalPort:   cc.InternalPort,
		ExternalPort:   cc.ExternalPort,
		Lease:          cc.Lease,
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnChange:       func(s Status) { emit(childStatus{Status: s}) },
		CheckInterval:  300 * time.Millisecond,
		RetryMin:       200 * time.Millisecond,
		RetryMax:       time.Second,
		RequestTimeout: time.Second,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		return 2
	}
	io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	final := childStatus{Final: true}
	if err := m.Shutdown(ctx); err != nil {
		final.ShutdownErr = err.Error()
	}
	final.Status = m.Status()
	emit(final)
	ln.Close()
	return 0
}

func serveEcho(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err == nil {
				io.WriteString(c, "echo "+line)
			}
		}()
	}
}

// childDial connects to addr, sends message and prints the answer.
func childDial() int {
	addr, msg, _ := strings.Cut(os.Getenv(childConfigEnv), " ")
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		return 1
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	io.WriteString(c, msg+"\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		fmt.Fprintln(os.Stderr, "read:", err)
		return 1
	}
	fmt.Print(line)
	return 0
}

// mapperChild is a running mapper child seen from the test.
type mapperChild struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *testutil.SyncBuffer
	done   chan struct{} // closed when stdout is drained and the process waited

	mu    sync.Mutex
	last  childStatus
	lines int
}

func (tb *gatewaySession) startMapper(ns string, cc childConfig) *mapperChild {
	t := tb.t
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	conf, _ := json.Marshal(cc)
	cmd := exec.Command("ip", "netns", "exec", ns, self)
	cmd.Env = append(os.Environ(), childModeEnv+"=mapper", childConfigEnv+"="+string(conf))
	c := &mapperChild{t: t, cmd: cmd, stderr: &testutil.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = c.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting mapper child: %v", err)
	}
	go func() {
		defer close(c.done)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			var st childStatus
			if err := json.Unmarshal(s.Bytes(), &st); err != nil {
				c.stderr.Write([]byte("bad status line: " + s.Text() + "\n"))
				continue
			}
			c.mu.Lock()
			c.last, c.lines = st, c.lines+1
			c.mu.Unlock()
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		c.stdin.Close()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("mapper child (%s, %s) log:\n%s", ns, cc.Protocol, c.stderr.String())
		}
	})
	return c
}

func (c *mapperChild) status() childStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// waitStatus polls the child's last status until cond holds.
func (c *mapperChild) waitStatus(what string, cond func(Status) bool) Status {
	c.t.Helper()
	var got Status
	gatewaytest.WaitFor(c.t, 20*time.Second, what, func() (bool, string) {
		s := c.status()
		got = s.Status
		return cond(s.Status), fmt.Sprintf("%+v", s)
	})
	return got
}

// shutdown closes stdin, so the child calls Shutdown, and returns its final line.
func (c *mapperChild) shutdown() childStatus {
	c.t.Helper()
	c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.t.Fatalf("mapper child did not exit after Shutdown; log:\n%s", c.stderr.String())
	}
	s := c.status()
	if !s.Final {
		c.t.Fatalf("mapper child exited without a final status (%v); log:\n%s", c.cmd.ProcessState, c.stderr.String())
	}
	return s
}

// dialFromWAN connects from the wan namespace to addr through the gateway
// and checks the echo, retrying until the deadline.
func (tb *gatewaySession) dialFromWAN(addr, msg string) {
	tb.t.Helper()
	self, err := os.Executable()
	if err != nil {
		tb.t.Fatal(err)
	}
	gatewaytest.WaitFor(tb.t, 10*time.Second, "echo through "+addr+" from the WAN", func() (bool, string) {
		cmd := exec.Command("ip", "netns", "exec", tb.WAN, self)
		cmd.Env = append(os.Environ(), childModeEnv+"=dial", childConfigEnv+"="+addr+" "+msg)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return false, fmt.Sprintf("%v: %s", err, stderr.String())
		}
		return string(out) == "echo "+msg+"\n", fmt.Sprintf("got %q", out)
	})
}

// runGatewayScenario maps a port with proto through miniupnpd, proves it
// carries traffic, reboots the gateway, expects the mapping back, shuts
// down, expects it gone, and expects a denied port to be reported.
func runGatewayScenario(t *testing.T, proto Protocol, refusal string) {
	tb := newTestbed(t, gatewaytest.Options{})
	const internal, external = 8080, 18080
	c := tb.startMapper(tb.LAN, childConfig{Protocol: proto, InternalPort: internal, ExternalPort: external, Lease: 4 * time.Second})

	s := c.waitStatus("mapped", func(s Status) bool { return s.Mapped })
	wantProto := string(proto)
	if proto == Auto {
		wantProto = string(PCP)
	}
	if s.Protocol != wantProto || s.Gateway != gatewaytest.GatewayLANAddr || s.ExternalIP != netip.MustParseAddr(gatewaytest.GatewayWANAddr) || s.ExternalPort != external || s.Err != "" {
		t.Fatalf("status after mapping: %+v", s)
	}
	if !tb.Forwards(external) {
		t.Fatalf("gateway has no DNAT rule for port %d", external)
	}
	tb.dialFromWAN(s.External(), "first")

	// Renewal: the lease end moves forward before the 4 s lease runs out.
	first := s.LeaseExpires
	c.waitStatus("renewed lease", func(s Status) bool { return s.Mapped && s.LeaseExpires.After(first) })

	// Reboot: rules and leases gone; the Mapper notices and maps again.
	lost := s.Lost
	tb.Reboot()
	c.waitStatus("mapping restored after gateway reboot", func(s Status) bool {
		return s.Mapped && s.Lost > lost && tb.Forwards(external)
	})
	tb.dialFromWAN(s.External(), "after-reboot")

	final := c.shutdown()
	if final.ShutdownErr != "" || final.Mapped {
		t.Fatalf("final status: %+v", final)
	}
	if tb.Forwards(external) {
		t.Fatal("gateway still forwards the port after Shutdown")
	}

	// A refusal: the gateway's policy denies this internal port.
	r := tb.startMapper(tb.LAN, childConfig{Protocol: proto, InternalPort: gatewaytest.DeniedPort, Lease: 4 * time.Second})
	got := r.waitStatus("refusal reported", func(s Status) bool { return s.Err != "" })
	if got.Mapped || !strings.Contains(got.Err, refusal) {
		t.Fatalf("refusal status: %+v, want Err containing %q", got, refusal)
	}
	if final := r.shutdown(); final.ShutdownErr != "" {
		t.Fatalf("shutdown after refusal: %+v", final)
	}
}

func TestGatewayPCP(t *testing.T) {
	t.Parallel()
	runGatewayScenario(t, PCP, "NOT_AUTHORIZED")
}

func TestGatewayNATPMP(t *testing.T) {
	t.Parallel()
	runGatewayScenario(t, NATPMP, "not authorized")
}

func TestGatewayUPnP(t *testing.T) {
	t.Parallel()
	runGatewayScenario(t, UPnP, "error 606")
}

func TestGatewayAuto(t *testing.T) {
	t.Parallel()
	runGatewayScenario(t, Auto, "NOT_AUTHORIZED")
}

// TestNoGateway runs a Mapper where there is no default route (the wan
// namespace) and expects the reason in Status.Err.
func TestNoGateway(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, gatewaytest.Options{})
	c := tb.startMapper(tb.WAN, childConfig{Protocol: Auto, InternalPort: 8080})
	s := c.waitStatus("no-gateway error", func(s Status) bool { return s.Err != "" })
	if s.Mapped || !strings.Contains(s.Err, "no default gateway") {
		t.Fatalf("status: %+v", s)
	}
	c.shutdown()
}

// TestAutoFallsBackToUPnP: a gateway with NAT-PMP and PCP off; auto must
// get no answer on UDP 5351 and map with UPnP IGD.
func TestAutoFallsBackToUPnP(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, gatewaytest.Options{UPnPOnly: true})
	c := tb.startMapper(tb.LAN, childConfig{Protocol: Auto, InternalPort: 8080, Lease: 30 * time.Second})
	s := c.waitStatus("mapped", func(s Status) bool { return s.Mapped })
	if s.Protocol != string(UPnP) || s.ExternalPort != 8080 {
		t.Fatalf("status: %+v", s)
	}
	tb.dialFromWAN(s.External(), "fallback")
	if final := c.shutdown(); final.ShutdownErr != "" || tb.Forwards(8080) {
		t.Fatalf("after shutdown: %+v, still forwarded: %v", final, tb.Forwards(8080))
	}
}

// gatewaySession is a gateway plus the test's helpers to run children in it.
type gatewaySession struct {
	*gatewaytest.Gateway
	t *testing.T
}

func newTestbed(t *testing.T, opts gatewaytest.Options) *gatewaySession {
	return &gatewaySession{Gateway: gatewaytest.New(t, opts), t: t}
}
