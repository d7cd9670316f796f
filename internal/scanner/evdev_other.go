//go:build !linux

package scanner

import (
	"context"
	"errors"

	"scanagent/internal/card"
)

// EvdevSupported reports whether keyboard-wedge scanners can be read here.
func EvdevSupported() bool { return false }

// Run fails: evdev exists on Linux only.
func (e *Evdev) Run(context.Context, func(card.Scan)) error {
	return errors.New("keyboard-wedge (evdev) scanners can be read on Linux only: switch the scanner to serial/virtual COM or HID-POS mode")
}
