//go:build !linux

package bench

import (
	"context"
	"errors"
	"time"
)

// fanWatch needs Linux's receive timestamps and epoll.
type fanWatch struct{}

func dialFan(context.Context, string, int, int) (*fanWatch, error) {
	return nil, errors.New("fan-out timing needs Linux (SO_TIMESTAMPNS, epoll)")
}

func (w *fanWatch) wait(context.Context, int, time.Time) []int64 { return nil }
func (w *fanWatch) close()                                       {}
