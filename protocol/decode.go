package protocol

// Each Decode method reads a frame body as returned by Next. Byte slices in
// the result (Data.Payload, Push.Payload, Connect.Body, Respond.Body) are
// views into body; strings are copies.

// Decode reads the body of a Data frame without allocating.
func (f *Data) Decode(body []byte) error {
	d := dec{b: body}
	f.Channel = d.uvarint()
	f.Seq = d.uvarint()
	f.Flags = d.byte()
	f.Payload = d.rest()
	return d.done(TypeData)
}

// Decode reads the body of an Ack frame without allocating.
func (f *Ack) Decode(body []byte) error {
	d := dec{b: body}
	f.Channel = d.uvarint()
	f.Seq = d.uvarint()
	return d.done(TypeAck)
}

// Decode reads the body of a Credit frame without allocating.
func (f *Credit) Decode(body []byte) error {
	d := dec{b: body}
	f.Channel = d.uvarint()
	f.Bytes = d.uvarint()
	return d.done(TypeCredit)
}

// Decode reads the body of a Push frame.
func (f *Push) Decode(body []byte) error {
	d := dec{b: body}
	f.Flags = d.byte()
	f.Prefix = d.string()
	f.Payload = d.rest()
	return d.done(TypePush)
}

// Decode reads the body of a Hello frame.
func (f *Hello) Decode(body []byte) error {
	d := dec{b: body}
	f.Version = d.uvarint()
	f.Scope = d.string()
	f.Label = d.string()
	f.Credential = d.string()
	f.Protocols = d.strings()
	f.Origins = d.strings()
	f.Window = d.uvarint()
	f.Flags = d.uvarint()
	if len(d.b) > 0 && d.err == nil { // optional last field
		f.Hold = d.uvarint()
	}
	return d.done(TypeHello)
}

// Decode reads the body of a Welcome frame.
func (f *Welcome) Decode(body []byte) error {
	d := dec{b: body}
	f.Version = d.uvarint()
	f.Instance = d.uvarint()
	f.Scope = d.string()
	f.PublicURL = d.string()
	f.Active = d.byte() != 0
	f.Window = d.uvarint()
	f.MaxMessage = d.uvarint()
	return d.done(TypeWelcome)
}

// Decode reads the body of an Error frame.
func (f *Error) Decode(body []byte) error {
	d := dec{b: body}
	f.Code = d.uvarint()
	f.Message = d.string()
	return d.done(TypeError)
}

// Decode reads the body of a URL frame.
func (f *URL) Decode(body []byte) error {
	d := dec{b: body}
	f.PublicURL = d.string()
	return d.done(TypeURL)
}

// Decode reads the body of a State frame.
func (f *State) Decode(body []byte) error {
	d := dec{b: body}
	f.Active = d.byte() != 0
	return d.done(TypeState)
}

// Decode reads the body of a Connect frame.
func (f *Connect) Decode(body []byte) error {
	d := dec{b: body}
	f.Channel = d.uvarint()
	f.Remote = d.string()
	f.Origin = d.string()
	f.Target = d.string()
	f.Protocols = d.strings()
	f.App = d.string()
	f.FirstLine = d.string()
	f.Headers = d.headers()
	f.Body = d.bytes()
	return d.done(TypeConnect)
}

// Decode reads the body of an Accept frame.
func (f *Accept) Decode(body []byte) error {
	d := dec{b: body}
	f.Channel = d.uvarint()
	f.Protocol = d.string()
	f.Headers = d.headers()
	return d.done(TypeAccept)
}

// Decode reads the body of a Respond frame.
func (f *Respond) Decode(body []byte) error {
	d := dec{b: body}
	f.Channel = d.uvarint()
	f.Status = d.uvarint()
	f.Headers = d.headers()
	f.Body = d.bytes()
	return d.done(TypeRespond)
}

// Decode reads the body of a Reject frame.
func (f *Reject) Decode(body []byte) error {
	d := dec{b: body}
	f.Channel = d.uvarint()
	return d.done(TypeReject)
}

func (f *ChannelInfo) get(d *dec) {
	f.Channel = d.uvarint()
	f.Origin = d.string()
	f.Target = d.string()
	f.Protocol = d.string()
	f.App = d.string()
	f.Remote = d.string()
	f.Since = d.uvarint()
}

// Decode reads the body of an Open frame.
func (f *ChannelInfo) Decode(body []byte) error {
	d := dec{b: body}
	f.get(&d)
	return d.done(TypeOpen)
}

// Decode reads the body of a Close frame.
func (f *Close) Decode(body []byte) error {
	d := dec{b: body}
	f.Channel = d.uvarint()
	f.Code = d.uvarint()
	f.Reason = d.string()
	return d.done(TypeClose)
}

// Decode reads the body of a List frame.
func (f *List) Decode(body []byte) error {
	d := dec{b: body}
	f.Request = d.uvarint()
	return d.done(TypeList)
}

// Decode reads the body of a Clients frame.
func (f *Clients) Decode(body []byte) error {
	d := dec{b: body}
	f.Request = d.uvarint()
	n := d.count(7) // an entry takes at least 7 bytes
	if n > 0 {
		f.Clients = make([]ChannelInfo, n)
		for i := range f.Clients {
			f.Clients[i].get(&d)
		}
	}
	return d.done(TypeClients)
}
