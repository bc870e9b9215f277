package protocol

import "encoding/binary"

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// AppendData appends a Data frame. It does not allocate when b has room.
func AppendData(b []byte, channel, seq uint64, flags byte, payload []byte) []byte {
	n := uvarintLen(channel) + uvarintLen(seq) + 1 + len(payload)
	b = append(b, byte(TypeData))
	b = binary.AppendUvarint(b, uint64(n))
	b = binary.AppendUvarint(b, channel)
	b = binary.AppendUvarint(b, seq)
	b = append(b, flags)
	return append(b, payload...)
}

// AppendAck appends an Ack frame.
func AppendAck(b []byte, channel, seq uint64) []byte {
	b = append(b, byte(TypeAck), byte(uvarintLen(channel)+uvarintLen(seq)))
	b = binary.AppendUvarint(b, channel)
	return binary.AppendUvarint(b, seq)
}

// AppendCredit appends a Credit frame.
func AppendCredit(b []byte, channel, bytes uint64) []byte {
	b = append(b, byte(TypeCredit), byte(uvarintLen(channel)+uvarintLen(bytes)))
	b = binary.AppendUvarint(b, channel)
	return binary.AppendUvarint(b, bytes)
}

// AppendPush appends a Push frame.
func AppendPush(b []byte, flags byte, prefix string, payload []byte) []byte {
	n := 1 + uvarintLen(uint64(len(prefix))) + len(prefix) + len(payload)
	b = append(b, byte(TypePush))
	b = binary.AppendUvarint(b, uint64(n))
	b = append(b, flags)
	b = putString(b, prefix)
	return append(b, payload...)
}

// Append appends the frame.
func (f *Hello) Append(b []byte) []byte {
	b, at := begin(b, TypeHello)
	b = putUvarint(b, f.Version)
	b = putString(b, f.Scope)
	b = putString(b, f.Label)
	b = putString(b, f.Credential)
	b = putStrings(b, f.Protocols)
	b = putStrings(b, f.Origins)
	b = putUvarint(b, f.Window)
	b = putUvarint(b, f.Flags)
	if f.Hold != 0 { // optional last field
		b = putUvarint(b, f.Hold)
	}
	return end(b, at)
}

// Append appends the frame.
func (f *Welcome) Append(b []byte) []byte {
	b, at := begin(b, TypeWelcome)
	b = putUvarint(b, f.Version)
	b = putUvarint(b, f.Instance)
	b = putString(b, f.Scope)
	b = putString(b, f.PublicURL)
	b = append(b, boolByte(f.Active))
	b = putUvarint(b, f.Window)
	b = putUvarint(b, f.MaxMessage)
	return end(b, at)
}

// Append appends the frame.
func (f *Error) Append(b []byte) []byte {
	b, at := begin(b, TypeError)
	b = putUvarint(b, f.Code)
	b = putString(b, f.Message)
	return end(b, at)
}

// Append appends the frame.
func (f *URL) Append(b []byte) []byte {
	b, at := begin(b, TypeURL)
	b = putString(b, f.PublicURL)
	return end(b, at)
}

// Append appends the frame.
func (f *State) Append(b []byte) []byte {
	return append(b, byte(TypeState), 1, boolByte(f.Active))
}

// Append appends the frame.
func (f *Connect) Append(b []byte) []byte {
	b, at := begin(b, TypeConnect)
	b = putUvarint(b, f.Channel)
	b = putString(b, f.Remote)
	b = putString(b, f.Origin)
	b = putString(b, f.Target)
	b = putStrings(b, f.Protocols)
	b = putString(b, f.App)
	b = putString(b, f.FirstLine)
	b = putHeaders(b, f.Headers)
	b = putBytes(b, f.Body)
	return end(b, at)
}

// Append appends the frame.
func (f *Accept) Append(b []byte) []byte {
	b, at := begin(b, TypeAccept)
	b = putUvarint(b, f.Channel)
	b = putString(b, f.Protocol)
	b = putHeaders(b, f.Headers)
	return end(b, at)
}

// Append appends the frame.
func (f *Respond) Append(b []byte) []byte {
	b, at := begin(b, TypeRespond)
	b = putUvarint(b, f.Channel)
	b = putUvarint(b, f.Status)
	b = putHeaders(b, f.Headers)
	b = putBytes(b, f.Body)
	return end(b, at)
}

// Append appends the frame.
func (f *Reject) Append(b []byte) []byte {
	b = append(b, byte(TypeReject), byte(uvarintLen(f.Channel)))
	return binary.AppendUvarint(b, f.Channel)
}

func (f *ChannelInfo) put(b []byte) []byte {
	b = putUvarint(b, f.Channel)
	b = putString(b, f.Origin)
	b = putString(b, f.Target)
	b = putString(b, f.Protocol)
	b = putString(b, f.App)
	b = putString(b, f.Remote)
	return putUvarint(b, f.Since)
}

// Append appends the frame as an Open frame.
func (f *ChannelInfo) Append(b []byte) []byte {
	b, at := begin(b, TypeOpen)
	b = f.put(b)
	return end(b, at)
}

// Append appends the frame.
func (f *Close) Append(b []byte) []byte {
	b, at := begin(b, TypeClose)
	b = putUvarint(b, f.Channel)
	b = putUvarint(b, f.Code)
	b = putString(b, f.Reason)
	return end(b, at)
}

// Append appends the frame.
func (f *List) Append(b []byte) []byte {
	b = append(b, byte(TypeList), byte(uvarintLen(f.Request)))
	return binary.AppendUvarint(b, f.Request)
}

// Append appends the frame.
func (f *Clients) Append(b []byte) []byte {
	b, at := begin(b, TypeClients)
	b = putUvarint(b, f.Request)
	b = putUvarint(b, uint64(len(f.Clients)))
	for i := range f.Clients {
		b = f.Clients[i].put(b)
	}
	return end(b, at)
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}
