// Package apps_test runs the apps features through the real switchboard
// binary: the CLI's token, reload and connect wsapp:// commands, SIGHUP,
// and the chooser page in Debian's Chromium.
package apps_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildOut  []byte
)

// repoRoot is the module root, two levels up.
func repoRoot(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// binary builds cmd/switchboard once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "switchboard-apps-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "switchboard")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/switchboard")
		cmd.Dir = repoRoot(t)
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build ./cmd/switchboard: %v\n%s", buildErr, buildOut)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// broker is a running `switchboard serve --config`.
type broker struct {
	cmd     *exec.Cmd
	url     string // http://127.0.0.1:port
	cfgPath string
	logs    *lockedBuf
	exited  chan struct{}
}

type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) add(s string) {
	l.mu.Lock()
	l.b.WriteString(s + "\n")
	l.mu.Unlock()
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func writeConfig(t *testing.T, path string, f *config.File) {
	t.Helper()
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

var listeningRE = regexp.MustCompile(`listening on (http://\S+)`)

// startBroker writes cfg to dir/config.json and runs serve on it.
func startBroker(t *testing.T, dir string, cfg *config.File) *broker {
	t.Helper()
	b := &broker{cfgPath: filepath.Join(dir, "config.json"), logs: &lockedBuf{}, exited: make(chan struct{})}
	writeConfig(t, b.cfgPath, cfg)
	b.cmd = exec.Command(binary(t), "serve", "--config", b.cfgPath, "--listen", "127.0.0.1:0", "--log-level", "debug")
	stderr, err := b.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlc := make(chan string, 1)
	go func() {
		defer close(b.exited)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			b.logs.add(sc.Text())
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				urlc <- m[1]
			}
		}
		_ = b.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = b.cmd.Process.Signal(os.Interrupt)
		select {
		case <-b.exited:
		case <-time.After(10 * time.Second):
			_ = b.cmd.Process.Kill()
			<-b.exited
		}
		if t.Failed() {
			t.Logf("broker log:\n%s", b.logs.String())
		}
	})
	select {
	case b.url = <-urlc:
	case <-b.exited:
		t.Fatalf("broker exited:\n%s", b.logs.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("broker did not start:\n%s", b.logs.String())
	}
	return b
}

func (b *broker) ws() string { return "ws" + strings.TrimPrefix(b.url, "http") }

// run runs the CLI with args and returns stdout; it fails the test on a
// non-zero exit unless wantErr.
func run(t *testing.T, stdin string, env []string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func mustRun(t *testing.T, stdin string, env []string, args ...string) string {
	t.Helper()
	out, errOut, err := run(t, stdin, env, args...)
	if err != nil {
		t.Fatalf("switchboard %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// waitFor is testutil.WaitFor with this package's default deadline.
func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	testutil.WaitFor(t, what, 10*time.Second, f)
}
