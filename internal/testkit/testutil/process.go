package testutil

import (
	"bufio"
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

// Process is a running process whose stderr lines are collected.
type Process struct {
	Cmd    *exec.Cmd
	t      testing.TB
	exited chan struct{}

	mu    sync.Mutex
	lines []string // guarded by mu
}

// StartProcess starts cmd, collects its stderr, and stops it when the test
// ends (an interrupt, then a kill after 10 s), logging its stderr if the
// test failed.
func StartProcess(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{Cmd: cmd, t: t, exited: make(chan struct{})}
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
		_ = cmd.Wait()
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
				t.Logf("%s: %s", filepath.Base(cmd.Path), l)
			}
		}
	})
	return p
}

// Lines returns the stderr lines so far.
func (p *Process) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Exited is closed when the process has exited and its stderr is read.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// WaitLine waits up to Patience for a stderr line matching re and returns
// its submatches; it fails the test if the process exits first.
func (p *Process) WaitLine(re string) []string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	var m []string
	WaitFor(p.t, fmt.Sprintf("a line matching %q from %s", re, filepath.Base(p.Cmd.Path)), Patience, func() bool {
		for _, l := range p.Lines() {
			if m = rx.FindStringSubmatch(l); m != nil {
				return true
			}
		}
		select {
		case <-p.exited:
			p.t.Fatalf("%v exited before printing a line matching %q", p.Cmd.Args, re)
		default:
		}
		return false
	})
	return m
}

// StartServe runs `switchboard serve` with args (on 127.0.0.1:0 unless
// args has --listen) and returns the process and the broker's base URL
// (http://127.0.0.1:PORT) from its "listening on" line.
func StartServe(t testing.TB, args ...string) (*Process, string) {
	t.Helper()
	hasListen := false
	for _, a := range args {
		hasListen = hasListen || a == "--listen" || strings.HasPrefix(a, "--listen=")
	}
	if !hasListen {
		args = append(args, "--listen", "127.0.0.1:0")
	}
	p := StartProcess(t, exec.Command(SwitchboardBinary(t), append([]string{"serve"}, args...)...))
	return p, p.WaitLine(`switchboard: listening on (https?://\S+)`)[1]
}
