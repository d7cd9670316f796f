package scanner

import (
	"errors"
	"fmt"
)

// HID-POS report layouts (SPEC §8). A report is 64 bytes including the
// report id at [0].
const hidReportLen = 64

// Layout names a vendor's HID-POS input report layout.
type Layout string

// Known layouts.
const (
	LayoutHoneywell Layout = "honeywell"
	LayoutNewland   Layout = "newland"
)

// vendorLayouts chooses a layout by USB vendor id.
var vendorLayouts = map[uint16]Layout{
	0x0c2e: LayoutHoneywell, // Honeywell (Metrologic)
	0x0536: LayoutHoneywell, // Hand Held Products (Honeywell)
	0x1eab: LayoutNewland,   // Newland Auto-ID
}

// LayoutFor returns the layout configured ("auto" picks by VID).
func LayoutFor(configured string, vid uint16) (Layout, error) {
	switch configured {
	case "honeywell":
		return LayoutHoneywell, nil
	case "newland":
		return LayoutNewland, nil
	case "", "auto":
		if l, ok := vendorLayouts[vid]; ok {
			return l, nil
		}
		return "", fmt.Errorf("no known HID-POS layout for vendor %04x: set layout = \"honeywell\" or \"newland\"", vid)
	}
	return "", fmt.Errorf("unknown HID-POS layout %q", configured)
}

// ErrBadReport is a report that does not fit its layout.
var ErrBadReport = errors.New("HID-POS report does not fit the layout")

// HIDDecoder assembles scans from HID-POS input reports, following the
// continuation bit across reports.
type HIDDecoder struct {
	layout Layout
	buf    []byte
	max    int
}

// NewHIDDecoder returns a decoder; max bounds an assembled scan.
func NewHIDDecoder(l Layout, max int) *HIDDecoder {
	if max <= 0 {
		max = 4096
	}
	return &HIDDecoder{layout: l, max: max}
}

// Feed consumes one report. It returns the assembled payload and true when
// the report completes a scan. A bad report discards the partial scan and
// returns an error carrying a hex dump (for debug logs: it may hold a code).
func (d *HIDDecoder) Feed(report []byte) ([]byte, bool, error) {
	data, more, err := d.split(report)
	if err != nil {
		d.buf = d.buf[:0]
		return nil, false, fmt.Errorf("%w (%s): % x", err, d.layout, report)
	}
	if len(d.buf)+len(data) > d.max {
		d.buf = d.buf[:0]
		return nil, false, fmt.Errorf("%w: scan longer than %d bytes", ErrBadReport, d.max)
	}
	d.buf = append(d.buf, data...)
	if more {
		return nil, false, nil
	}
	out := append([]byte(nil), d.buf...)
	d.buf = d.buf[:0]
	return out, len(out) > 0, nil
}

// split returns a report's data bytes and its continuation flag.
func (d *HIDDecoder) split(r []byte) (data []byte, more bool, err error) {
	if len(r) < hidReportLen {
		return nil, false, fmt.Errorf("%w: %d bytes, want %d", ErrBadReport, len(r), hidReportLen)
	}
	if r[0] != 0x02 {
		return nil, false, fmt.Errorf("%w: report id %#02x, want 0x02", ErrBadReport, r[0])
	}
	n := int(r[1])
	more = r[63]&0x01 != 0
	switch d.layout {
	case LayoutHoneywell:
		// [2..4] AIM id, [5..60] data, [61] Honeywell code id.
		if n > 56 {
			return nil, false, fmt.Errorf("%w: length %d > 56", ErrBadReport, n)
		}
		return r[5 : 5+n], more, nil
	case LayoutNewland:
		// [2..57] data, [62] symbology.
		if n > 56 {
			return nil, false, fmt.Errorf("%w: length %d > 56", ErrBadReport, n)
		}
		return r[2 : 2+n], more, nil
	}
	return nil, false, fmt.Errorf("%w: unknown layout %q", ErrBadReport, d.layout)
}
