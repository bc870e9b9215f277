// Package dist_test builds the Debian package with `make package`, installs
// it with dpkg into a scratch root, checks the systemd unit with
// systemd-analyze verify, and runs the installed binary as the unit would.
package dist_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out.String())
	}
	return out.String()
}

func TestPackageInstallsAndRuns(t *testing.T) {
	for _, tool := range []string{"dpkg", "dpkg-deb", "systemd-analyze", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (scripts/install-test-deps.sh installs it): %v", tool, err)
		}
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// The package, as a release would make it.
	out := run(t, repo, []string{"VERSION=9.8.7"}, "make", "package")
	m := regexp.MustCompile(`created package: (\S+\.deb)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("make package made no .deb:\n%s", out)
	}
	deb := filepath.Join(repo, m[1])
	t.Cleanup(func() { os.Remove(deb) })
	contents := run(t, repo, nil, "dpkg-deb", "--contents", deb)
	for _, want := range []string{"./usr/bin/switchboard", "./lib/systemd/system/switchboard.service",
		"./etc/switchboard/config.json", "-rw------- root/root", "./etc/default/switchboard"} {
		if !strings.Contains(contents, want) {
			t.Errorf("package lacks %s:\n%s", want, contents)
		}
	}

	// Installed by dpkg into a scratch root (its own database).
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644)
	run(t, repo, nil, "dpkg", "--root="+root, "--force-script-chrootless", "--force-not-root", "--log=/dev/null", "-i", deb)
	if st := run(t, repo, nil, "dpkg", "--root="+root, "-s", "switchboard"); !strings.Contains(st, "Status: install ok installed") || !strings.Contains(st, "Version: 9.8.7") {
		t.Fatalf("dpkg status:\n%s", st)
	}
	bin := filepath.Join(root, "usr/bin/switchboard")
	if v := run(t, root, nil, bin, "version"); !strings.HasPrefix(v, "switchboard 9.8.7 ") {
		t.Fatalf("installed binary's version: %q", v)
	}

	// The unit: hardened, reloads by SIGHUP, and systemd-analyze verify
	// has nothing to say (it warns, and still exits 0, on unknown keys).
	unitPath := filepath.Join(root, "lib/systemd/system/switchboard.service")
	unit, _ := os.ReadFile(unitPath)
	for _, want := range []string{"DynamicUser=yes", "NoNewPrivileges=yes", "StateDirectory=switchboard",
		"ExecReload=/bin/kill -HUP $MAINPID", "ExecStart=/usr/bin/switchboard serve --config /etc/switchboard/config.json"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %s", want)
		}
	}
	vdir := t.TempDir()
	os.WriteFile(filepath.Join(vdir, "switchboard.service"), bytes.ReplaceAll(unit, []byte("/usr/bin/switchboard"), []byte(bin)), 0o644)
	if v := run(t, vdir, nil, "systemd-analyze", "verify", filepath.Join(vdir, "switchboard.service")); strings.TrimSpace(v) != "" {
		t.Fatalf("systemd-analyze verify:\n%s", v)
	}

	// Run the installed binary as the unit does: its config, its state
	// directory, the admin token from the environment file's variable.
	cfg := filepath.Join(root, "etc/switchboard/config.json")
	run(t, root, nil, bin, "config", "check", cfg)
	state := t.TempDir()
	const token = "pkg-test-admin-token-0123456789abcdef"
	serve := exec.Command(bin, "serve", "--config", cfg, "--listen", "127.0.0.1:0")
	serve.Env = append(os.Environ(), "STATE_DIRECTORY="+state, "SWITCHBOARD_ADMIN_TOKEN="+token)
	base := testutil.StartProcess(t, serve).URL()
	resp, err := http.Get(base + "/healthz?verbose")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "version: 9.8.7") {
		t.Fatalf("/healthz?verbose: %q", body)
	}
	if st := run(t, root, []string{"SWITCHBOARD_ADMIN_TOKEN=" + token}, bin, "status", "--broker", base); !strings.HasPrefix(st, "broker: switchboard 9.8.7") {
		t.Fatalf("status of the installed broker: %q", st)
	}
	if _, err := os.Stat(filepath.Join(state, "token.key")); err != nil {
		t.Fatalf("the token key is not in $STATE_DIRECTORY: %v", err)
	}
}
