package main

import (
	"bytes"
	"net"
	"net/http"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// wsdScript prints what websocketd's contract gives a process, then
// echoes lines; it also writes to stderr.
const wsdScript = `for v in GATEWAY_INTERFACE PATH_INFO QUERY_STRING REQUEST_METHOD SERVER_PROTOCOL REMOTE_ADDR REMOTE_HOST ` +
	`HTTP_ORIGIN HTTP_COOKIE HTTP_USER_AGENT HTTP_X_CUSTOM HTTP_SEC_WEBSOCKET_VERSION HTTP_UPGRADE ` +
	`CONTENT_LENGTH AUTH_TYPE REMOTE_USER SWITCHBOARD_CREDENTIAL; do eval "echo $v=\$$v"; done
echo "REMOTE_PORT_SET=${REMOTE_PORT:+yes} UNIQUE_ID_SET=${UNIQUE_ID:+yes} SERVER_PORT_SET=${SERVER_PORT:+yes}"
echo "NAMES=$(env | cut -d= -f1 | sort | tr '\n' ' ')"
echo to-stderr >&2
while read l; do echo "got $l"; done`

// startWebsocketd runs Debian's websocketd with args on a free loopback
// port and returns its ws:// base URL.
func startWebsocketd(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("websocketd"); err != nil {
		t.Fatalf("websocketd is not installed (scripts/install-test-deps.sh installs it): %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command("websocketd", append([]string{"--address", "127.0.0.1", "--port", strconv.Itoa(port), "--loglevel", "error"}, args...)...)
	testutil.StartProcess(t, cmd)
	url := "ws://127.0.0.1:" + strconv.Itoa(port)
	testutil.Eventually(t, "websocketd to listen", func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return url
}

// session dials url with the same handshake headers every time, sends
// lines after reading want lines, and returns every text line received.
func converse(t *testing.T, url string, greeting int, send []string) []string {
	t.Helper()
	h := http.Header{}
	h.Set("Origin", "https://app.example")
	h.Set("Cookie", "session=abc")
	h.Set("User-Agent", "compare/1.0")
	h.Set("X-Custom", "one")
	c, _, err := websocket.Dial(tctx(t), url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	defer c.CloseNow()
	var got []string
	read := func() {
		_, p, err := c.Read(tctx(t))
		if err != nil {
			t.Fatalf("read from %s: %v", url, err)
		}
		got = append(got, string(p))
	}
	for i := 0; i < greeting; i++ {
		read()
	}
	for _, s := range send {
		if err := c.Write(tctx(t), websocket.MessageText, []byte(s)); err != nil {
			t.Fatal(err)
		}
		read()
	}
	c.Close(websocket.StatusNormalClosure, "")
	return got
}

// TestExecLikeWebsocketd: the same script under Debian's websocketd and
// under `listen --exec` (production broker) sees the same CGI-like
// environment and sends the same messages; listen adds only the
// SWITCHBOARD_* variables and HTTP_HOST, and never passes its own
// credential. Binary mode relays raw bytes the same way, --maxforks
// bounds the processes, and stderr is logged tagged with the channel.
func TestExecLikeWebsocketd(t *testing.T) {
	wsd := startWebsocketd(t, "sh", "-c", wsdScript)
	b := startProdBroker(t)
	l2, _ := testutil.StartListen(t, b.ws+"/svc/sh2/", "--exec", wsdScript, "--maxforks", "1", "--credential", b.secret)

	const greeting = 19
	fromWsd := converse(t, wsd+"/a/b?x=1&y=2", greeting, []string{"hello", "two words"})
	fromSb := converse(t, b.ws+"/svc/sh2/a/b?x=1&y=2", greeting, []string{"hello", "two words"})
	names := func(lines []string) (rest []string, set map[string]bool) {
		set = map[string]bool{}
		for _, ln := range lines {
			if n, ok := strings.CutPrefix(ln, "NAMES="); ok {
				for _, f := range strings.Fields(n) {
					set[f] = true
				}
				continue
			}
			rest = append(rest, ln)
		}
		return rest, set
	}
	wsdLines, wsdNames := names(fromWsd)
	sbLines, sbNames := names(fromSb)
	for i := range wsdLines {
		if i >= len(sbLines) || sbLines[i] != wsdLines[i] {
			t.Errorf("line %d: websocketd %q, listen --exec %q", i, wsdLines[i], at(sbLines, i))
		}
	}
	var missing, extra []string
	for n := range wsdNames {
		if !sbNames[n] && n != "SERVER_SOFTWARE" {
			missing = append(missing, n)
		}
	}
	for n := range sbNames {
		if !wsdNames[n] && !strings.HasPrefix(n, "SWITCHBOARD_") && n != "HTTP_HOST" {
			extra = append(extra, n)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("environment names differ: listen lacks %v, has more %v", missing, extra)
	}
	if !strings.Contains(strings.Join(sbLines, "\n"), "SWITCHBOARD_CREDENTIAL=\n") {
		t.Error("the script saw listen's credential")
	}
	l2.WaitLine(`level=INFO msg="--exec stderr" channel=\d+ pid=\d+ line=to-stderr`)

	// --maxforks 1: a second client while one runs is rejected. (The
	// process of the conversation above may still be ending: wait for its
	// slot.)
	var c1 *websocket.Conn
	testutil.Eventually(t, "the fork slot of the first conversation", func() bool {
		c, _, err := websocket.Dial(tctx(t), b.ws+"/svc/sh2/one", nil)
		c1 = c
		return err == nil
	})
	t.Cleanup(func() { c1.CloseNow() })
	_, _, _ = c1.Read(tctx(t))
	if _, resp, err := websocket.Dial(tctx(t), b.ws+"/svc/sh2/two", nil); err == nil || resp == nil || resp.StatusCode != 404 {
		t.Fatalf("second client past --maxforks 1: %v %v", resp, err)
	}
	l2.WaitLine(`--maxforks processes are running`)
	c1.Close(websocket.StatusNormalClosure, "")
	testutil.Eventually(t, "a fork slot to free", func() bool {
		c, _, err := websocket.Dial(tctx(t), b.ws+"/svc/sh2/three", nil)
		if err == nil {
			c.CloseNow()
		}
		return err == nil
	})

	// Binary mode: raw bytes both ways, under both.
	wsdBin := startWebsocketd(t, "--binary", "cat")
	testutil.StartListen(t, b.ws+"/svc/bin/", "--exec", "cat", "--binary", "--credential", b.secret)
	payload := []byte{0, 1, 2, 0xff, '\n', 'x'}
	for _, u := range []string{wsdBin + "/", b.ws + "/svc/bin/"} {
		c := dial(t, u)
		if err := c.Write(tctx(t), websocket.MessageBinary, payload); err != nil {
			t.Fatal(err)
		}
		var got []byte
		deadline := time.Now().Add(10 * time.Second)
		for len(got) < len(payload) && time.Now().Before(deadline) {
			typ, p, err := c.Read(tctx(t))
			if err != nil || typ != websocket.MessageBinary {
				t.Fatalf("%s binary read: %v %v", u, typ, err)
			}
			got = append(got, p...)
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("%s binary: got %x want %x", u, got, payload)
		}
		c.Close(websocket.StatusNormalClosure, "")
	}
}

func at(l []string, i int) string {
	if i < len(l) {
		return l[i]
	}
	return "<none>"
}
