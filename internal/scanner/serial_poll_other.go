//go:build !linux

package scanner

import (
	"errors"
	"time"
)

// polledPort is Linux only: elsewhere the serial library reads the port.
type polledPort struct{}

func openPolled(string) (*polledPort, error) { return nil, errors.ErrUnsupported }

func (*polledPort) SetReadTimeout(time.Duration) error { return errors.ErrUnsupported }
func (*polledPort) Read([]byte) (int, error)           { return 0, errors.ErrUnsupported }
func (*polledPort) Close() error                       { return nil }
