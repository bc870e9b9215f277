package wstest

import (
	"fmt"
	"slices"
	"strings"
)

// Cases returns the conformance cases for an endpoint with opts's message
// limit, grouped by the categories of the Autobahn testsuite: framing,
// ping, rsv, opcode, frag, utf8, close, limit and mask. Names are unique.
func Cases(opts Options) []Case {
	limit := opts.MaxMessageSize
	var cs []Case
	cs = append(cs, framingCases(limit)...)
	cs = append(cs, pingCases()...)
	cs = append(cs, rsvCases()...)
	cs = append(cs, opcodeCases()...)
	cs = append(cs, fragCases(limit)...)
	cs = append(cs, utf8Cases()...)
	cs = append(cs, closeCases()...)
	cs = append(cs, limitCases(limit)...)
	cs = append(cs, maskCases()...)
	return cs
}

// Frame and outcome builders, short so that the tables read as tables.

func textF(s string) Frame   { return Frame{Fin: true, Opcode: OpText, Payload: []byte(s)} }
func binF(b []byte) Frame    { return Frame{Fin: true, Opcode: OpBinary, Payload: b} }
func pingF(b []byte) Frame   { return Frame{Fin: true, Opcode: OpPing, Payload: b} }
func pongF(b []byte) Frame   { return Frame{Fin: true, Opcode: OpPong, Payload: b} }
func rawText(b []byte) Frame { return Frame{Fin: true, Opcode: OpText, Payload: b} }
func closeF(code uint16, reason string) Frame {
	return Frame{Fin: true, Opcode: OpClose, Payload: ClosePayload(code, reason)}
}
func fragF(op byte, p []byte, fin bool) Frame { return Frame{Fin: fin, Opcode: op, Payload: p} }

// split cuts p into n fragments of op (continuations after the first), as
// even as possible; n may exceed len(p), giving empty fragments.
func split(op byte, p []byte, n int) []Frame {
	fs := make([]Frame, n)
	for i := range n {
		lo, hi := len(p)*i/n, len(p)*(i+1)/n
		fs[i] = Frame{Fin: i == n-1, Opcode: OpContinuation, Payload: p[lo:hi]}
	}
	fs[0].Opcode = op
	return fs
}

func textM(s string) Message         { return Message{Opcode: OpText, Payload: []byte(s)} }
func msgM(op byte, p []byte) Message { return Message{Opcode: op, Payload: p} }
func pongM(p []byte) Message         { return Message{Opcode: OpPong, Payload: p} }

func open(replies ...Message) Want   { return Want{Replies: replies, End: EndOpen} }
func closed(replies ...Message) Want { return Want{Replies: replies, End: EndClosed} }

// protocolError: close 1002 or the connection dropped, after replies.
func protocolError(replies ...Message) Want {
	return Want{Replies: replies, End: EndFail, Codes: []int{1002}, Drop: true}
}

func invalidData(replies ...Message) Want {
	return Want{Replies: replies, End: EndFail, Codes: []int{1007}}
}

// asciiPayload is n bytes of printable ASCII (valid UTF-8 at any cut).
func asciiPayload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// binaryPayload is n bytes cycling through every byte value.
func binaryPayload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func seq(items ...[]Frame) []Frame { return slices.Concat(items...) }

func framingCases(limit int) []Case {
	var cs []Case
	sizes := []int{0, 1, 125, 126, 127, 128, 1000, 65535, 65536, limit - 1, limit}
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)
	for _, n := range sizes {
		if n < 0 || n > limit {
			continue
		}
		name := fmt.Sprint(n)
		if n == limit {
			name = "limit"
		} else if n == limit-1 {
			name = "limit-minus-1"
		}
		t, b := asciiPayload(n), binaryPayload(n)
		cs = append(cs,
			Case{Name: "framing/text-" + name, Send: []Frame{rawText(t)}, Want: open(msgM(OpText, t))},
			Case{Name: "framing/binary-" + name, Send: []Frame{binF(b)}, Want: open(msgM(OpBinary, b))},
		)
	}
	big := binaryPayload(min(65536, limit))
	small := asciiPayload(125)
	cs = append(cs,
		Case{Name: "framing/text-125-chop-1", Send: []Frame{rawText(small)}, Chop: 1, Want: open(msgM(OpText, small))},
		Case{Name: "framing/binary-large-chop-997", Send: []Frame{binF(big)}, Chop: 997, Want: open(msgM(OpBinary, big))},
		Case{Name: "framing/text-then-binary-one-write", Send: []Frame{textF("Hello"), binF([]byte{0, 1, 2})},
			Want: open(textM("Hello"), msgM(OpBinary, []byte{0, 1, 2}))},
	)
	var many []Frame
	var echoes []Message
	for i := range 100 {
		s := fmt.Sprintf("message %d", i)
		many = append(many, textF(s))
		echoes = append(echoes, textM(s))
	}
	cs = append(cs, Case{Name: "framing/100-messages-one-write", Send: many, Want: open(echoes...)})
	return cs
}

func pingCases() []Case {
	p125 := binaryPayload(125)
	var ten []Frame
	var pongs []Message
	for i := range 10 {
		p := []byte(fmt.Sprintf("ping %d", i))
		ten = append(ten, pingF(p))
		pongs = append(pongs, pongM(p))
	}
	return []Case{
		{Name: "ping/empty", Send: []Frame{pingF(nil)}, Want: open(pongM(nil))},
		{Name: "ping/text-payload", Send: []Frame{pingF([]byte("Hello, world!"))}, Want: open(pongM([]byte("Hello, world!")))},
		{Name: "ping/binary-payload", Send: []Frame{pingF([]byte{0x00, 0xff, 0xfe, 0xfd, 0x80})}, Want: open(pongM([]byte{0x00, 0xff, 0xfe, 0xfd, 0x80}))},
		{Name: "ping/125", Send: []Frame{pingF(p125)}, Want: open(pongM(p125))},
		{Name: "ping/125-chop-1", Send: []Frame{pingF(p125)}, Chop: 1, Want: open(pongM(p125))},
		{Name: "ping/10-in-a-row", Send: ten, Want: open(pongs...)},
		{Name: "ping/126", Send: []Frame{pingF(binaryPayload(126))}, Want: protocolError()},
		{Name: "ping/fragmented", Send: []Frame{fragF(OpPing, []byte("frag"), false), fragF(OpContinuation, []byte("ment"), true)}, Want: protocolError()},
		{Name: "ping/after-text-then-126", Send: []Frame{textF("Hello"), pingF(binaryPayload(126)), pingF(nil)}, Want: protocolError(textM("Hello"))},
		{Name: "pong/unsolicited", Send: []Frame{pongF([]byte("unsolicited"))}, Want: open()},
		{Name: "pong/unsolicited-then-ping", Send: []Frame{pongF([]byte("unsolicited")), pingF([]byte("solicited"))}, Want: open(pongM([]byte("solicited")))},
		{Name: "pong/126", Send: []Frame{pongF(binaryPayload(126))}, Want: protocolError()},
		{Name: "pong/fragmented", Send: []Frame{fragF(OpPong, []byte("frag"), false), fragF(OpContinuation, []byte("ment"), true)}, Want: protocolError()},
	}
}

func rsvCases() []Case {
	var cs []Case
	for rsv := byte(1); rsv <= 7; rsv++ {
		bad := textF("reserved bits")
		bad.RSV = rsv
		cs = append(cs, Case{
			Name: fmt.Sprintf("rsv/text-%03b", rsv),
			Send: []Frame{textF("Hello"), bad, pingF([]byte("after"))},
			Want: protocolError(textM("Hello")),
		})
	}
	for _, f := range []struct {
		name string
		f    Frame
	}{
		{"binary", binF([]byte{1, 2, 3})},
		{"ping", pingF([]byte("ping"))},
		{"pong", pongF([]byte("pong"))},
		{"close", closeF(1000, "")},
		{"continuation", fragF(OpContinuation, []byte("part 2"), true)},
	} {
		for _, rsv := range []byte{RSV1, RSV2, RSV3} {
			bad := f.f
			bad.RSV = rsv
			send := []Frame{bad}
			if f.name == "continuation" {
				send = []Frame{fragF(OpText, []byte("part 1"), false), bad}
			}
			cs = append(cs, Case{Name: fmt.Sprintf("rsv/%s-%03b", f.name, rsv), Send: send, Want: protocolError()})
		}
	}
	return cs
}

func opcodeCases() []Case {
	var cs []Case
	for _, op := range []byte{3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF} {
		cs = append(cs,
			Case{
				Name: fmt.Sprintf("opcode/%d", op),
				Send: []Frame{textF("Hello"), {Fin: true, Opcode: op, Payload: []byte("reserved opcode")}, pingF([]byte("after"))},
				Want: protocolError(textM("Hello")),
			},
			Case{
				Name: fmt.Sprintf("opcode/%d-empty", op),
				Send: []Frame{{Fin: true, Opcode: op}},
				Want: protocolError(),
			},
		)
	}
	return cs
}

func fragCases(limit int) []Case {
	var cs []Case
	for _, n := range []int{1, 2, 3, 10, 64} {
		t, b := asciiPayload(640), binaryPayload(640)
		cs = append(cs,
			Case{Name: fmt.Sprintf("frag/text-in-%d", n), Send: split(OpText, t, n), Want: open(msgM(OpText, t))},
			Case{Name: fmt.Sprintf("frag/binary-in-%d", n), Send: split(OpBinary, b, n), Want: open(msgM(OpBinary, b))},
		)
	}
	bytewise := asciiPayload(100)
	large := binaryPayload(min(64<<10, limit))
	ping := []byte("ping")
	cs = append(cs,
		Case{Name: "frag/text-1-byte-fragments", Send: split(OpText, bytewise, 100), Want: open(msgM(OpText, bytewise))},
		Case{Name: "frag/binary-large-in-64", Send: split(OpBinary, large, 64), Want: open(msgM(OpBinary, large))},
		Case{Name: "frag/all-empty", Send: split(OpText, nil, 3), Want: open(textM(""))},
		Case{Name: "frag/empty-first-and-last", Send: []Frame{fragF(OpText, nil, false), fragF(OpContinuation, []byte("data"), false), fragF(OpContinuation, nil, true)}, Want: open(textM("data"))},
		Case{Name: "frag/ping-between", Send: []Frame{fragF(OpText, []byte("frag1"), false), pingF(ping), fragF(OpContinuation, []byte("frag2"), true)},
			Want: open(pongM(ping), textM("frag1frag2"))},
		Case{Name: "frag/ping-between-chop-1", Chop: 1, Send: []Frame{fragF(OpText, []byte("frag1"), false), pingF(ping), fragF(OpContinuation, []byte("frag2"), true)},
			Want: open(pongM(ping), textM("frag1frag2"))},
		Case{Name: "frag/pings-between-each", Send: []Frame{
			fragF(OpBinary, []byte("a"), false), pingF([]byte("1")), fragF(OpContinuation, []byte("b"), false), pingF([]byte("2")),
			fragF(OpContinuation, []byte("c"), false), pingF([]byte("3")), fragF(OpContinuation, []byte("d"), true)},
			Want: open(pongM([]byte("1")), pongM([]byte("2")), pongM([]byte("3")), msgM(OpBinary, []byte("abcd")))},
		Case{Name: "frag/pong-between", Send: []Frame{fragF(OpText, []byte("frag1"), false), pongF(ping), fragF(OpContinuation, []byte("frag2"), true)},
			Want: open(textM("frag1frag2"))},
		Case{Name: "frag/continuation-without-start", Send: []Frame{fragF(OpContinuation, []byte("orphan"), true)}, Want: protocolError()},
		Case{Name: "frag/continuations-without-start", Send: []Frame{fragF(OpContinuation, []byte("orphan"), false), fragF(OpContinuation, []byte("orphan"), true)}, Want: protocolError()},
		Case{Name: "frag/continuation-after-whole-message", Send: []Frame{textF("Hello"), fragF(OpContinuation, []byte("orphan"), true)}, Want: protocolError(textM("Hello"))},
		Case{Name: "frag/text-inside-text", Send: []Frame{fragF(OpText, []byte("a"), false), textF("b")}, Want: protocolError()},
		Case{Name: "frag/binary-inside-text", Send: []Frame{fragF(OpText, []byte("a"), false), binF([]byte("b"))}, Want: protocolError()},
		Case{Name: "frag/text-inside-binary", Send: []Frame{fragF(OpBinary, []byte("a"), false), fragF(OpText, []byte("b"), false), fragF(OpContinuation, []byte("c"), true)}, Want: protocolError()},
		Case{Name: "frag/close-mid-message", Send: []Frame{fragF(OpText, []byte("never finished"), false), closeF(1000, "")}, Want: closed()},
	)
	return cs
}

// utf8Valid and utf8Invalid: byte sequences from the Autobahn testsuite's
// section 6 and Markus Kuhn's UTF-8 decoder stress test.
var utf8Valid = []struct {
	name string
	b    string
}{
	{"hello-mu", "Hello-µ@ßöäüàá-UTF-8!!"},
	{"kosme", "κόσμε"},
	{"nul", "\x00"},
	{"first-2-byte", "\xc2\x80"},
	{"last-2-byte", "\xdf\xbf"},
	{"first-3-byte", "\xe0\xa0\x80"},
	{"last-3-byte", "\xef\xbf\xbf"},
	{"first-4-byte", "\xf0\x90\x80\x80"},
	{"last-4-byte", "\xf4\x8f\xbf\xbf"},
	{"before-surrogates", "\xed\x9f\xbf"},
	{"after-surrogates", "\xee\x80\x80"},
	{"replacement-char", "\xef\xbf\xbd"},
	{"bom", "\xef\xbb\xbf"},
	{"noncharacter-fffe", "\xef\xbf\xbe"},
	{"emoji", "😀 🎉"},
}

var utf8Invalid = []struct {
	name string
	b    string
}{
	{"lone-continuation-80", "\x80"},
	{"lone-continuation-bf", "\xbf"},
	{"start-then-space", "\xc2\x20"},
	{"truncated-2-byte", "\xce"},
	{"truncated-3-byte", "\xe0\xa0"},
	{"truncated-4-byte", "\xf0\x90\x80"},
	{"overlong-slash-2", "\xc0\xaf"},
	{"overlong-slash-3", "\xe0\x80\xaf"},
	{"overlong-slash-4", "\xf0\x80\x80\xaf"},
	{"overlong-nul-2", "\xc0\x80"},
	{"overlong-max-2", "\xc1\xbf"},
	{"overlong-max-3", "\xe0\x9f\xbf"},
	{"overlong-max-4", "\xf0\x8f\xbf\xbf"},
	{"surrogate-high", "\xed\xa0\x80"},
	{"surrogate-low", "\xed\xbf\xbf"},
	{"surrogate-pair", "\xed\xa0\x80\xed\xb0\x80"},
	{"above-max", "\xf4\x90\x80\x80"},
	{"byte-f5", "\xf5\x80\x80\x80"},
	{"byte-fe", "\xfe"},
	{"byte-ff", "\xff"},
	{"5-byte-form", "\xf8\x88\x80\x80\x80"},
	{"kosme-surrogate-edited", "κόσμε\xed\xa0\x80edited"},
}

func utf8Cases() []Case {
	var cs []Case
	var all strings.Builder
	for _, v := range utf8Valid {
		all.WriteString(v.b)
		cs = append(cs, Case{Name: "utf8/valid-" + v.name, Send: []Frame{textF(v.b)}, Want: open(textM(v.b))})
	}
	kosme := []byte("κόσμε")
	emoji := []byte("😀")
	cs = append(cs,
		Case{Name: "utf8/valid-all-chop-1", Send: []Frame{textF(all.String())}, Chop: 1, Want: open(textM(all.String()))},
		Case{Name: "utf8/valid-kosme-1-byte-fragments", Send: split(OpText, kosme, len(kosme)), Want: open(msgM(OpText, kosme))},
	)
	for cut := 1; cut < len(emoji); cut++ {
		cs = append(cs, Case{
			Name: fmt.Sprintf("utf8/valid-4-byte-split-at-%d", cut),
			Send: []Frame{fragF(OpText, emoji[:cut], false), fragF(OpContinuation, emoji[cut:], true)},
			Want: open(msgM(OpText, emoji)),
		})
	}
	for _, v := range utf8Invalid {
		framed := []byte("Hello" + v.b + "world")
		cs = append(cs,
			Case{Name: "utf8/invalid-" + v.name, Send: []Frame{textF(v.b)}, Want: invalidData()},
			Case{Name: "utf8/invalid-" + v.name + "-1-byte-fragments", Send: split(OpText, framed, len(framed)), Want: invalidData()},
		)
	}
	cs = append(cs,
		Case{Name: "utf8/invalid-only-in-last-fragment", Send: []Frame{fragF(OpText, kosme, false), fragF(OpContinuation, []byte("\xed\xa0\x80"), true)}, Want: invalidData()},
		Case{Name: "utf8/invalid-truncated-at-message-end", Send: []Frame{fragF(OpText, kosme, false), fragF(OpContinuation, emoji[:3], true)}, Want: invalidData()},
		Case{Name: "utf8/invalid-after-valid-message", Send: []Frame{textF("Hello"), textF("\xff")}, Want: invalidData(textM("Hello"))},
		Case{Name: "utf8/invalid-in-binary-is-echoed", Send: []Frame{binF([]byte("\xff\xfe\xed\xa0\x80"))}, Want: open(msgM(OpBinary, []byte("\xff\xfe\xed\xa0\x80")))},
	)
	return cs
}

func closeCases() []Case {
	cs := []Case{
		{Name: "close/empty", Send: []Frame{{Fin: true, Opcode: OpClose}}, Want: closed()},
		{Name: "close/reason", Send: []Frame{closeF(1000, "Hello World!")}, Want: closed()},
		{Name: "close/reason-123-bytes", Send: []Frame{closeF(1000, string(asciiPayload(123)))}, Want: closed()},
		{Name: "close/reason-utf8", Send: []Frame{closeF(1000, "κόσμε 😀")}, Want: closed()},
		{Name: "close/chop-1", Send: []Frame{closeF(1000, "bye")}, Chop: 1, Want: closed()},
		{Name: "close/after-text", Send: []Frame{textF("Hello"), closeF(1000, "")}, Want: closed(textM("Hello"))},
		{Name: "close/after-ping", Send: []Frame{pingF([]byte("x")), closeF(1000, "")}, Want: closed(pongM([]byte("x")))},
		{Name: "close/then-text-ignored", Send: []Frame{closeF(1000, ""), textF("ignored")}, Want: closed()},
		{Name: "close/then-ping-ignored", Send: []Frame{closeF(1000, ""), pingF([]byte("ignored"))}, Want: closed()},
		{Name: "close/payload-1-byte", Send: []Frame{{Fin: true, Opcode: OpClose, Payload: []byte{0x03}}}, Want: protocolError()},
		{Name: "close/payload-126", Send: []Frame{closeF(1000, string(asciiPayload(124)))}, Want: protocolError()},
		{Name: "close/fragmented", Send: []Frame{{Opcode: OpClose, Payload: ClosePayload(1000, "")}, fragF(OpContinuation, nil, true)}, Want: protocolError()},
		{Name: "close/reason-invalid-utf8", Send: []Frame{closeF(1000, "κόσμε\xed\xa0\x80edited")},
			Want: Want{End: EndFail, Codes: []int{1002, 1007}, Drop: true}},
	}
	for _, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4001, 4999} {
		cs = append(cs, Case{Name: fmt.Sprintf("close/code-%d", code), Send: []Frame{closeF(code, "bye")}, Want: closed()})
	}
	for _, code := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		cs = append(cs, Case{Name: fmt.Sprintf("close/invalid-code-%d", code), Send: []Frame{closeF(code, "")}, Want: protocolError()})
	}
	return cs
}

func limitCases(limit int) []Case {
	tooBig := func(replies ...Message) Want {
		return Want{Replies: replies, End: EndFail, Codes: []int{1009}}
	}
	over := asciiPayload(limit + 1)
	at := binaryPayload(limit)
	announced := Frame{Fin: true, Opcode: OpBinary, Payload: binaryPayload(limit + 1), Length: max(uint64(limit)*4, 1<<40)}
	return []Case{
		{Name: "limit/text-over", Send: []Frame{rawText(over)}, Want: tooBig()},
		{Name: "limit/binary-over", Send: []Frame{binF(binaryPayload(limit + 1))}, Want: tooBig()},
		{Name: "limit/over-after-echo", Send: []Frame{textF("Hello"), rawText(over)}, Want: tooBig(textM("Hello"))},
		{Name: "limit/fragmented-at-limit", Send: split(OpBinary, at, 4), Want: open(msgM(OpBinary, at))},
		{Name: "limit/fragmented-over", Send: split(OpText, over, 4), Want: tooBig()},
		// The endpoint may refuse on the announced length before reading the
		// bytes that follow; closing with them unread can reset the
		// connection before the close frame is read, so a drop is accepted.
		{Name: "limit/announced-huge", Send: []Frame{announced}, Want: Want{End: EndFail, Codes: []int{1009}, Drop: true}},
	}
}

func maskCases() []Case {
	unmasked := func(f Frame) Frame { f.Unmasked = true; return f }
	return []Case{
		{Name: "mask/unmasked-text", Send: []Frame{unmasked(textF("Hello"))}, Want: protocolError()},
		{Name: "mask/unmasked-binary", Send: []Frame{unmasked(binF([]byte{1, 2, 3}))}, Want: protocolError()},
		{Name: "mask/unmasked-empty-text", Send: []Frame{unmasked(textF(""))}, Want: protocolError()},
		{Name: "mask/unmasked-ping", Send: []Frame{unmasked(pingF([]byte("ping")))}, Want: protocolError()},
		{Name: "mask/unmasked-close", Send: []Frame{unmasked(closeF(1000, ""))}, Want: protocolError()},
		{Name: "mask/unmasked-continuation", Send: []Frame{fragF(OpText, []byte("a"), false), unmasked(fragF(OpContinuation, []byte("b"), true))}, Want: protocolError()},
	}
}
