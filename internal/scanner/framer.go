package scanner

import (
	"bytes"
	"time"
)

// Framer cuts a byte stream into frames: at a suffix (CR, LF, CRLF or any
// byte string), or, when bytes are pending and the line has been silent for
// the idle gap, at the silence. Frames longer than max are cut and flagged.
// It is pure: the caller feeds bytes with their arrival time and asks for
// idle flushes.
type Framer struct {
	suffix []byte
	gap    time.Duration
	max    int

	buf  []byte
	last time.Time
	over bool
}

// NewFramer returns a framer. An empty suffix frames by gap alone; with a
// suffix, a pending partial frame is flushed after idle (at least 500 ms),
// so a scanner configured without a suffix still works.
func NewFramer(suffix []byte, gap time.Duration, max int) *Framer {
	if max <= 0 {
		max = 4096
	}
	if len(suffix) > 0 && gap < 500*time.Millisecond {
		gap = 500 * time.Millisecond
	}
	return &Framer{suffix: suffix, gap: gap, max: max}
}

// Frame is one framed payload.
type Frame struct {
	Data     []byte
	At       time.Time
	Overflow bool
}

// Feed adds bytes that arrived at t and returns the frames they complete.
func (f *Framer) Feed(p []byte, t time.Time) []Frame {
	var out []Frame
	for _, b := range p {
		f.buf = append(f.buf, b)
		f.last = t
		if len(f.suffix) > 0 && bytes.HasSuffix(f.buf, f.suffix) {
			data := f.buf[:len(f.buf)-len(f.suffix)]
			if len(data) > 0 || f.over {
				out = append(out, Frame{Data: bytes.Clone(data), At: t, Overflow: f.over})
			}
			f.buf, f.over = f.buf[:0], false
			continue
		}
		if len(f.buf) >= f.max+len(f.suffix) {
			out = append(out, Frame{Data: bytes.Clone(f.buf[:f.max]), At: t, Overflow: true})
			f.buf = append(f.buf[:0], f.buf[f.max:]...)
			f.over = true
		}
	}
	return out
}

// Deadline is when Idle will flush the pending partial frame, if there is
// one: the caller need not call Idle before.
func (f *Framer) Deadline() (time.Time, bool) {
	if len(f.buf) == 0 {
		return time.Time{}, false
	}
	return f.last.Add(f.gap), true
}

// Idle returns the pending frame if the line has been silent for the gap
// at now.
func (f *Framer) Idle(now time.Time) (Frame, bool) {
	if len(f.buf) == 0 || now.Sub(f.last) < f.gap {
		return Frame{}, false
	}
	fr := Frame{Data: bytes.Clone(f.buf), At: f.last, Overflow: f.over}
	f.buf, f.over = f.buf[:0], false
	return fr, true
}
