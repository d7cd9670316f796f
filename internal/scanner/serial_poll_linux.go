package scanner

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// polledPort reads a serial port through the Go runtime's network poller
// (epoll) instead of the serial library's blocking select() and read():
// a thread blocked in select() keeps the runtime's monitor waking to take
// its processor back, and each scan hops threads; epoll parks a goroutine
// for free. The port is opened here first, read-only and non-blocking,
// then opened again by the serial library, which configures it (speed,
// framing, raw mode: the settings belong to the device, so this open
// reads with them) and takes exclusive access. Closing either ends it.
type polledPort struct {
	f       *os.File
	timeout time.Duration // < 0: none
}

// openPolled opens name for polled reads, or fails when the device cannot
// be polled (the caller then reads through the library).
func openPolled(name string) (*polledPort, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	// Only a file the poller took supports deadlines.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s cannot be polled: %w", name, err)
	}
	return &polledPort{f: f, timeout: -1}, nil
}

// SetReadTimeout bounds each following Read (< 0: none), as the serial
// library's does.
func (p *polledPort) SetReadTimeout(t time.Duration) error {
	p.timeout = t
	if t < 0 {
		return p.f.SetReadDeadline(time.Time{})
	}
	return nil
}

// Read returns what has arrived, waiting for at least one byte or the
// timeout (then 0, nil). A closed port or a hung-up device is
// errPortClosed.
func (p *polledPort) Read(b []byte) (int, error) {
	if p.timeout >= 0 {
		if err := p.f.SetReadDeadline(time.Now().Add(p.timeout)); err != nil {
			return 0, portErr(err)
		}
	}
	n, err := p.f.Read(b)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return n, nil
	}
	return n, portErr(err)
}

func portErr(err error) error {
	if errors.Is(err, os.ErrClosed) || errors.Is(err, io.EOF) {
		return errPortClosed
	}
	return err
}

func (p *polledPort) Close() error { return p.f.Close() }
