package protocol

import (
	"encoding/binary"
	"fmt"
)

// dec reads the fields of one frame body. The first error sticks; later reads
// return zero values, so a decoder checks d.err once at the end.
type dec struct {
	b   []byte
	err error
}

func (d *dec) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, k := binary.Uvarint(d.b)
	if k <= 0 {
		if k == 0 {
			d.err = ErrShort
		} else {
			d.err = ErrOverflow
		}
		return 0
	}
	d.b = d.b[k:]
	return v
}

func (d *dec) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.err = ErrShort
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// bytes returns a view of the next length-prefixed byte string.
func (d *dec) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = ErrShort
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) string() string { return string(d.bytes()) }

// count reads a list length and checks it against the bytes left, each
// element taking at least min bytes, so a hostile count cannot make the
// decoder allocate more than the frame holds.
func (d *dec) count(min int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.b)/min) {
		d.err = ErrShort
		return 0
	}
	return int(n)
}

func (d *dec) strings() []string {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	v := make([]string, n)
	for i := range v {
		v[i] = d.string()
	}
	return v
}

func (d *dec) headers() []Header {
	n := d.count(2)
	if n == 0 {
		return nil
	}
	v := make([]Header, n)
	for i := range v {
		v[i].Name = d.string()
		v[i].Value = d.string()
	}
	return v
}

// rest returns the remaining bytes (the payload of Data and Push).
func (d *dec) rest() []byte {
	v := d.b
	d.b = nil
	return v
}

// done reports the sticky error, or ErrTrailing when bytes are left over.
func (d *dec) done(t Type) error {
	if d.err == nil && len(d.b) != 0 {
		d.err = ErrTrailing
	}
	if d.err != nil {
		return fmt.Errorf("decode %s frame: %w", t, d.err)
	}
	return nil
}

func putUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func putBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func putString(b []byte, v string) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func putStrings(b []byte, v []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	for _, s := range v {
		b = putString(b, s)
	}
	return b
}

func putHeaders(b []byte, v []Header) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	for _, h := range v {
		b = putString(b, h.Name)
		b = putString(b, h.Value)
	}
	return b
}
