package fleet

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Memory is the registry of a single gateway: the last heartbeat of each
// terminal in memory, online while it is younger than offline_after. It
// holds one entry per terminal that authenticated, so it is bounded by
// the gateway's terminal list; it is lost when the process ends (the
// terminals reappear with their next heartbeat). Safe for concurrent use.
type Memory struct {
	via          string
	offlineAfter time.Duration
	now          func() time.Time

	mu    sync.Mutex
	terms map[string]Terminal
}

// NewMemory returns an empty registry. via names this gateway; now is
// the clock (time.Now when nil).
func NewMemory(via string, offlineAfter time.Duration, now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{via: via, offlineAfter: offlineAfter, now: now, terms: map[string]Terminal{}}
}

// SetOfflineAfter changes offline_after (a reload keeps the registry).
func (m *Memory) SetOfflineAfter(d time.Duration) {
	m.mu.Lock()
	m.offlineAfter = d
	m.mu.Unlock()
}

// Beat records hb as its terminal's last heartbeat, received now.
func (m *Memory) Beat(_ context.Context, hb Heartbeat) error {
	if err := checkBeat(hb); err != nil {
		return err
	}
	m.mu.Lock()
	m.terms[hb.Terminal] = Terminal{Heartbeat: hb, LastSeen: m.now(), Via: m.via}
	m.mu.Unlock()
	return nil
}

// List returns every terminal ever heard from, by id.
func (m *Memory) List(context.Context) ([]Terminal, error) {
	now := m.now()
	m.mu.Lock()
	out := make([]Terminal, 0, len(m.terms))
	for _, t := range m.terms {
		t.Online = now.Sub(t.LastSeen) < m.offlineAfter
		out = append(out, t)
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Terminal < out[j].Terminal })
	return out, nil
}
