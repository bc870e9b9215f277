package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// ensurePeer returns "" when bin is on PATH, installing Debian package pkg
// first when the harness may install. Otherwise it returns why the peer is
// skipped.
func ensurePeer(ctx context.Context, e env, bin, pkg string) string {
	if _, err := exec.LookPath(bin); err == nil {
		return ""
	}
	if !e.install {
		return fmt.Sprintf("not installed (apt-get install %s)", pkg)
	}
	e.log.Info("installing peer", "package", pkg)
	install := func() ([]byte, error) {
		cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "-q", "--no-install-recommends", pkg)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	if _, err := install(); err != nil {
		_ = exec.CommandContext(ctx, "apt-get", "update", "-q").Run()
		if out, err := install(); err != nil {
			return fmt.Sprintf("apt-get install %s failed: %v: %s", pkg, err, lastLine(out))
		}
	}
	if _, err := exec.LookPath(bin); err != nil {
		return fmt.Sprintf("%s not on PATH after installing %s", bin, pkg)
	}
	return ""
}

func lastLine(b []byte) string {
	b = bytes.TrimSpace(b)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return string(b)
}

const nginxConf = `daemon off;
%s
worker_processes %d;
worker_rlimit_nofile 1048576;
pid {{dir}}/nginx.pid;
error_log {{dir}}/error.log warn;
events {
	worker_connections 250000;
	multi_accept on;
}
http {
	access_log off;
	client_body_temp_path {{dir}}/client_body;
	proxy_temp_path {{dir}}/proxy;
	fastcgi_temp_path {{dir}}/fastcgi;
	uwsgi_temp_path {{dir}}/uwsgi;
	scgi_temp_path {{dir}}/scgi;
	map $http_upgrade $connection_upgrade {
		default upgrade;
		''      close;
	}
	upstream echo {
%s	}
	server {
		listen 127.0.0.1:%d backlog=4096;
		location / {
			proxy_pass http://echo;
			proxy_http_version 1.1;
			proxy_set_header Upgrade $http_upgrade;
			proxy_set_header Connection $connection_upgrade;
			proxy_buffering off;
			proxy_read_timeout 3600s;
			proxy_send_timeout 3600s;
		}
	}
}
`

// startNginx starts Debian's nginx with a config of its own in dir and the
// given number of workers, proxying WebSocket to a direct echo server of its
// own listening on several ports (so upstream connections are not bound by
// one port range).
func startNginx(ctx context.Context, e env, dir, name string, workers int) (*running, error) {
	echo, addrs, err := startEchoServer(ctx, e, dir, "echoserver")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		echo.stop()
		return nil, err
	}
	var ups strings.Builder
	for _, a := range addrs {
		fmt.Fprintf(&ups, "\t\tserver %s;\n", a)
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers must read the temp dir, which is root's
	}
	conf := fmt.Sprintf(nginxConf, user, workers, ups.String(), port)
	conf = strings.ReplaceAll(conf, "{{dir}}", dir)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		echo.stop()
		return nil, fmt.Errorf("write nginx config: %w", err)
	}
	ng, _, err := startChild(ctx, e.log, dir, "nginx", "", "nginx", "-c", confPath, "-e", filepath.Join(dir, "error.log"))
	if err != nil {
		echo.stop()
		return nil, err
	}
	return &running{
		name:      name,
		wsBase:    fmt.Sprintf("ws://127.0.0.1:%d/echo/", port),
		broadcast: "http://" + addrs[0] + "/broadcast",
		relay:     []*child{ng},
		backend:   []*child{echo},
	}, nil
}

// startPushpin starts Debian's Pushpin with Debian's config adjusted as
// ../shared/notes/testbeds.md says: run and log dirs in dir, zurl among the
// services, zurl sockets under the run dir, handler ports moved off their
// defaults, and a routes file sending everything to a direct echo server.
func startPushpin(ctx context.Context, e env, dir string) (*running, error) {
	base, err := os.ReadFile("/etc/pushpin/pushpin.conf")
	if err != nil {
		return nil, fmt.Errorf("read Debian's pushpin.conf: %w", err)
	}
	echo, addrs, err := startEchoServer(ctx, e, dir, "echoserver")
	if err != nil {
		return nil, err
	}
	ports := make([]int, 5)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			echo.stop()
			return nil, err
		}
	}
	routes := filepath.Join(dir, "routes")
	if err := os.WriteFile(routes, []byte("* "+addrs[0]+"\n"), 0o644); err != nil {
		echo.stop()
		return nil, fmt.Errorf("write pushpin routes: %w", err)
	}
	conf := setINI(string(base), map[string]map[string]string{
		"global": {"rundir": dir},
		"runner": {
			"logdir":         dir,
			"services":       "condure,zurl,pushpin-proxy,pushpin-handler",
			"client_maxconn": "200000",
		},
		"proxy": {
			"routesfile":            routes,
			"zurl_out_specs":        "ipc://{rundir}/{ipc_prefix}zurl-in",
			"zurl_out_stream_specs": "ipc://{rundir}/{ipc_prefix}zurl-in-stream",
			"zurl_in_specs":         "ipc://{rundir}/{ipc_prefix}zurl-out",
		},
		"handler": {
			"push_in_spec":      fmt.Sprintf("tcp://127.0.0.1:%d", ports[1]),
			"push_in_sub_specs": fmt.Sprintf("tcp://127.0.0.1:%d", ports[2]),
			"push_in_http_port": fmt.Sprint(ports[3]),
			"command_spec":      fmt.Sprintf("tcp://127.0.0.1:%d", ports[4]),
		},
	})
	confPath := filepath.Join(dir, "pushpin.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		echo.stop()
		return nil, fmt.Errorf("write pushpin config: %w", err)
	}
	pp, _, err := startChild(ctx, e.log, dir, "pushpin", "", "pushpin", "--config", confPath,
		"--port", fmt.Sprintf("127.0.0.1:%d", ports[0]), "--merge-output", "--logfile", filepath.Join(dir, "pushpin-run.log"))
	if err != nil {
		echo.stop()
		return nil, err
	}
	return &running{
		name:      Pushpin,
		wsBase:    fmt.Sprintf("ws://127.0.0.1:%d/echo/", ports[0]),
		broadcast: "http://" + addrs[0] + "/broadcast",
		relay:     []*child{pp},
		backend:   []*child{echo},
	}, nil
}

var iniSection = regexp.MustCompile(`^\[([^\]]+)\]\s*$`)

// setINI sets keys in an INI text, replacing existing lines in their
// section and appending missing keys (and sections).
func setINI(text string, set map[string]map[string]string) string {
	done := map[string]map[string]bool{}
	var out []string
	section := ""
	flush := func() {
		for k, v := range set[section] {
			if !done[section][k] {
				out = append(out, k+"="+v)
				markDone(done, section, k)
			}
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if m := iniSection.FindStringSubmatch(line); m != nil {
			flush()
			section = m[1]
			out = append(out, line)
			continue
		}
		if k, _, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			k = strings.TrimSpace(k)
			if v, ok := set[section][k]; ok {
				out = append(out, k+"="+v)
				markDone(done, section, k)
				continue
			}
		}
		out = append(out, line)
	}
	flush()
	for s, kv := range set {
		if _, seen := done[s]; seen || len(kv) == 0 {
			continue
		}
		out = append(out, "["+s+"]")
		for k, v := range kv {
			out = append(out, k+"="+v)
		}
	}
	return strings.Join(out, "\n") + "\n"
}

func markDone(done map[string]map[string]bool, s, k string) {
	if done[s] == nil {
		done[s] = map[string]bool{}
	}
	done[s][k] = true
}
