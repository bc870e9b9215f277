package broker

import (
	"compress/flate"
	"errors"
	"io"
	"sync"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/internal/bufpool"
)

// deflateTail ends a permessage-deflate message (RFC 7692 7.2.2: the four
// bytes the sender removed), then adds an empty final block so that the
// decompressor reports the end instead of an unexpected EOF.
const deflateTail = "\x00\x00\xff\xff\x01\x00\x00\xff\xff"

// inflater is a pooled decompressor with its source: the message, then the
// tail. Without context takeover every message stands alone, so one pool
// serves every connection and an idle client holds none.
type inflater struct {
	src  []byte
	tail int
	fr   io.ReadCloser
}

func (i *inflater) Read(p []byte) (int, error) {
	if len(i.src) > 0 {
		n := copy(p, i.src)
		i.src = i.src[n:]
		return n, nil
	}
	if i.tail < len(deflateTail) {
		n := copy(p, deflateTail[i.tail:])
		i.tail += n
		return n, nil
	}
	return 0, io.EOF
}

var inflaters = sync.Pool{New: func() any {
	i := &inflater{}
	i.fr = flate.NewReader(i)
	return i
}}

// inflate decompresses the pooled message m (and puts it back) into a
// pooled buffer of at most max bytes; a larger result is 1009, a corrupt
// one 1007.
func inflate(m *[]byte, max int) (*[]byte, websocket.StatusCode, string) {
	i := inflaters.Get().(*inflater)
	i.src, i.tail = *m, 0
	_ = i.fr.(flate.Resetter).Reset(i, nil)
	out := bufpool.Get(min(max, 2*len(*m)+512))
	var err error
	for err == nil {
		if len(*out) == cap(*out) {
			if len(*out) > max {
				break
			}
			out = bufpool.Grow(out)
		}
		b := *out
		var n int
		n, err = i.fr.Read(b[len(b):cap(b)])
		*out = b[:len(b)+n]
		if len(*out) > max {
			break
		}
	}
	i.src = nil
	inflaters.Put(i)
	bufpool.Put(m)
	switch {
	case len(*out) > max:
		bufpool.Put(out)
		return nil, websocket.StatusMessageTooBig, "message too big"
	case !errors.Is(err, io.EOF):
		bufpool.Put(out)
		return nil, websocket.StatusInvalidFramePayloadData, "invalid compressed message"
	}
	return out, 0, ""
}
