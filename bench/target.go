package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Target names, in the order tables list them.
const (
	Direct      = "direct"
	Switchboard = "switchboard"
	Nginx       = "nginx"      // one worker
	Nginx2      = "nginx-2w"   // two workers
	HAProxy     = "haproxy"    // one thread
	HAProxy2    = "haproxy-2t" // two threads
	Pushpin     = "pushpin"
)

// Proxies are the peers "the best proxy" is chosen from: the fastest of
// them in the same run, figure by figure.
var Proxies = []string{Nginx, Nginx2, HAProxy, HAProxy2}

// env is what starting a target needs.
type env struct {
	log     *slog.Logger
	dir     string // the run's temp dir
	bins    binaries
	install bool // apt-get install missing peers
}

// binaries are the Go programs the harness built.
type binaries struct {
	echoServer  string
	switchboard string // empty when it is not built yet
	noSBReason  string // why switchboard is empty
}

// running is one started target.
type running struct {
	name      string
	wsBase    string // clients dial wsBase + a name, e.g. "c" or "fan"
	broadcast string // POST here to fan out; empty when the target has no trigger
	// fan, when set, is the target's fan-out service in the harness process
	// (Switchboard): its clients dial fanURL, and it pushes instead of a
	// broadcast POST.
	fan     *fanService
	fanURL  string
	relay   []*child
	backend []*child
}

// stop stops every process of the target, relay first.
func (r *running) stop() {
	r.fan.close()
	for _, c := range r.relay {
		c.stop()
	}
	for _, c := range r.backend {
		c.stop()
	}
}

// alive returns an error naming the first process that exited.
func (r *running) alive() error {
	for _, c := range append(append([]*child{}, r.relay...), r.backend...) {
		if c.exited() {
			return fmt.Errorf("%s: %s exited: %v; log: %s", r.name, c.name, c.err, c.tail())
		}
	}
	if r.fan != nil {
		if err := r.fan.alive(); err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
	}
	return nil
}

func pids(cs []*child) []int {
	out := make([]int, len(cs))
	for i, c := range cs {
		out[i] = c.pid()
	}
	return out
}

// usage returns the CPU and RSS of all the target's processes, and of its
// relay processes alone (the broker, nginx, Pushpin; the echo server for
// direct).
func (r *running) usage() (all, relay usage) {
	relay = measure(pids(r.relay))
	back := measure(pids(r.backend))
	all = usage{cpuSeconds: relay.cpuSeconds + back.cpuSeconds, rssBytes: relay.rssBytes + back.rssBytes}
	return all, relay
}

// usageEach returns the CPU seconds of each of the target's processes
// (with its children), by name.
func (r *running) usageEach() map[string]float64 {
	out := map[string]float64{}
	for _, c := range append(append([]*child{}, r.relay...), r.backend...) {
		out[c.name] = measure([]int{c.pid()}).cpuSeconds
	}
	return out
}

// startTarget starts the named target. A non-empty skip means the target is
// not available here, and why.
func startTarget(ctx context.Context, e env, name string) (r *running, skip string, err error) {
	dir := filepath.Join(e.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", fmt.Errorf("make dir for %s: %w", name, err)
	}
	switch name {
	case Direct:
		r, err = startDirect(ctx, e, dir)
	case Switchboard:
		if e.bins.switchboard == "" {
			return nil, e.bins.noSBReason, nil
		}
		r, err = startSwitchboard(ctx, e, dir)
	case Nginx, Nginx2:
		if skip = ensurePeer(ctx, e, "nginx", "nginx"); skip != "" {
			return nil, skip, nil
		}
		r, err = startNginx(ctx, e, dir, name, map[string]int{Nginx: 1, Nginx2: 2}[name])
	case HAProxy, HAProxy2:
		if skip = ensurePeer(ctx, e, "haproxy", "haproxy"); skip != "" {
			return nil, skip, nil
		}
		r, err = startHAProxy(ctx, e, dir, name, map[string]int{HAProxy: 1, HAProxy2: 2}[name])
	case Pushpin:
		if skip = ensurePeer(ctx, e, "pushpin", "pushpin"); skip != "" {
			return nil, skip, nil
		}
		r, err = startPushpin(ctx, e, dir)
	default:
		return nil, "", fmt.Errorf("unknown target %q", name)
	}
	if err != nil {
		return nil, "", err
	}
	if err := pollUntil(ctx, 30*time.Second, func(ctx context.Context) error { return probeEcho(ctx, r.wsBase+"probe") }); err != nil {
		r.stop()
		return nil, "", fmt.Errorf("%s does not echo at %s: %w", name, r.wsBase, err)
	}
	return r, "", nil
}

// startEchoServer starts the direct echo server with extra listening ports
// and returns it with its addresses.
func startEchoServer(ctx context.Context, e env, dir, name string) (*child, []string, error) {
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, line, err := startChild(sctx, e.log, dir, name, "listening ", e.bins.echoServer, "-listen", "127.0.0.1:0", "-extra-ports", "7")
	if err != nil {
		return nil, nil, err
	}
	return c, strings.Split(strings.TrimPrefix(line, "listening "), ","), nil
}

func startDirect(ctx context.Context, e env, dir string) (*running, error) {
	c, addrs, err := startEchoServer(ctx, e, dir, "echoserver")
	if err != nil {
		return nil, err
	}
	return &running{
		name:      Direct,
		wsBase:    "ws://" + addrs[0] + "/echo/",
		broadcast: "http://" + addrs[0] + "/broadcast",
		relay:     []*child{c},
	}, nil
}

// echoService is the argv of the Switchboard target's echo service,
// `switchboard listen SCOPE --echo` with extra flags. It logs warnings
// only, as the peers do (nginx with access_log off, HAProxy at warning):
// its two INFO lines per channel cost it a fifth of its CPU per connect.
func echoService(e env, scopeURL string, extra ...string) []string {
	return append([]string{e.bins.switchboard, "listen", scopeURL, "--echo", "--log-level", "warn"}, extra...)
}

func startSwitchboard(ctx context.Context, e env, dir string) (*running, error) {
	broker, addr, err := startBroker(ctx, e, dir, "broker", "/healthz")
	if err != nil {
		return nil, err
	}
	r := &running{name: Switchboard, wsBase: "ws://" + addr + "/echo/", relay: []*child{broker}}
	svc, _, err := startChild(ctx, e.log, dir, "listen-echo", "", echoService(e, "ws://"+addr+"/echo/")...)
	if err != nil {
		r.stop()
		return nil, err
	}
	r.backend = []*child{svc}
	if r.fan, err = startFanService(ctx, e.log, addr); err != nil {
		r.stop()
		return nil, err
	}
	r.fanURL = "ws://" + addr + fanScope + "c"
	return r, nil
}

// startBroker starts `switchboard serve --dev` on a free loopback port with
// extra arguments and waits until GET healthPath answers 200.
func startBroker(ctx context.Context, e env, dir, name, healthPath string, args ...string) (*child, string, error) {
	return startServe(ctx, e, dir, name, healthPath, append([]string{"--dev"}, args...)...)
}

// startServe starts `switchboard serve` with args on a free loopback port
// and waits until GET healthPath answers 200.
func startServe(ctx context.Context, e env, dir, name, healthPath string, args ...string) (*child, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	argv := append([]string{e.bins.switchboard, "serve", "--listen", addr}, args...)
	broker, _, err := startChild(ctx, e.log, dir, name, "", argv...)
	if err != nil {
		return nil, "", err
	}
	health := func(ctx context.Context) error {
		if broker.exited() {
			return fmt.Errorf("%s exited: %v; log: %s", name, broker.err, broker.tail())
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+healthPath, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", healthPath, resp.Status)
		}
		return nil
	}
	if err := pollUntil(ctx, 20*time.Second, health); err != nil {
		broker.stop()
		return nil, "", fmt.Errorf("%s not healthy: %w", name, err)
	}
	return broker, addr, nil
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before the target binds it; the target then fails to start and
// the error says so.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// switchboardStatus says whether bin has the commands the Switchboard
// target needs; empty means it does.
func switchboardStatus(ctx context.Context, bin string) string {
	out, _ := exec.CommandContext(ctx, bin, "listen", "-h").CombinedOutput()
	s := string(out)
	if strings.Contains(s, "unknown command") {
		return "not built yet: cmd/switchboard has no listen command"
	}
	if !strings.Contains(s, "echo") {
		return "not built yet: switchboard listen has no --echo flag"
	}
	return ""
}
