package scanner

import (
	"fmt"

	"github.com/karalabe/usb"
	"go.bug.st/serial/enumerator"
)

// SerialPort describes a serial port for `scanagent ports`.
type SerialPort struct {
	Name         string `json:"name"`
	USB          bool   `json:"usb"`
	VID          string `json:"vid,omitempty"`
	PID          string `json:"pid,omitempty"`
	SerialNumber string `json:"serialNumber,omitempty"`
	Product      string `json:"product,omitempty"`
}

// HIDDevice describes a HID device for `scanagent ports`.
type HIDDevice struct {
	VID          string `json:"vid"`
	PID          string `json:"pid"`
	UsagePage    string `json:"usagePage,omitempty"`
	SerialNumber string `json:"serialNumber,omitempty"`
	Manufacturer string `json:"manufacturer,omitempty"`
	Product      string `json:"product,omitempty"`
	Path         string `json:"path"`
	Layout       string `json:"layout,omitempty"`
}

// Inventory is what `scanagent ports` lists.
type Inventory struct {
	Serial       []SerialPort `json:"serial"`
	HID          []HIDDevice  `json:"hid"`
	HIDSupported bool         `json:"hidSupported"`
	Notes        []string     `json:"notes,omitempty"`
}

// ListPorts enumerates serial ports and HID devices. Enumeration failures
// become notes: a machine without HID access still lists its serial ports.
func ListPorts() Inventory {
	inv := Inventory{Serial: []SerialPort{}, HID: []HIDDevice{}, HIDSupported: usb.Supported()}
	ports, err := enumerator.GetDetailedPortsList()
	if err != nil {
		inv.Notes = append(inv.Notes, fmt.Sprintf("serial enumeration failed: %v", err))
	}
	for _, p := range ports {
		inv.Serial = append(inv.Serial, SerialPort{Name: p.Name, USB: p.IsUSB, VID: p.VID, PID: p.PID, SerialNumber: p.SerialNumber, Product: p.Product})
	}
	if !inv.HIDSupported {
		inv.Notes = append(inv.Notes, ErrNoHID.Error())
		return inv
	}
	devs, err := usb.EnumerateHid(0, 0)
	if err != nil {
		inv.Notes = append(inv.Notes, fmt.Sprintf("HID enumeration failed: %v", err))
	}
	for _, d := range devs {
		h := HIDDevice{VID: fmt.Sprintf("%04x", d.VendorID), PID: fmt.Sprintf("%04x", d.ProductID), SerialNumber: d.Serial, Manufacturer: d.Manufacturer, Product: d.Product, Path: d.Path}
		if d.UsagePage != 0 {
			h.UsagePage = fmt.Sprintf("%#04x", d.UsagePage)
		}
		if l, ok := vendorLayouts[d.VendorID]; ok {
			h.Layout = string(l)
		}
		inv.HID = append(inv.HID, h)
	}
	if !EvdevSupported() {
		inv.Notes = append(inv.Notes, "keyboard-wedge scanners cannot be read on this OS: switch them to serial (virtual COM) or HID-POS mode")
	}
	return inv
}
