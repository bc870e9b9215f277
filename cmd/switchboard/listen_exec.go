package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/internal/version"
	"github.com/switchboard-dev/switchboard/sdk"
)

// execMode runs one process per client, as websocketd does: each client
// message is a line on the process's stdin, each line it prints a message
// (with binary, raw bytes both ways). The process gets websocketd's
// CGI-like environment (execEnv) beside SWITCHBOARD_* variables, and only
// the variables of passenv from listen's own environment (so a credential
// in listen's environment never reaches a script). Its stderr lines go to
// listen's log, tagged with the channel and the pid.
type execMode struct {
	cmd      string
	binary   bool
	passenv  []string
	maxForks int // 0: no limit

	forks atomic.Int64 // running processes
}

// errTooManyForks rejects a client while --maxforks processes run.
var errTooManyForks = errors.New("--maxforks processes are running")

func (m *execMode) open(_ context.Context, svc *service, r *sdk.Request) (local, string, error) {
	if m.maxForks > 0 && m.forks.Add(1) > int64(m.maxForks) {
		m.forks.Add(-1)
		return nil, "", errTooManyForks
	} else if m.maxForks <= 0 {
		m.forks.Add(1)
	}
	proto := svc.chooseProtocol(r.Protocols)
	svc.mu.Lock()
	scope := svc.scope
	svc.mu.Unlock()
	cmd := exec.Command("/bin/sh", "-c", m.cmd)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own group: closing kills its children too
	cmd.Env = append(passEnv(m.passenv), execEnv(r, scope, proto)...)
	fail := func(err error) (local, string, error) {
		m.forks.Add(-1)
		return nil, "", fmt.Errorf("exec %q: %w", m.cmd, err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fail(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fail(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fail(err)
	}
	if err := cmd.Start(); err != nil {
		return fail(err)
	}
	e := &execLocal{cmd: cmd, stdin: stdin, stdout: stdout, binary: m.binary, exited: make(chan struct{}),
		stderrDone: make(chan struct{}), release: sync.OnceFunc(func() { m.forks.Add(-1) })}
	go e.logStderr(svc.log, r.Channel, stderr) // ends when the process's group closes stderr
	return e, proto, nil
}

func (m *execMode) resume(*sdk.Request) local { return nil }

// passEnv returns the variables of names from this process's environment.
func passEnv(names []string) []string {
	var env []string
	for _, n := range names {
		if v, ok := os.LookupEnv(n); ok {
			env = append(env, n+"="+v)
		}
	}
	return env
}

// execEnv is the environment websocketd gives a process (its CGI-like
// variables, the handshake headers as HTTP_*), plus SWITCHBOARD_CHANNEL,
// _TARGET, _ORIGIN, _PROTOCOL and _APP. PATH_INFO is the path after the
// scope; SCRIPT_NAME the scope.
func execEnv(r *sdk.Request, scope, proto string) []string {
	u, _ := url.Parse(r.Target)
	if u == nil {
		u = &url.URL{}
	}
	scopePath := scope
	if i := strings.IndexByte(scopePath, '/'); i > 0 {
		scopePath = scopePath[i:] // a host-matched scope: "host/path/"
	}
	pathInfo := "/" + strings.TrimPrefix(strings.TrimPrefix(u.Path, scopePath), "/")
	if u.Path+"/" == scopePath {
		pathInfo = "/"
	}
	remoteAddr, remotePort := r.Remote, ""
	if ap, err := netip.ParseAddrPort(r.Remote); err == nil {
		remoteAddr, remotePort = ap.Addr().Unmap().String(), strconv.Itoa(int(ap.Port()))
	}
	serverName, serverPort := u.Hostname(), u.Port()
	if serverPort == "" {
		serverPort = "80"
		if u.Scheme == "wss" {
			serverPort = "443"
		}
	}
	method, proto1 := "GET", "HTTP/1.1"
	if f := strings.Fields(r.FirstLine); len(f) == 3 {
		method, proto1 = f[0], f[2]
	}
	env := []string{
		"GATEWAY_INTERFACE=websocketd-CGI/0.1",
		"SERVER_SOFTWARE=switchboard/" + version.Get().Version,
		"SERVER_NAME=" + serverName, "SERVER_PORT=" + serverPort, "SERVER_PROTOCOL=" + proto1,
		"REQUEST_METHOD=" + method, "REQUEST_URI=" + u.RequestURI(),
		"SCRIPT_NAME=" + strings.TrimSuffix(scopePath, "/"), "PATH_INFO=" + pathInfo, "PATH_TRANSLATED=" + pathInfo,
		"QUERY_STRING=" + u.RawQuery,
		"REMOTE_ADDR=" + remoteAddr, "REMOTE_HOST=" + remoteAddr, "REMOTE_PORT=" + remotePort,
		"REMOTE_IDENT=", "REMOTE_USER=", "AUTH_TYPE=", "CONTENT_TYPE=", "CONTENT_LENGTH=",
		"UNIQUE_ID=" + strconv.FormatUint(r.Channel, 10),
		"SWITCHBOARD_CHANNEL=" + strconv.FormatUint(r.Channel, 10),
		"SWITCHBOARD_TARGET=" + r.Target,
		"SWITCHBOARD_ORIGIN=" + r.Origin,
		"SWITCHBOARD_PROTOCOL=" + proto,
		"SWITCHBOARD_APP=" + r.App,
	}
	if u.Scheme == "wss" {
		env = append(env, "HTTPS=on")
	}
	seen := map[string]int{}
	for _, h := range r.Headers {
		name := "HTTP_" + strings.ToUpper(strings.ReplaceAll(h.Name, "-", "_"))
		if i, dup := seen[name]; dup { // repeated headers join with ", " as in CGI
			env[i] += ", " + h.Value
			continue
		}
		seen[name] = len(env)
		env = append(env, name+"="+h.Value)
	}
	return env
}

// execLocal is the process of one client.
type execLocal struct {
	cmd        *exec.Cmd
	stdout     io.Reader
	binary     bool          // raw bytes both ways, as websocketd --binary
	exited     chan struct{} // closed when the process was waited for
	stderrDone chan struct{} // closed when its stderr is read to the end
	killed     atomic.Bool   // we signalled it: its exit status is ours, not a failure
	release    func()        // gives back its --maxforks slot; called once, after Wait

	mu    sync.Mutex
	stdin io.WriteCloser // guarded by mu
}

// maxLine bounds one line of the process's output.
const maxLine = 1 << 20

func (e *execLocal) deliver(_ context.Context, _ *sdk.Channel, _ websocket.MessageType, p []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	line := p
	if !e.binary {
		line = append(append(make([]byte, 0, len(p)+1), p...), '\n')
	}
	if _, err := e.stdin.Write(line); err != nil {
		return fmt.Errorf("write to process stdin: %w", err)
	}
	return nil
}

// logStderr logs each line the process writes to stderr, tagged with its
// channel and pid (websocketd logs them the same way).
func (e *execLocal) logStderr(log *slog.Logger, channel uint64, r io.Reader) {
	defer close(e.stderrDone)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	for sc.Scan() {
		log.Info("--exec stderr", "channel", channel, "pid", e.cmd.Process.Pid, "line", sc.Text())
	}
	_, _ = io.Copy(io.Discard, r) // a line over maxLine: drain the rest
}

// runBinary pumps raw stdout bytes to the client as binary messages, one
// per read.
func (e *execLocal) runBinary(s *session) error {
	buf := make([]byte, 64<<10)
	for {
		n, err := e.stdout.Read(buf)
		if n > 0 {
			if serr := s.send(websocket.MessageBinary, append([]byte(nil), buf[:n]...)); serr != nil {
				e.kill(syscall.SIGKILL)
				return nil
			}
		}
		if err != nil {
			return nil
		}
	}
}

func (e *execLocal) run(_ context.Context, s *session) {
	defer e.release()
	if e.binary {
		_ = e.runBinary(s)
		e.finishRun(s, false)
		return
	}
	sc := bufio.NewScanner(e.stdout)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	for sc.Scan() {
		line := sc.Bytes()
		typ := websocket.MessageText
		if !utf8.Valid(line) {
			typ = websocket.MessageBinary
		}
		if err := s.send(typ, append([]byte(nil), line...)); err != nil {
			e.kill(syscall.SIGKILL)
			break
		}
	}
	tooLong := errors.Is(sc.Err(), bufio.ErrTooLong)
	if tooLong {
		e.kill(syscall.SIGKILL)
	}
	e.finishRun(s, tooLong)
}

// finishRun waits for the process and closes the channel as its exit says.
func (e *execLocal) finishRun(s *session, tooLong bool) {
	<-e.stderrDone
	err := e.cmd.Wait()
	close(e.exited)
	var ee *exec.ExitError
	switch {
	case tooLong:
		s.svc.log.Warn("--exec process printed a line over the limit; killed", "channel", s.id, "limit", maxLine)
		s.finish(websocket.StatusMessageTooBig, "output line too long")
	case err == nil:
		s.finish(websocket.StatusNormalClosure, "")
	case errors.As(err, &ee) && e.killed.Load() && s.clientClosedFirst():
		s.finish(websocket.StatusNormalClosure, "") // ended after its client's close: the answer echoes it
	case errors.As(err, &ee):
		if !e.killed.Load() { // a process we ended is no failure of its own
			s.svc.log.Warn("--exec process failed", "channel", s.id, "status", ee.ProcessState.String())
		}
		s.finish(websocket.StatusInternalError, ee.ProcessState.String())
	default:
		s.svc.log.Warn("--exec process failed", "channel", s.id, "err", err)
		s.finish(websocket.StatusInternalError, "process failed")
	}
}

// kill signals the process group.
func (e *execLocal) kill(sig syscall.Signal) {
	select {
	case <-e.exited:
		return
	default:
	}
	e.killed.Store(true)
	_ = syscall.Kill(-e.cmd.Process.Pid, sig)
}

// execCloseGrace is how long a process whose client closed has, after
// its stdin closed, to print what it has left and exit before it gets
// SIGTERM (what it prints meanwhile reaches the client: the channel's
// close is answered when it exits).
const execCloseGrace = 2 * time.Second

// clientClosed ends the process: its stdin closes, and its group gets
// SIGTERM if it has not exited within execCloseGrace (at once when the
// client's connection broke: nobody reads its output), then SIGKILL a
// second later if it is still there. Its exit closes the channel, which
// answers the client's close.
func (e *execLocal) clientClosed(_ *session, code websocket.StatusCode, _ string) {
	e.mu.Lock()
	e.stdin.Close()
	e.mu.Unlock()
	grace := execCloseGrace
	if code == websocket.StatusAbnormalClosure {
		grace = 0
	}
	go func() {
		for _, step := range []struct {
			wait time.Duration
			sig  syscall.Signal
		}{{grace, syscall.SIGTERM}, {time.Second, syscall.SIGKILL}} {
			t := time.NewTimer(step.wait)
			select {
			case <-e.exited:
				t.Stop()
				return
			case <-t.C:
				e.kill(step.sig)
			}
		}
	}()
}

func (e *execLocal) stop() {
	e.kill(syscall.SIGKILL)
	e.release() // run may never start (the accept failed)
}
