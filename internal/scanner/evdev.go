package scanner

import "github.com/rs/zerolog"

// EvdevOptions configures a Linux keyboard-wedge scanner. On Windows and
// macOS such scanners stay keyboard devices: switch them to serial (virtual
// COM) or HID-POS mode instead.
type EvdevOptions struct {
	Name     string
	Device   string // /dev/input/by-id/...-event-kbd
	MaxFrame int
	Log      zerolog.Logger
}

// Evdev is a keyboard-wedge scanner read through evdev.
type Evdev struct{ o EvdevOptions }

// NewEvdev returns an evdev source.
func NewEvdev(o EvdevOptions) *Evdev { return &Evdev{o: o} }

// Name returns the source name.
func (e *Evdev) Name() string { return e.o.Name }
