//go:build linux

package scanner

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"scanagent/internal/card"
)

// EvdevSupported reports whether keyboard-wedge scanners can be read here.
func EvdevSupported() bool { return true }

// inputEvent is struct input_event.
type inputEvent struct {
	Time  unix.Timeval
	Type  uint16
	Code  uint16
	Value int32
}

// parseInputEvent reads the fields of one struct input_event the decoder
// needs, without reflection (binary.Decode costs ~400 ns an event, and a
// scan is a few hundred events).
func parseInputEvent(b []byte) (typ, code uint16, value int32) {
	var ev inputEvent
	ne := binary.NativeEndian
	typ = ne.Uint16(b[unsafe.Offsetof(ev.Type):])
	code = ne.Uint16(b[unsafe.Offsetof(ev.Code):])
	value = int32(ne.Uint32(b[unsafe.Offsetof(ev.Value):]))
	return typ, code, value
}

const (
	evKey     = 0x01
	eviocgrab = 0x40044590 // _IOW('E', 0x90, int)
)

// Run opens the input device, grabs it exclusively (so the scanner no
// longer types into the desktop) and decodes key events until ctx ends.
func (e *Evdev) Run(ctx context.Context, emit func(card.Scan)) error {
	f, err := os.OpenFile(e.o.Device, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w (the service user needs the input group or a udev rule)", e.o.Device, err)
	}
	defer f.Close()
	if err := unix.IoctlSetInt(int(f.Fd()), eviocgrab, 1); err != nil {
		return fmt.Errorf("grab %s: %w (another program holds it?)", e.o.Device, err)
	}
	Connected(ctx)
	stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Now()) })
	defer stop()
	dec := NewKeyDecoder(e.o.MaxFrame)
	size := int(unsafe.Sizeof(inputEvent{}))
	buf := make([]byte, size*64)
	for {
		n, err := f.Read(buf)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			return fmt.Errorf("read %s: %w", e.o.Device, err)
		}
		for off := 0; off+size <= n; off += size {
			typ, code, value := parseInputEvent(buf[off : off+size])
			if typ != evKey {
				continue
			}
			if data, done := dec.Key(code, value); done {
				emit(card.Scan{Data: data, Source: e.o.Name, At: time.Now()})
			}
		}
	}
}
