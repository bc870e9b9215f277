package portmap

// Wire formats of NAT-PMP (RFC 6886) and PCP (RFC 6887), both spoken to UDP
// port 5351 of the gateway. Only what a TCP port mapping needs is here.
//
// NAT-PMP (all fields big-endian):
//
//	external address request:  ver=0 | op=0                                   (2 bytes)
//	external address response: ver=0 | op=128 | result(2) | epoch(4) | ipv4(4) (12 bytes)
//	map TCP request:           ver=0 | op=2 | reserved(2) | internal port(2) |
//	                           suggested external port(2) | lifetime(4)       (12 bytes)
//	map TCP response:          ver=0 | op=130 | result(2) | epoch(4) | internal port(2) |
//	                           external port(2) | lifetime(4)                  (16 bytes)
//
// PCP MAP (RFC 6887 sections 7.1, 7.2, 11.1):
//
//	request header (24):  ver=2 | R=0,op=1 | reserved(2) | lifetime(4) | client IP(16)
//	response header (24): ver=2 | R=1,op=1 | reserved(1) | result(1) | lifetime(4) |
//	                      epoch(4) | reserved(12)
//	MAP payload (36):     nonce(12) | protocol(1) | reserved(3) | internal port(2) |
//	                      external port(2) | external IP(16)
//
// IPv4 addresses travel in PCP as IPv4-mapped IPv6 addresses (::ffff:a.b.c.d).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

const (
	natpmpVersion     = 0
	natpmpOpExternal  = 0
	natpmpOpMapTCP    = 2
	natpmpReplyBit    = 0x80
	pcpVersion        = 2
	pcpOpMap          = 1
	pcpReplyBit       = 0x80
	pcpHeaderLen      = 24
	pcpMapPayloadLen  = 36
	pcpMapLen         = pcpHeaderLen + pcpMapPayloadLen
	pcpMaxMessageLen  = 1100
	ipProtoTCP        = 6
	gatewayPortNumber = 5351
)

// ResultError is a refusal from a NAT-PMP or PCP gateway: the gateway answered,
// and said no. Code is the protocol's result code.
type ResultError struct {
	Protocol string // "natpmp" or "pcp"
	Code     int
	Lifetime time.Duration // PCP: how long the gateway says the error holds
}

func (e *ResultError) Error() string {
	var text string
	if e.Protocol == "pcp" {
		text = pcpResultText(e.Code)
	} else {
		text = natpmpResultText(e.Code)
	}
	return fmt.Sprintf("%s gateway refused: result code %d (%s)", e.Protocol, e.Code, text)
}

func natpmpResultText(code int) string {
	switch code {
	case 1:
		return "unsupported version"
	case 2:
		return "not authorized/refused"
	case 3:
		return "network failure: gateway has no external address"
	case 4:
		return "out of resources"
	case 5:
		return "unsupported opcode"
	}
	return "unknown result code"
}

func pcpResultText(code int) string {
	switch code {
	case 1:
		return "UNSUPP_VERSION: gateway does not speak this PCP version"
	case 2:
		return "NOT_AUTHORIZED: gateway policy refuses this mapping"
	case 3:
		return "MALFORMED_REQUEST"
	case 4:
		return "UNSUPP_OPCODE"
	case 5:
		return "UNSUPP_OPTION"
	case 6:
		return "MALFORMED_OPTION"
	case 7:
		return "NETWORK_FAILURE: gateway has no external address"
	case 8:
		return "NO_RESOURCES"
	case 9:
		return "UNSUPP_PROTOCOL"
	case 10:
		return "USER_EX_QUOTA: too many mappings for this host"
	case 11:
		return "CANNOT_PROVIDE_EXTERNAL: the suggested external port is not available"
	case 12:
		return "ADDRESS_MISMATCH: gateway sees a different source address (another NAT in between?)"
	case 13:
		return "EXCESSIVE_REMOTE_PEERS"
	}
	return "unknown result code"
}

// errNotThisProtocol is returned when the gateway answered in another protocol
// version (a NAT-PMP-only gateway answering PCP, or the reverse).
var errNotThisProtocol = errors.New("gateway answered with another protocol version")

// natpmpExternalRequest encodes the NAT-PMP external address request.
func natpmpExternalRequest() []byte { return []byte{natpmpVersion, natpmpOpExternal} }

// natpmpMapRequest encodes a NAT-PMP TCP mapping request; lifetime 0 with
// external port 0 deletes the mapping.
func natpmpMapRequest(internalPort, externalPort uint16, lifetimeSec uint32) []byte {
	b := make([]byte, 12)
	b[0], b[1] = natpmpVersion, natpmpOpMapTCP
	binary.BigEndian.PutUint16(b[4:], internalPort)
	binary.BigEndian.PutUint16(b[6:], externalPort)
	binary.BigEndian.PutUint32(b[8:], lifetimeSec)
	return b
}

// natpmpReply is a decoded NAT-PMP response.
type natpmpReply struct {
	Epoch        uint32
	ExternalIP   netip.Addr // external address responses only
	InternalPort uint16     // map responses only
	ExternalPort uint16
	LifetimeSec  uint32
}

// parseNATPMPReply decodes a response to a request with opcode op.
func parseNATPMPReply(op byte, b []byte) (natpmpReply, error) {
	var r natpmpReply
	if len(b) < 4 {
		return r, fmt.Errorf("natpmp reply too short: %d bytes", len(b))
	}
	if b[0] != natpmpVersion {
		return r, fmt.Errorf("natpmp reply has version %d: %w", b[0], errNotThisProtocol)
	}
	if b[1] != op|natpmpReplyBit {
		return r, fmt.Errorf("natpmp reply has opcode %d, want %d", b[1], op|natpmpReplyBit)
	}
	if code := binary.BigEndian.Uint16(b[2:]); code != 0 {
		return r, &ResultError{Protocol: "natpmp", Code: int(code)}
	}
	want := 12
	if op == natpmpOpMapTCP {
		want = 16
	}
	if len(b) < want {
		return r, fmt.Errorf("natpmp reply too short: %d bytes, want %d", len(b), want)
	}
	r.Epoch = binary.BigEndian.Uint32(b[4:])
	if op == natpmpOpExternal {
		r.ExternalIP = netip.AddrFrom4([4]byte(b[8:12]))
		return r, nil
	}
	r.InternalPort = binary.BigEndian.Uint16(b[8:])
	r.ExternalPort = binary.BigEndian.Uint16(b[10:])
	r.LifetimeSec = binary.BigEndian.Uint32(b[12:])
	return r, nil
}

// pcpMapRequest is a PCP MAP request for one TCP port.
type pcpMapRequest struct {
	LifetimeSec  uint32
	ClientIP     netip.Addr // the source address the request is sent from
	Nonce        [12]byte
	InternalPort uint16
	ExternalPort uint16     // suggested; 0 lets the gateway choose
	ExternalIP   netip.Addr // suggested; invalid means "any IPv4"
}

func (q pcpMapRequest) encode() []byte {
	b := make([]byte, pcpMapLen)
	b[0], b[1] = pcpVersion, pcpOpMap
	binary.BigEndian.PutUint32(b[4:], q.LifetimeSec)
	putAddr16(b[8:24], q.ClientIP)
	p := b[pcpHeaderLen:]
	copy(p[0:12], q.Nonce[:])
	p[12] = ipProtoTCP
	binary.BigEndian.PutUint16(p[16:], q.InternalPort)
	binary.BigEndian.PutUint16(p[18:], q.ExternalPort)
	ext := q.ExternalIP
	if !ext.IsValid() {
		ext = netip.IPv4Unspecified()
	}
	putAddr16(p[20:36], ext)
	return b
}

func putAddr16(dst []byte, a netip.Addr) {
	if !a.IsValid() {
		a = netip.IPv4Unspecified()
	}
	if a.Is4() {
		a = netip.AddrFrom16(a.As16()) // IPv4-mapped
	}
	s := a.As16()
	copy(dst, s[:])
}

// pcpMapReply is a decoded successful PCP MAP response.
type pcpMapReply struct {
	LifetimeSec  uint32
	Epoch        uint32
	Nonce        [12]byte
	Protocol     uint8
	InternalPort uint16
	ExternalPort uint16
	ExternalIP   netip.Addr // unmapped: an IPv4 address for IPv4 mappings
}

// parsePCPMapReply decodes a PCP response to a MAP request. A non-zero result
// code is returned as *ResultError; a NAT-PMP answer (version 0) as
// errNotThisProtocol. It never panics, whatever b holds.
func parsePCPMapReply(b []byte) (pcpMapReply, error) {
	var r pcpMapReply
	if len(b) < 4 {
		return r, fmt.Errorf("pcp reply too short: %d bytes", len(b))
	}
	if b[0] != pcpVersion {
		// A NAT-PMP-only gateway answers "unsupported version" in its own format.
		return r, fmt.Errorf("pcp reply has version %d: %w", b[0], errNotThisProtocol)
	}
	if len(b) < pcpHeaderLen {
		return r, fmt.Errorf("pcp reply too short: %d bytes", len(b))
	}
	if len(b) > pcpMaxMessageLen || len(b)%4 != 0 {
		return r, fmt.Errorf("pcp reply has invalid length %d", len(b))
	}
	if b[1] != pcpOpMap|pcpReplyBit {
		return r, fmt.Errorf("pcp reply has opcode byte %#x, want %#x", b[1], pcpOpMap|pcpReplyBit)
	}
	r.LifetimeSec = binary.BigEndian.Uint32(b[4:])
	r.Epoch = binary.BigEndian.Uint32(b[8:])
	if code := b[3]; code != 0 {
		return r, &ResultError{Protocol: "pcp", Code: int(code), Lifetime: time.Duration(r.LifetimeSec) * time.Second}
	}
	if len(b) < pcpMapLen {
		return r, fmt.Errorf("pcp MAP reply too short: %d bytes, want %d", len(b), pcpMapLen)
	}
	p := b[pcpHeaderLen:]
	copy(r.Nonce[:], p[0:12])
	r.Protocol = p[12]
	r.InternalPort = binary.BigEndian.Uint16(p[16:])
	r.ExternalPort = binary.BigEndian.Uint16(p[18:])
	r.ExternalIP = netip.AddrFrom16([16]byte(p[20:36])).Unmap()
	return r, nil
}

// epochValid reports whether a gateway's epoch (seconds since its mappings
// were last lost) is consistent with the previous one, by the rule of
// RFC 6887 section 8.5 (NAT-PMP's rule in RFC 6886 section 3.6 is the same
// idea). prevAt and now are the client's receive times. An invalid epoch means
// the gateway restarted and lost its mappings.
func epochValid(prevEpoch uint32, prevAt time.Time, epoch uint32, now time.Time) bool {
	if int64(epoch) < int64(prevEpoch)-1 {
		return false
	}
	client := int64(now.Sub(prevAt) / time.Second)
	server := int64(epoch) - int64(prevEpoch)
	if client+2 < server-server/16 || server+2 < client-client/16 {
		return false
	}
	return true
}
