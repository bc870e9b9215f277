package portmap

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPCPMapRequestEncoding(t *testing.T) {
	q := pcpMapRequest{
		LifetimeSec:  3600,
		ClientIP:     netip.MustParseAddr("10.77.0.2"),
		Nonce:        [12]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
		InternalPort: 8080,
		ExternalPort: 9090,
	}
	want := mustHex(t, `
		02 01 0000 00000e10 00000000000000000000ffff0a4d0002
		0102030405060708090a0b0c 06 000000 1f90 2382 00000000000000000000ffff00000000`)
	if got := q.encode(); !bytes.Equal(got, want) {
		t.Fatalf("encode:\n got %x\nwant %x", got, want)
	}
	q.ExternalIP = netip.MustParseAddr("11.77.0.1")
	if got := q.encode(); !bytes.Equal(got[44:60], mustHex(t, "00000000000000000000ffff0b4d0001")) {
		t.Fatalf("suggested external IP encoded as %x", got[44:60])
	}
}

func pcpReply(code byte, lifetime, epoch uint32, nonce [12]byte, iport, eport uint16, ext string) []byte {
	q := pcpMapRequest{LifetimeSec: lifetime, Nonce: nonce, InternalPort: iport, ExternalPort: eport, ExternalIP: netip.MustParseAddr(ext)}
	b := q.encode()
	b[1] |= pcpReplyBit
	b[3] = code
	b[8], b[9], b[10], b[11] = byte(epoch>>24), byte(epoch>>16), byte(epoch>>8), byte(epoch)
	for i := 12; i < 24; i++ {
		b[i] = 0
	}
	return b
}

func TestParsePCPMapReply(t *testing.T) {
	nonce := [12]byte{9, 9, 9}
	r, err := parsePCPMapReply(pcpReply(0, 120, 77, nonce, 8080, 8080, "11.77.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	want := pcpMapReply{LifetimeSec: 120, Epoch: 77, Nonce: nonce, Protocol: ipProtoTCP, InternalPort: 8080, ExternalPort: 8080, ExternalIP: netip.MustParseAddr("11.77.0.1")}
	if r != want {
		t.Fatalf("got %+v\nwant %+v", r, want)
	}

	_, err = parsePCPMapReply(pcpReply(2, 30, 77, nonce, 7777, 7777, "0.0.0.0"))
	var re *ResultError
	if !errors.As(err, &re) || re.Code != 2 || re.Protocol != "pcp" || re.Lifetime != 30*time.Second {
		t.Fatalf("refusal: got %v", err)
	}
	if !strings.Contains(err.Error(), "NOT_AUTHORIZED") {
		t.Fatalf("refusal text %q lacks the reason", err)
	}

	// A NAT-PMP-only gateway answers a PCP request with version 0, result 1.
	_, err = parsePCPMapReply([]byte{0, 0x81, 0, 1, 0, 0, 0, 5})
	if !errors.Is(err, errNotThisProtocol) {
		t.Fatalf("NAT-PMP answer: got %v", err)
	}
	for name, b := range map[string][]byte{
		"empty":      nil,
		"short":      pcpReply(0, 1, 1, nonce, 1, 1, "1.1.1.1")[:40],
		"odd length": append(pcpReply(0, 1, 1, nonce, 1, 1, "1.1.1.1"), 0),
		"request":    (pcpMapRequest{}).encode(),
		"too long":   make([]byte, 1104),
	} {
		if _, err := parsePCPMapReply(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestNATPMPEncoding(t *testing.T) {
	if got := natpmpMapRequest(8080, 9090, 7200); !bytes.Equal(got, mustHex(t, "00 02 0000 1f90 2382 00001c20")) {
		t.Fatalf("map request %x", got)
	}
	r, err := parseNATPMPReply(natpmpOpExternal, mustHex(t, "00 80 0000 0000002a 0b4d0001"))
	if err != nil || r.Epoch != 42 || r.ExternalIP != netip.MustParseAddr("11.77.0.1") {
		t.Fatalf("external reply: %+v %v", r, err)
	}
	r, err = parseNATPMPReply(natpmpOpMapTCP, mustHex(t, "00 82 0000 0000002a 1f90 2382 00000e10"))
	if err != nil || r.InternalPort != 8080 || r.ExternalPort != 9090 || r.LifetimeSec != 3600 {
		t.Fatalf("map reply: %+v %v", r, err)
	}
	_, err = parseNATPMPReply(natpmpOpMapTCP, mustHex(t, "00 82 0002 0000002a 1e61 0000 00000000"))
	var re *ResultError
	if !errors.As(err, &re) || re.Code != 2 || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("refusal: %v", err)
	}
	if _, err := parseNATPMPReply(natpmpOpMapTCP, mustHex(t, "00 80 0000 0000002a 0b4d0001")); err == nil {
		t.Fatal("wrong opcode accepted")
	}
	if _, err := parseNATPMPReply(natpmpOpMapTCP, mustHex(t, "00 82 0000 0000002a")); err == nil {
		t.Fatal("short reply accepted")
	}
	if _, err := parseNATPMPReply(natpmpOpExternal, mustHex(t, "02 80 0001")); !errors.Is(err, errNotThisProtocol) {
		t.Fatalf("PCP answer: %v", err)
	}
}

func TestEpochValid(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, c := range []struct {
		prev    uint32
		epoch   uint32
		elapsed time.Duration
		valid   bool
	}{
		{100, 110, 10 * time.Second, true},
		{100, 100, 0, true},
		{100, 99, 0, true},                  // back by one second is tolerated
		{100, 3, 5 * time.Second, false},    // restarted
		{100, 105, 60 * time.Second, false}, // restarted and ran for 5 s since
		{100, 1000, 10 * time.Second, false},
		{1000, 1600, 10 * time.Minute, true},
	} {
		if got := epochValid(c.prev, t0, c.epoch, t0.Add(c.elapsed)); got != c.valid {
			t.Errorf("epochValid(%d, +%s, %d) = %v, want %v", c.prev, c.elapsed, c.epoch, got, c.valid)
		}
	}
	var tr epochTracker
	if tr.observe(50, t0) {
		t.Fatal("first epoch seen as a restart")
	}
	if !tr.observe(2, t0.Add(3*time.Second)) {
		t.Fatal("epoch going back not seen as a restart")
	}
}

func TestParseProcNetRoute(t *testing.T) {
	table := `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	00004D0A	00000000	0001	0	0	0	00FFFFFF	0	0	0
eth1	00000000	FE01A8C0	0003	0	0	600	00000000	0	0	0
eth0	00000000	01004D0A	0003	0	0	100	00000000	0	0	0
`
	gw, err := parseProcNetRoute(strings.NewReader(table))
	if err != nil || gw != netip.MustParseAddr("10.77.0.1") {
		t.Fatalf("got %v, %v; want 10.77.0.1 (lowest metric)", gw, err)
	}
	noDefault := strings.SplitN(table, "\n", 3)[0] + "\n" + strings.SplitN(table, "\n", 3)[1] + "\n"
	if _, err := parseProcNetRoute(strings.NewReader(noDefault)); !errors.Is(err, ErrNoGateway) {
		t.Fatalf("no default route: got %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	for name, c := range map[string]Config{
		"protocol":      {Protocol: "smoke", InternalPort: 80},
		"no port":       {Protocol: Auto},
		"port range":    {Protocol: Auto, InternalPort: 70000},
		"external port": {Protocol: Auto, InternalPort: 80, ExternalPort: -1},
		"lease":         {Protocol: Auto, InternalPort: 80, Lease: time.Millisecond},
		"ipv6 gateway":  {Protocol: Auto, InternalPort: 80, Gateway: netip.MustParseAddr("fe80::1")},
	} {
		if _, err := Start(t.Context(), c); err == nil {
			t.Errorf("%s: Start accepted %+v", name, c)
		}
	}
	m, err := Start(t.Context(), Config{Protocol: Off, InternalPort: 80})
	if err != nil {
		t.Fatal(err)
	}
	if s := m.Status(); s.Protocol != "off" || s.Mapped || s.Err != "" {
		t.Fatalf("off: %+v", s)
	}
	if err := m.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// FuzzParsePCPMapReply checks that no gateway reply can crash the parser and
// that what it accepts is a well-formed MAP reply. Its seeds run as unit tests.
func FuzzParsePCPMapReply(f *testing.F) {
	nonce := [12]byte{1, 2, 3}
	f.Add(pcpReply(0, 120, 77, nonce, 8080, 8080, "11.77.0.1"))
	f.Add(pcpReply(2, 30, 77, nonce, 7777, 7777, "0.0.0.0"))
	f.Add(pcpReply(11, 0, 1, nonce, 1, 1, "::"))
	f.Add([]byte{0, 0x81, 0, 1, 0, 0, 0, 5})
	f.Add(append(pcpReply(0, 1, 1, nonce, 1, 1, "1.1.1.1"), 0, 0, 0, 0))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parsePCPMapReply(b)
		if err != nil {
			return
		}
		if len(b) < pcpMapLen || b[0] != pcpVersion || b[1] != pcpOpMap|pcpReplyBit || b[3] != 0 {
			t.Fatalf("accepted a malformed reply %x as %+v", b, r)
		}
		if !r.ExternalIP.IsValid() {
			t.Fatalf("accepted reply has no external IP: %x", b)
		}
	})
}
