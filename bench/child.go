package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// child is one process the harness started. Its stderr (and stdout, unless
// the caller reads it) goes to a log file in the run's temp dir.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	err     error         // set before done is closed
}

// startChild starts argv in its own process group. If lineWant is not
// empty, it waits (up to the ctx deadline) for a stdout line starting with
// it and returns that line.
func startChild(ctx context.Context, log *slog.Logger, dir, name string, lineWant string, argv ...string) (*child, string, error) {
	logPath := filepath.Join(dir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, "", fmt.Errorf("create log for %s: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout io.ReadCloser
	if lineWant != "" {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			lf.Close()
			return nil, "", fmt.Errorf("stdout pipe for %s: %w", name, err)
		}
	} else {
		cmd.Stdout = lf
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, "", fmt.Errorf("start %s (%s): %w", name, argv[0], err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		if stdout != nil {
			sc := bufio.NewScanner(stdout)
			sent := false
			for sc.Scan() {
				l := sc.Text()
				if !sent && strings.HasPrefix(l, lineWant) {
					lines <- l
					sent = true
				}
				fmt.Fprintln(lf, l)
			}
		}
		c.err = cmd.Wait()
		lf.Close()
		close(c.done)
	}()
	log.Debug("started", "name", name, "pid", cmd.Process.Pid, "argv", argv)
	if lineWant == "" {
		return c, "", nil
	}
	select {
	case l := <-lines:
		return c, l, nil
	case <-c.done:
		return nil, "", fmt.Errorf("%s exited before printing %q: %v; log: %s", name, lineWant, c.err, c.tail())
	case <-ctx.Done():
		c.stop()
		return nil, "", fmt.Errorf("%s did not print %q: %w", name, lineWant, ctx.Err())
	}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports whether the process is gone.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process and its group, then SIGKILL to the
// group after a grace period, and waits for the process to be reaped.
func (c *child) stop() {
	if c == nil || c.exited() {
		return
	}
	pid := c.pid()
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(3 * time.Second):
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-c.done
}

// tail returns the last lines of the child's log, for error messages.
func (c *child) tail() string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 800 {
		s = "…" + s[len(s)-800:]
	}
	return s
}

// pollUntil calls f every 50 ms until it returns nil or the deadline passes.
func pollUntil(ctx context.Context, d time.Duration, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var last error
	for {
		if last = f(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
