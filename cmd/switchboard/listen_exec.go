package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/sdk"
)

// execMode runs one process per client, as websocketd does: each client
// message is a line on the process's stdin, each line it prints a message.
// The process gets SWITCHBOARD_CHANNEL, SWITCHBOARD_TARGET,
// SWITCHBOARD_ORIGIN, SWITCHBOARD_PROTOCOL and REMOTE_ADDR in its
// environment.
type execMode struct {
	cmd string
}

func (m *execMode) open(_ context.Context, svc *service, r *sdk.Request) (local, string, error) {
	proto := svc.chooseProtocol(r.Protocols)
	cmd := exec.Command("/bin/sh", "-c", m.cmd)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own group: closing kills its children too
	cmd.Env = append(os.Environ(),
		"SWITCHBOARD_CHANNEL="+strconv.FormatUint(r.Channel, 10),
		"SWITCHBOARD_TARGET="+r.Target,
		"SWITCHBOARD_ORIGIN="+r.Origin,
		"SWITCHBOARD_PROTOCOL="+proto,
		"REMOTE_ADDR="+r.Remote,
	)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, "", fmt.Errorf("exec %q: %w", m.cmd, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", fmt.Errorf("exec %q: %w", m.cmd, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("exec %q: %w", m.cmd, err)
	}
	return &execLocal{cmd: cmd, stdin: stdin, stdout: stdout, exited: make(chan struct{})}, proto, nil
}

func (m *execMode) resume(*sdk.Request) local { return nil }

// execLocal is the process of one client.
type execLocal struct {
	cmd    *exec.Cmd
	stdout io.Reader
	exited chan struct{} // closed when the process was waited for
	killed atomic.Bool   // we signalled it: its exit status is ours, not a failure

	mu    sync.Mutex
	stdin io.WriteCloser // guarded by mu
}

// maxLine bounds one line of the process's output.
const maxLine = 1 << 20

func (e *execLocal) deliver(_ context.Context, _ *sdk.Channel, _ websocket.MessageType, p []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	line := make([]byte, 0, len(p)+1)
	line = append(append(line, p...), '\n')
	if _, err := e.stdin.Write(line); err != nil {
		return fmt.Errorf("write to process stdin: %w", err)
	}
	return nil
}

func (e *execLocal) run(_ context.Context, s *session) {
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
	err := e.cmd.Wait()
	close(e.exited)
	var ee *exec.ExitError
	switch {
	case tooLong:
		s.svc.log.Warn("--exec process printed a line over the limit; killed", "channel", s.id, "limit", maxLine)
		s.finish(websocket.StatusMessageTooBig, "output line too long")
	case err == nil:
		s.finish(websocket.StatusNormalClosure, "")
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

// clientClosed ends the process: its stdin closes and its group gets
// SIGTERM, then SIGKILL a second later if it is still there.
func (e *execLocal) clientClosed(websocket.StatusCode, string) {
	e.mu.Lock()
	e.stdin.Close()
	e.mu.Unlock()
	e.kill(syscall.SIGTERM)
	go func() {
		t := time.NewTimer(time.Second)
		defer t.Stop()
		select {
		case <-e.exited:
		case <-t.C:
			e.kill(syscall.SIGKILL)
		}
	}()
}

func (e *execLocal) stop() { e.kill(syscall.SIGKILL) }
