package testutil

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var build struct {
	once sync.Once
	bin  string
	err  error
}

// BuildSwitchboard builds cmd/switchboard once per test binary and returns
// its path; later calls return the same file (and the Go build cache makes
// the other test packages' builds a link). Call RemoveBuilt from TestMain
// after m.Run to delete it.
func BuildSwitchboard() (string, error) {
	build.once.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			build.err = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		dir, err := os.MkdirTemp("", "switchboard-test-bin-")
		if err != nil {
			build.err = err
			return
		}
		bin := filepath.Join(dir, "switchboard")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/switchboard")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/switchboard: %w\n%s", err, out)
			return
		}
		build.bin = bin
	})
	return build.bin, build.err
}

// SwitchboardBinary is BuildSwitchboard for a test: it fails the test when
// the build fails.
func SwitchboardBinary(t testing.TB) string {
	t.Helper()
	bin, err := BuildSwitchboard()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// RemoveBuilt deletes the binary BuildSwitchboard made, if any.
func RemoveBuilt() {
	if build.bin != "" {
		os.RemoveAll(filepath.Dir(build.bin))
	}
}

// Command is the switchboard binary with args, in this environment minus
// the secrets a developer's shell may hold (SWITCHBOARD_CREDENTIAL,
// SWITCHBOARD_ADMIN_TOKEN), so a test passes exactly what it means to. Set
// Stdin, Stdout or more Env on it before StartProcess.
func Command(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(SwitchboardBinary(t), args...)
	cmd.Env = append(os.Environ(), "SWITCHBOARD_CREDENTIAL=", "SWITCHBOARD_ADMIN_TOKEN=")
	return cmd
}

// Run runs the switchboard binary (Command) with args to its end, stdin
// fed in and env added, and returns its stdout, its stderr and its exit
// code. It fails the test if the binary cannot run or takes longer than
// three times Patience.
func Run(t testing.TB, stdin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*Patience)
	defer cancel()
	cmd := Command(t, args...)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Start(); err != nil {
		t.Fatalf("start switchboard %s: %v", strings.Join(args, " "), err)
	}
	go func() { <-ctx.Done(); _ = cmd.Process.Kill() }()
	err := cmd.Wait()
	if ctx.Err() == context.DeadlineExceeded {
		t.Fatalf("switchboard %s did not end in %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), 3*Patience, o.String(), e.String())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("switchboard %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), code
}

// MustRun is Run that fails the test, showing both outputs, unless the
// binary exits 0; it returns stdout.
func MustRun(t testing.TB, stdin string, env []string, args ...string) string {
	t.Helper()
	out, errOut, code := Run(t, stdin, env, args...)
	if code != 0 {
		t.Fatalf("switchboard %s exited %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// Process is a running process whose stderr lines are collected.
type Process struct {
	Cmd    *exec.Cmd
	t      testing.TB
	name   string
	exited chan struct{}
	err    error // the exit; valid once exited is closed

	mu    sync.Mutex
	lines []string // guarded by mu
}

// StartProcess starts cmd, collects its stderr, and stops it when the test
// ends (an interrupt, then a kill after 10 s), logging its stderr if the
// test failed.
func StartProcess(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	name := filepath.Base(cmd.Path)
	for i, a := range cmd.Args[:len(cmd.Args)-1] { // switchboard's, perhaps behind a wrapper
		if filepath.Base(a) == "switchboard" {
			name = "switchboard " + cmd.Args[i+1]
			break
		}
	}
	p := &Process{Cmd: cmd, t: t, name: name, exited: make(chan struct{})}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	go func() {
		defer close(p.exited)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
		p.err = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			for _, l := range p.Lines() {
				t.Logf("%s: %s", p.name, l)
			}
		}
	})
	return p
}

// Start runs the switchboard binary with args (Command, then StartProcess).
func Start(t testing.TB, args ...string) *Process {
	t.Helper()
	return StartProcess(t, Command(t, args...))
}

// Lines returns the stderr lines so far.
func (p *Process) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Exited is closed when the process has exited and its stderr is read.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) { _ = p.Cmd.Process.Signal(sig) }

// Wait waits up to Patience for the process to exit and returns its exit
// code; it fails the test if the process does not exit or could not be
// waited for.
func (p *Process) Wait() int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(Patience):
		p.t.Fatalf("%s did not exit in %v", p.name, Patience)
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee):
		return ee.ExitCode()
	}
	p.t.Fatalf("%s: %v", p.name, p.err)
	return -1
}

// WaitLine waits up to Patience for a stderr line matching re and returns
// its submatches; it fails the test if the process exits first.
func (p *Process) WaitLine(re string) []string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	var m []string
	WaitFor(p.t, fmt.Sprintf("a line matching %q from %s", re, p.name), Patience, func() bool {
		for _, l := range p.Lines() {
			if m = rx.FindStringSubmatch(l); m != nil {
				return true
			}
		}
		select {
		case <-p.exited:
			// The last lines may have come in with the exit.
			for _, l := range p.Lines() {
				if m = rx.FindStringSubmatch(l); m != nil {
					return true
				}
			}
			p.t.Fatalf("%s exited (%v) before printing a line matching %q", p.name, p.err, re)
		default:
		}
		return false
	})
	return m
}

// URL waits for the line in which switchboard says where it is reachable
// ("switchboard: listening on URL"): serve's base URL (http:// or
// https://), listen's public URL of its scope (ws:// or wss://).
func (p *Process) URL() string {
	p.t.Helper()
	return p.WaitLine(`switchboard: listening on ([a-z]+://\S+)`)[1]
}

// StartServe runs `switchboard serve` with args (on 127.0.0.1:0 unless
// args has --listen) and returns the process and the broker's base URL
// (http://127.0.0.1:PORT, or https:// when it serves TLS).
func StartServe(t testing.TB, args ...string) (*Process, string) {
	t.Helper()
	hasListen := false
	for _, a := range args {
		hasListen = hasListen || a == "--listen" || strings.HasPrefix(a, "--listen=")
	}
	if !hasListen {
		args = append(args, "--listen", "127.0.0.1:0")
	}
	p := Start(t, append([]string{"serve"}, args...)...)
	return p, p.URL()
}

// StartListen runs `switchboard listen` with args and returns the process
// once it is attached, with the public URL it serves (ws:// or wss://).
func StartListen(t testing.TB, args ...string) (*Process, string) {
	t.Helper()
	p := Start(t, append([]string{"listen"}, args...)...)
	return p, p.URL()
}

// WS is base with its http scheme turned into the WebSocket one:
// http://h → ws://h, https://h → wss://h.
func WS(base string) string {
	if rest, ok := strings.CutPrefix(base, "http"); ok {
		return "ws" + rest
	}
	return base
}
