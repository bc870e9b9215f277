package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// haproxyConf proxies WebSocket in mode http: HAProxy switches a connection
// to a tunnel once the backend answers 101, and "timeout tunnel" then
// applies instead of the client and server timeouts.
const haproxyConf = `global
	maxconn %d
	nbthread %d
	log stderr format short local0 warning

defaults
	mode http
	log global
	timeout connect 5s
	timeout client 1h
	timeout server 1h
	timeout tunnel 1h

frontend ws
	bind 127.0.0.1:%d backlog 4096
	default_backend echo

backend echo
	balance roundrobin
%s`

// startHAProxy starts Debian's HAProxy in the foreground with a config of
// its own in dir and the given number of threads, proxying WebSocket to a
// direct echo server of its own listening on several ports.
func startHAProxy(ctx context.Context, e env, dir, name string, threads int) (*running, error) {
	echo, addrs, err := startEchoServer(ctx, e, dir, "echoserver")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		echo.stop()
		return nil, err
	}
	var servers strings.Builder
	for i, a := range addrs {
		fmt.Fprintf(&servers, "\tserver e%d %s\n", i, a)
	}
	// Each proxied connection holds two descriptors; HAProxy refuses to
	// start when maxconn needs more than its file limit.
	maxconn := 100000
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		maxconn = max(1000, min(maxconn, int(min(lim.Cur, 1<<30)-256)/2))
	}
	conf := fmt.Sprintf(haproxyConf, maxconn, threads, port, servers.String())
	confPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		echo.stop()
		return nil, fmt.Errorf("write haproxy config: %w", err)
	}
	hp, _, err := startChild(ctx, e.log, dir, "haproxy", "", "haproxy", "-db", "-f", confPath)
	if err != nil {
		echo.stop()
		return nil, err
	}
	return &running{
		name:      name,
		wsBase:    fmt.Sprintf("ws://127.0.0.1:%d/echo/", port),
		broadcast: "http://" + addrs[0] + "/broadcast",
		relay:     []*child{hp},
		backend:   []*child{echo},
	}, nil
}
