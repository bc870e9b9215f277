// Package bufpool pools byte buffers by size class so that the relay's data
// path reuses memory instead of allocating per message.
package bufpool

import (
	"io"
	"sync"
)

// classes are the capacities handed out; a request larger than the last
// class is allocated and not pooled.
var classes = [...]int{512, 2 << 10, 8 << 10, 32 << 10, 128 << 10, 512 << 10, 2 << 20}

var pools [len(classes)]sync.Pool

func init() {
	for i := range pools {
		size := classes[i]
		pools[i].New = func() any {
			b := make([]byte, 0, size)
			return &b
		}
	}
}

func class(n int) int {
	for i, c := range classes {
		if n <= c {
			return i
		}
	}
	return -1
}

// Get returns a buffer with length 0 and capacity at least n. Return it with
// Put when done; the pointer is the handle, so it travels with the bytes.
func Get(n int) *[]byte {
	i := class(n)
	if i < 0 {
		b := make([]byte, 0, n)
		return &b
	}
	return pools[i].Get().(*[]byte)
}

// Put returns b to its pool. Buffers whose capacity is not a class size
// (grown by append, or oversize) are dropped.
func Put(b *[]byte) {
	if b == nil {
		return
	}
	c := cap(*b)
	i := class(c)
	if i < 0 || classes[i] != c {
		return
	}
	*b = (*b)[:0]
	pools[i].Put(b)
}

// Copy returns a pooled buffer holding a copy of p.
func Copy(p []byte) *[]byte {
	b := Get(len(p))
	*b = append((*b)[:0], p...)
	return b
}

// Grow returns a pooled buffer with the contents of b and room for at
// least one more byte, putting b back. Use it instead of append so that
// grown buffers stay in their size classes.
func Grow(b *[]byte) *[]byte {
	n := len(*b)
	nb := Get(2*cap(*b) + 1)
	*nb = append((*nb)[:0], (*b)[:n]...)
	Put(b)
	return nb
}

// ReadAll reads r to its end, appending to b (a buffer from Get) and growing
// it within the size classes. It returns the buffer that holds the bytes,
// which may not be b, also with an error: the caller puts it back.
func ReadAll(r io.Reader, b *[]byte) (*[]byte, error) {
	for {
		if len(*b) == cap(*b) {
			b = Grow(b)
		}
		buf := *b
		n, err := r.Read(buf[len(buf):cap(buf)])
		*b = buf[:len(buf)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}
