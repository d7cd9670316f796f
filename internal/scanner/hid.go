package scanner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/karalabe/usb"
	"github.com/rs/zerolog"

	"scanagent/internal/card"
)

// HIDSupported reports whether this build can read HID devices (the USB
// library needs cgo; CGO-less builds have serial and evdev only).
func HIDSupported() bool { return usb.Supported() }

// ErrNoHID is returned by HID sources in builds without HID support.
var ErrNoHID = errors.New("HID-POS support is not in this build (built without cgo): use a serial/virtual COM mode on the scanner, or a cgo build")

// HIDOptions configures a HID-POS scanner.
type HIDOptions struct {
	Name         string
	VID, PID     uint16
	SerialNumber string
	Layout       string // auto, honeywell, newland
	MaxFrame     int
	Log          zerolog.Logger
}

// HID is a HID-POS scanner.
type HID struct{ o HIDOptions }

// NewHID returns a HID-POS source.
func NewHID(o HIDOptions) *HID { return &HID{o: o} }

// Name returns the source name.
func (h *HID) Name() string { return h.o.Name }

// Run opens the device by VID/PID (re-enumerating each time) and decodes
// its input reports.
func (h *HID) Run(ctx context.Context, emit func(card.Scan)) error {
	if !usb.Supported() {
		return ErrNoHID
	}
	layout, err := LayoutFor(h.o.Layout, h.o.VID)
	if err != nil {
		return err
	}
	infos, err := usb.EnumerateHid(h.o.VID, h.o.PID)
	if err != nil {
		return fmt.Errorf("enumerate HID: %w", err)
	}
	var info *usb.DeviceInfo
	for i := range infos {
		if h.o.SerialNumber == "" || infos[i].Serial == h.o.SerialNumber {
			info = &infos[i]
			break
		}
	}
	if info == nil {
		return fmt.Errorf("no HID device %04x:%04x", h.o.VID, h.o.PID)
	}
	dev, err := info.Open()
	if err != nil {
		return fmt.Errorf("open HID %04x:%04x: %w (on Linux, check the udev rule giving access to /dev/hidraw*)", h.o.VID, h.o.PID, err)
	}
	Connected(ctx)
	dec := NewHIDDecoder(layout, h.o.MaxFrame)
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, hidReportLen)
		for {
			n, err := dev.Read(buf)
			if err != nil {
				errc <- err
				return
			}
			data, done, derr := dec.Feed(buf[:n])
			if derr != nil {
				h.o.Log.Debug().Err(derr).Msg("HID report not decoded")
				h.o.Log.Warn().Str("layout", string(layout)).Msg("HID report does not fit the layout (hex dump at debug level)")
				continue
			}
			if done {
				emit(card.Scan{Data: data, Source: h.o.Name, At: time.Now()})
			}
		}
	}()
	select {
	case <-ctx.Done():
		dev.Close()
		// hid_read may not return on close on every platform; do not wait
		// for it forever.
		select {
		case <-errc:
		case <-time.After(time.Second):
		}
		return nil
	case err := <-errc:
		dev.Close()
		return fmt.Errorf("HID read: %w", err)
	}
}
