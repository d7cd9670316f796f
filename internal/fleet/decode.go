package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"scanagent/internal/mask"
)

// ErrInvalid marks a heartbeat that is malformed or out of bounds.
var ErrInvalid = errors.New("invalid heartbeat")

var (
	levels   = []string{HealthOK, HealthDegraded, HealthCritical, HealthUnconfigured}
	reReason = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	// Times a terminal may report: zero, or within these years.
	minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Decode reads a heartbeat as a gateway receives it: at most MaxBody
// bytes of one JSON object (fields it does not know are ignored, so newer
// terminals may add some), every field within its bounds, texts masked.
// The Terminal it carries is cleared: the gateway sets it.
func Decode(b []byte) (Heartbeat, error) {
	var h Heartbeat
	if len(b) > MaxBody {
		return h, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalid, len(b), MaxBody)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&h); err != nil {
		return Heartbeat{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Heartbeat{}, fmt.Errorf("%w: data after the object", ErrInvalid)
	}
	h.Terminal = ""
	if err := h.Validate(); err != nil {
		return Heartbeat{}, err
	}
	h.maskTexts()
	return h, nil
}

// checkBeat checks a heartbeat a registry is given: valid, and stamped
// with its terminal.
func checkBeat(hb Heartbeat) error {
	if hb.Terminal == "" {
		return fmt.Errorf("%w: no terminal", ErrInvalid)
	}
	return hb.Validate()
}

// Validate checks every field of h against its bounds.
func (h *Heartbeat) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if msg := checkText(h.Terminal, MaxName, false); msg != "" {
		bad("terminal %s", msg)
	}
	if msg := checkText(h.Campus, MaxName, false); msg != "" {
		bad("campus %s", msg)
	}
	if msg := checkText(h.Version, MaxName, false); msg != "" {
		bad("version %s", msg)
	}
	if !slices.Contains(levels, h.Health) {
		bad("health must be one of %v", levels)
	}
	if len(h.Reasons) > MaxReasons {
		bad("at most %d reasons", MaxReasons)
	}
	for _, r := range h.Reasons {
		if len(r) > MaxName || !reReason.MatchString(r) {
			bad("reason %.*q is not a reason code", MaxName, r)
		}
	}
	errs = append(errs, h.validateScanners()...)
	if msg := checkText(h.LastError, MaxText, true); msg != "" {
		bad("lastError %s", msg)
	}
	q := h.Queue
	if !inRange(int64(q.Depth)) || !inRange(int64(q.Dead)) || !inRange(q.OldestPendingSeconds) {
		bad("queue counts must be between 0 and %d", int64(MaxCount))
	}
	if !validTime(h.LastScan) || !validTime(h.LastErrorAt) {
		bad("lastScan and lastErrorAt must be times between %d and %d", minTime.Year(), maxTime.Year())
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

func (h *Heartbeat) validateScanners() []error {
	if len(h.Scanners) > MaxScanners {
		return []error{fmt.Errorf("at most %d scanners", MaxScanners)}
	}
	var errs []error
	for i, s := range h.Scanners {
		if msg := checkText(s.Name, MaxName, false); msg != "" || s.Name == "" {
			errs = append(errs, fmt.Errorf("scanners[%d].name must be 1 to %d printable characters", i, MaxName))
		}
		if msg := checkText(s.LastError, MaxScannerText, true); msg != "" {
			errs = append(errs, fmt.Errorf("scanners[%d].lastError %s", i, msg))
		}
		if !inRange(s.Scans) || !inRange(s.Reconnects) || !validTime(s.Since) {
			errs = append(errs, fmt.Errorf("scanners[%d]: counts or time out of range", i))
		}
	}
	return errs
}

// checkText says what is wrong with s ("" when nothing): not UTF-8, a
// control character (a line break too, unless lines), more than max
// characters.
func checkText(s string, max int, lines bool) string {
	if !utf8.ValidString(s) {
		return "is not UTF-8"
	}
	n := 0
	for _, r := range s {
		if unicode.IsControl(r) && !(lines && (r == '\n' || r == '\t')) {
			return "holds a control character"
		}
		n++
	}
	if n > max {
		return fmt.Sprintf("is longer than %d characters", max)
	}
	return ""
}

func inRange(n int64) bool { return n >= 0 && n <= MaxCount }

func validTime(t time.Time) bool { return t.IsZero() || !t.Before(minTime) && t.Before(maxTime) }

// maskTexts masks the free texts of h (mask.Text).
func (h *Heartbeat) maskTexts() {
	h.LastError = mask.Text(h.LastError)
	for i := range h.Scanners {
		h.Scanners[i].LastError = mask.Text(h.Scanners[i].LastError)
	}
}

// Clip makes h fit the bounds, as a terminal does before sending it:
// texts masked, cut to their length and stripped of control characters,
// lists cut, counts capped. A clipped heartbeat passes Validate when its
// health is a level and its names are not empty.
func (h *Heartbeat) Clip() {
	h.maskTexts()
	h.Campus, h.Version = clipText(h.Campus, MaxName), clipText(h.Version, MaxName)
	h.LastError = clipText(h.LastError, MaxText)
	if len(h.Reasons) > MaxReasons {
		h.Reasons = h.Reasons[:MaxReasons]
	}
	if len(h.Scanners) > MaxScanners {
		h.Scanners = h.Scanners[:MaxScanners]
	}
	for i := range h.Scanners {
		s := &h.Scanners[i]
		s.Name, s.LastError = clipText(s.Name, MaxName), clipText(s.LastError, MaxScannerText)
		s.Scans, s.Reconnects = clipCount(s.Scans), clipCount(s.Reconnects)
	}
	h.Queue.Depth, h.Queue.Dead = int(clipCount(int64(h.Queue.Depth))), int(clipCount(int64(h.Queue.Dead)))
	h.Queue.OldestPendingSeconds = clipCount(h.Queue.OldestPendingSeconds)
}

// clipText is s as valid UTF-8 without control characters (each becomes
// a space), cut to max characters.
func clipText(s string, max int) string {
	s = strings.ToValidUTF8(s, "?")
	out := make([]rune, 0, min(len(s), max))
	for _, r := range s {
		if len(out) == max {
			break
		}
		if unicode.IsControl(r) {
			r = ' '
		}
		out = append(out, r)
	}
	return string(out)
}

func clipCount(n int64) int64 { return min(max(n, 0), MaxCount) }
