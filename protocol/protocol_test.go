package protocol

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json from the frames in this file")

// vector is one entry of the shared test vectors that the Go and the
// JavaScript codecs both check: the frame's fields as JSON and its bytes.
type vector struct {
	Name   string          `json:"name"`
	Type   string          `json:"type"`
	Fields json.RawMessage `json:"fields"`
	Hex    string          `json:"hex"`
}

type sample struct {
	name  string
	frame interface{ Append([]byte) []byte }
	typ   Type
}

func samples() []sample {
	return []sample{
		{"hello", &Hello{Version: 1, Scope: "ws://127.0.0.1:8080/echo/", Label: "v2", Credential: "s3cret", Protocols: []string{"chat", "superchat"}, Origins: []string{"https://a.example"}, Window: 262144, Flags: 0}, TypeHello},
		{"hello-private", &Hello{Version: 1, Scope: "ws://127.0.0.1:8080/", Flags: HelloPrivate}, TypeHello},
		{"hello-hold", &Hello{Version: 1, Scope: "ws://127.0.0.1:8080/svc/", Hold: 5000}, TypeHello},
		{"welcome", &Welcome{Version: 1, Instance: 7, Scope: "/echo/", PublicURL: "ws://203.0.113.9:8080/echo/", Active: true, Window: 262144, MaxMessage: 1 << 20}, TypeWelcome},
		{"error", &Error{Code: ErrCodeUnauthorized, Message: "scope /echo/ needs a credential that owns it"}, TypeError},
		{"state", &State{Active: false}, TypeState},
		{"url", &URL{PublicURL: "ws://203.0.113.9:40123/echo/"}, TypeURL},
		{"connect", &Connect{Channel: 300, Remote: "127.0.0.1:50000", Origin: "https://a.example", Target: "ws://127.0.0.1:8080/echo/x?y=1", Protocols: []string{"chat"}, App: "", FirstLine: "GET /echo/x?y=1 HTTP/1.1", Headers: []Header{{"Host", "127.0.0.1:8080"}, {"Upgrade", "websocket"}, {"Sec-WebSocket-Protocol", "chat"}}, Body: []byte{}}, TypeConnect},
		{"accept", &Accept{Channel: 300, Protocol: "chat", Headers: []Header{{"X-Served-By", "v2"}}}, TypeAccept},
		{"respond", &Respond{Channel: 300, Status: 401, Headers: []Header{{"WWW-Authenticate", `Basic realm="x"`}}, Body: []byte("who are you?")}, TypeRespond},
		{"reject", &Reject{Channel: 300}, TypeReject},
		{"open", &ChannelInfo{Channel: 300, Origin: "https://a.example", Target: "ws://127.0.0.1:8080/echo/x", Protocol: "chat", App: "notes", Remote: "127.0.0.1:50000", Since: 1795000000000}, TypeOpen},
		{"close", &Close{Channel: 300, Code: 4001, Reason: "bye ✓"}, TypeClose},
		{"list", &List{Request: 9}, TypeList},
		{"clients", &Clients{Request: 9, Clients: []ChannelInfo{{Channel: 1, Target: "ws://h/a/", Since: 1}, {Channel: 2, Origin: "o", Target: "ws://h/a/b", Protocol: "p", Since: 2}}}, TypeClients},
		{"data-text", dataFrame{Data{Channel: 300, Seq: 1, Flags: 0, Payload: []byte("hello ✓")}}, TypeData},
		{"data-binary", dataFrame{Data{Channel: 1 << 40, Seq: 1 << 33, Flags: FlagBinary, Payload: []byte{0, 1, 2, 255}}}, TypeData},
		{"data-empty", dataFrame{Data{Channel: 1, Seq: 0, Flags: 0, Payload: []byte{}}}, TypeData},
		{"ack", ackFrame{Ack{Channel: 300, Seq: 128}}, TypeAck},
		{"credit", creditFrame{Credit{Channel: 300, Bytes: 65536}}, TypeCredit},
		{"push", pushFrame{Push{Flags: FlagBinary, Prefix: "/echo/room1", Payload: []byte("news")}}, TypePush},
	}
}

type dataFrame struct{ Data }

func (f dataFrame) Append(b []byte) []byte {
	return AppendData(b, f.Channel, f.Seq, f.Flags, f.Payload)
}

type ackFrame struct{ Ack }

func (f ackFrame) Append(b []byte) []byte { return AppendAck(b, f.Channel, f.Seq) }

type creditFrame struct{ Credit }

func (f creditFrame) Append(b []byte) []byte { return AppendCredit(b, f.Channel, f.Bytes) }

type pushFrame struct{ Push }

func (f pushFrame) Append(b []byte) []byte { return AppendPush(b, f.Flags, f.Prefix, f.Payload) }

// decodeAny decodes one frame body into a fresh value of its type.
func decodeAny(t Type, body []byte) (any, error) {
	var v interface{ Decode([]byte) error }
	switch t {
	case TypeHello:
		v = new(Hello)
	case TypeWelcome:
		v = new(Welcome)
	case TypeError:
		v = new(Error)
	case TypeState:
		v = new(State)
	case TypeURL:
		v = new(URL)
	case TypeConnect:
		v = new(Connect)
	case TypeAccept:
		v = new(Accept)
	case TypeRespond:
		v = new(Respond)
	case TypeReject:
		v = new(Reject)
	case TypeOpen:
		v = new(ChannelInfo)
	case TypeData:
		v = new(Data)
	case TypeAck:
		v = new(Ack)
	case TypeCredit:
		v = new(Credit)
	case TypeClose:
		v = new(Close)
	case TypePush:
		v = new(Push)
	case TypeList:
		v = new(List)
	case TypeClients:
		v = new(Clients)
	default:
		return nil, errors.New("unknown frame type")
	}
	return v, v.Decode(body)
}

// plain returns the struct a sample wraps, for comparison with decodeAny.
func plain(f any) any {
	switch f := f.(type) {
	case dataFrame:
		return &f.Data
	case ackFrame:
		return &f.Ack
	case creditFrame:
		return &f.Credit
	case pushFrame:
		return &f.Push
	}
	return f
}

func TestRoundTrip(t *testing.T) {
	for _, s := range samples() {
		b := s.frame.Append([]byte{0xAA}) // a prefix must be kept
		if b[0] != 0xAA {
			t.Fatalf("%s: prefix clobbered", s.name)
		}
		typ, body, rest, err := Next(b[1:])
		if err != nil || typ != s.typ || len(rest) != 0 {
			t.Fatalf("%s: Next = %v %v rest %d", s.name, typ, err, len(rest))
		}
		got, err := decodeAny(typ, body)
		if err != nil {
			t.Fatalf("%s: decode: %v", s.name, err)
		}
		if want := plain(s.frame); !reflect.DeepEqual(normalize(got), normalize(want)) {
			t.Fatalf("%s: round trip\n got %#v\nwant %#v", s.name, got, want)
		}
	}
}

// normalize maps empty and nil byte slices alike.
func normalize(v any) any {
	b, _ := json.Marshal(v)
	var m any
	_ = json.Unmarshal(b, &m)
	return m
}

func TestBatchOfFrames(t *testing.T) {
	var msg []byte
	for _, s := range samples() {
		msg = s.frame.Append(msg)
	}
	n := 0
	for len(msg) > 0 {
		typ, body, rest, err := Next(msg)
		if err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		if _, err := decodeAny(typ, body); err != nil {
			t.Fatalf("frame %d (%s): %v", n, typ, err)
		}
		msg = rest
		n++
	}
	if n != len(samples()) {
		t.Fatalf("got %d frames, want %d", n, len(samples()))
	}
}

func TestMalformed(t *testing.T) {
	cases := map[string][]byte{
		"empty":           {},
		"type only":       {byte(TypeData)},
		"short body":      {byte(TypeData), 5, 1, 1},
		"varint overflow": {byte(TypeData), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"too large":       append([]byte{byte(TypeData)}, 0x80, 0x80, 0x80, 0x80, 0x01),
	}
	for name, b := range cases {
		if _, _, _, err := Next(b); err == nil {
			t.Errorf("%s: Next accepted %x", name, b)
		}
	}
	// Bodies whose fields do not fit.
	var h Hello
	if err := h.Decode([]byte{1, 200}); err == nil {
		t.Error("hello with a string longer than the body was accepted")
	}
	var a Ack
	if err := a.Decode([]byte{1, 2, 3}); !errors.Is(err, ErrTrailing) {
		t.Errorf("ack with trailing byte: %v", err)
	}
	var c Clients
	if err := c.Decode([]byte{1, 0xff, 0xff, 0x03}); err == nil {
		t.Error("clients with a count larger than the body was accepted")
	}
}

func TestDataPathDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 4096)
	payload := bytes.Repeat([]byte("x"), 1024)
	allocs := testing.AllocsPerRun(1000, func() {
		b := AppendData(buf[:0], 12345, 678, FlagBinary, payload)
		b = AppendAck(b, 12345, 678)
		b = AppendCredit(b, 12345, 1024)
		for len(b) > 0 {
			typ, body, rest, err := Next(b)
			if err != nil {
				t.Fatal(err)
			}
			switch typ {
			case TypeData:
				var d Data
				if d.Decode(body) != nil || len(d.Payload) != 1024 {
					t.Fatal("bad data")
				}
			case TypeAck:
				var a Ack
				if a.Decode(body) != nil {
					t.Fatal("bad ack")
				}
			case TypeCredit:
				var c Credit
				if c.Decode(body) != nil {
					t.Fatal("bad credit")
				}
			}
			b = rest
		}
	})
	if allocs != 0 {
		t.Fatalf("data path allocates %v times per round", allocs)
	}
}

// TestVectors checks the shared vectors that the JavaScript codec also reads
// (web/test/codec.test.mjs), so that the two codecs cannot drift. Run with
// -update after changing a frame layout.
func TestVectors(t *testing.T) {
	var vs []vector
	for _, s := range samples() {
		fields, err := json.Marshal(plain(s.frame))
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, vector{Name: s.name, Type: s.typ.String(), Fields: fields, Hex: hex.EncodeToString(s.frame.Append(nil))})
	}
	path := filepath.Join("testdata", "vectors.json")
	want, err := json.MarshalIndent(vs, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read vectors (run go test ./protocol -update to create them): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is out of date with the codec: run go test ./protocol -update and check the diff", path)
	}
}

// FuzzDecode feeds arbitrary link messages to the decoder: it must never
// panic, and whatever decodes must encode back to a frame that decodes to
// the same value.
func FuzzDecode(f *testing.F) {
	for _, s := range samples() {
		f.Add(s.frame.Append(nil))
	}
	var batch []byte
	for _, s := range samples() {
		batch = s.frame.Append(batch)
	}
	f.Add(batch)
	f.Fuzz(func(t *testing.T, msg []byte) {
		for len(msg) > 0 {
			typ, body, rest, err := Next(msg)
			if err != nil {
				return
			}
			v, err := decodeAny(typ, body)
			if err == nil {
				reencode(t, typ, v)
			}
			msg = rest
		}
	})
}

func reencode(t *testing.T, typ Type, v any) {
	var b []byte
	switch v := v.(type) {
	case *Data:
		b = AppendData(nil, v.Channel, v.Seq, v.Flags, v.Payload)
	case *Ack:
		b = AppendAck(nil, v.Channel, v.Seq)
	case *Credit:
		b = AppendCredit(nil, v.Channel, v.Bytes)
	case *Push:
		b = AppendPush(nil, v.Flags, v.Prefix, v.Payload)
	case interface{ Append([]byte) []byte }:
		b = v.Append(nil)
	}
	typ2, body, rest, err := Next(b)
	if err != nil || typ2 != typ || len(rest) != 0 {
		t.Fatalf("re-encoded %s does not parse: %v", typ, err)
	}
	v2, err := decodeAny(typ2, body)
	if err != nil {
		t.Fatalf("re-encoded %s does not decode: %v", typ, err)
	}
	if !reflect.DeepEqual(normalize(v), normalize(v2)) {
		t.Fatalf("%s changed in a round trip:\n%#v\n%#v", typ, v, v2)
	}
}

func TestCheckSubprotocol(t *testing.T) {
	offered := []string{"chat", "superchat"}
	for _, ok := range []string{"", "chat", "superchat"} {
		if err := CheckSubprotocol(ok, offered); err != nil {
			t.Errorf("CheckSubprotocol(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"Chat", "other"} {
		if err := CheckSubprotocol(bad, offered); !errors.Is(err, ErrNotOffered) {
			t.Errorf("CheckSubprotocol(%q) = %v, want ErrNotOffered", bad, err)
		}
	}
	if err := CheckSubprotocol("chat", nil); !errors.Is(err, ErrNotOffered) {
		t.Errorf("a subprotocol when none was offered: %v", err)
	}
}
