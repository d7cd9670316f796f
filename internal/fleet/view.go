package fleet

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Colours of a terminal in the view: its health while it is online (the
// status page's banner colours), grey while it is not (its last health
// is stale).
const (
	ColourGreen = "green"
	ColourAmber = "amber"
	ColourRed   = "red"
	ColourGrey  = "grey"
)

// States of a terminal in the view and in the metrics.
const (
	StateOnline  = "online"
	StateOffline = "offline"
	// StateSilent is an offline terminal not heard from for longer than
	// silent_after: listed first.
	StateSilent = "silent"
)

// Entry is a terminal as a viewer sees it at one moment.
type Entry struct {
	Terminal
	State            string        `json:"state"`
	Silent           bool          `json:"silent"`
	SilentFor        time.Duration `json:"-"`
	SilentForSeconds int64         `json:"silentForSeconds"`
	Colour           string        `json:"colour"`
}

// Columns the view sorts by; "-" before one reverses it.
var Columns = []string{"terminal", "campus", "state", "health", "scanners", "queue", "dead", "oldest", "last_scan", "last_seen", "version", "error"}

// DefaultSort is the view's order without a choice: worst health first.
const DefaultSort = "health"

// View returns the terminals as seen at now: those silent for longer than
// silentAfter first, then all by sortBy (a column of Columns, "-" to
// reverse; an unknown one is DefaultSort), ties by terminal id.
func View(ts []Terminal, now time.Time, silentAfter time.Duration, sortBy string) []Entry {
	out := make([]Entry, len(ts))
	for i, t := range ts {
		e := Entry{Terminal: t, State: StateOnline, Colour: colourOf(t)}
		e.SilentFor = max(now.Sub(t.LastSeen), 0).Truncate(time.Second)
		e.SilentForSeconds = int64(e.SilentFor / time.Second)
		if !t.Online {
			e.State = StateOffline
			if e.SilentFor > silentAfter {
				e.State, e.Silent = StateSilent, true
			}
		}
		out[i] = e
	}
	col, desc := ParseSort(sortBy)
	by := sorters[col]
	slices.SortStableFunc(out, func(a, b Entry) int {
		if a.Silent != b.Silent {
			if a.Silent {
				return -1
			}
			return 1
		}
		c := by(a, b)
		if desc {
			c = -c
		}
		return cmp.Or(c, strings.Compare(a.Terminal.Terminal, b.Terminal.Terminal))
	})
	return out
}

// ParseSort splits a sort parameter into a known column and its direction.
func ParseSort(s string) (col string, desc bool) {
	col, desc = strings.CutPrefix(s, "-")
	if _, ok := sorters[col]; !ok {
		return DefaultSort, false
	}
	return col, desc
}

// colourOf is a terminal's colour.
func colourOf(t Terminal) string {
	if !t.Online {
		return ColourGrey
	}
	switch t.Health {
	case HealthOK:
		return ColourGreen
	case HealthDegraded:
		return ColourAmber
	case HealthCritical, HealthUnconfigured:
		return ColourRed
	}
	return ColourGrey
}

// severity orders colours worst first.
var severity = map[string]int{ColourRed: 0, ColourAmber: 1, ColourGrey: 2, ColourGreen: 3}

// stateRank orders states: online first.
var stateRank = map[string]int{StateOnline: 0, StateOffline: 1, StateSilent: 2}

// connected counts a terminal's connected scanners.
func connected(t Terminal) int {
	n := 0
	for _, s := range t.Scanners {
		if s.Connected {
			n++
		}
	}
	return n
}

// sorters compare two entries by a column (ascending; for health, worst
// first; for times, most recent first).
var sorters = map[string]func(a, b Entry) int{
	"terminal": func(a, b Entry) int { return strings.Compare(a.Terminal.Terminal, b.Terminal.Terminal) },
	"campus":   func(a, b Entry) int { return strings.Compare(a.Campus, b.Campus) },
	"state": func(a, b Entry) int {
		return cmp.Or(cmp.Compare(stateRank[a.State], stateRank[b.State]), cmp.Compare(a.SilentFor, b.SilentFor))
	},
	"health": func(a, b Entry) int { return cmp.Compare(severity[a.Colour], severity[b.Colour]) },
	"scanners": func(a, b Entry) int {
		return cmp.Compare(connected(a.Terminal)-len(a.Scanners), connected(b.Terminal)-len(b.Scanners))
	},
	"queue":     func(a, b Entry) int { return cmp.Compare(b.Queue.Depth, a.Queue.Depth) },
	"dead":      func(a, b Entry) int { return cmp.Compare(b.Queue.Dead, a.Queue.Dead) },
	"oldest":    func(a, b Entry) int { return cmp.Compare(b.Queue.OldestPendingSeconds, a.Queue.OldestPendingSeconds) },
	"last_scan": func(a, b Entry) int { return b.LastScan.Compare(a.LastScan) },
	"last_seen": func(a, b Entry) int { return b.LastSeen.Compare(a.LastSeen) },
	"version":   func(a, b Entry) int { return strings.Compare(a.Version, b.Version) },
	"error":     func(a, b Entry) int { return b.LastErrorAt.Compare(a.LastErrorAt) },
}

// Count counts terminals by campus and state (online or offline; a silent
// terminal is offline), every campus with both states.
func Count(ts []Terminal) map[string]map[string]int {
	out := map[string]map[string]int{}
	for _, t := range ts {
		c := out[t.Campus]
		if c == nil {
			c = map[string]int{StateOnline: 0, StateOffline: 0}
			out[t.Campus] = c
		}
		if t.Online {
			c[StateOnline]++
		} else {
			c[StateOffline]++
		}
	}
	return out
}
