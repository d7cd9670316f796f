// Package device is a fake serial barcode scanner on a pseudo-terminal
// (creack/pty): it exposes the pty's slave under a stable path (a symlink,
// like /dev/serial/by-id) and types payloads into it the way a real device
// does — paced at the baud rate, with a suffix, an optional AIM prefix and
// held-trigger repeats — and can be unplugged and replugged. Unix only.
package device
