package code

import (
	"crypto/sha256"
	"sync"
	"time"
)

// DefaultDebounce is the window within which a repeated payload from the
// same source is suppressed: a held trigger repeats every ~200 ms.
const DefaultDebounce = 2 * time.Second

// Debouncer suppresses the same payload from the same source within a
// window. It stores digests, not payloads. Safe for concurrent use.
type Debouncer struct {
	window time.Duration
	mu     sync.Mutex
	seen   map[[32]byte]time.Time
	sweep  time.Time
}

// NewDebouncer returns a Debouncer; window ≤ 0 disables suppression.
func NewDebouncer(window time.Duration) *Debouncer {
	return &Debouncer{window: window, seen: make(map[[32]byte]time.Time)}
}

// Repeat reports whether payload from source was already seen within the
// window before now, and records this sighting. A held trigger keeps
// extending the window, so a code held for ten seconds counts once.
func (d *Debouncer) Repeat(source string, payload []byte, now time.Time) bool {
	if d.window <= 0 {
		return false
	}
	h := sha256.New()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write(payload)
	var k [32]byte
	h.Sum(k[:0])

	d.mu.Lock()
	defer d.mu.Unlock()
	if now.Sub(d.sweep) > d.window {
		for key, t := range d.seen {
			if now.Sub(t) > d.window {
				delete(d.seen, key)
			}
		}
		d.sweep = now
	}
	last, ok := d.seen[k]
	d.seen[k] = now
	return ok && now.Sub(last) <= d.window && !now.Before(last)
}
