package queue

import (
	"time"

	bolt "go.etcd.io/bbolt"
)

// Stats is the outbox's state for status pages, metrics and the CLI.
type Stats struct {
	Pending      map[string]int       `json:"pending"`
	PendingBytes int64                `json:"pendingBytes"`
	Dead         int                  `json:"dead"`
	Oldest       time.Time            `json:"oldest,omitzero"`
	OldestAge    time.Duration        `json:"oldestAgeNs"`
	Delivered    int64                `json:"delivered"`
	Duplicates   int64                `json:"duplicates"`
	Retries      int64                `json:"retries"`
	DeadTotal    int64                `json:"deadTotal"`
	Dropped      int64                `json:"dropped"`
	LastError    map[string]string    `json:"lastError,omitempty"`
	PausedUntil  map[string]time.Time `json:"pausedUntil,omitempty"`
	Alerts       []string             `json:"alerts,omitempty"`
	FileSize     int64                `json:"fileSize"`
	// Recovery is set when the file was found damaged at open and
	// salvaged (an alarm until the agent restarts).
	Recovery *Recovery `json:"recovery,omitempty"`
	// Space: whether the disk is full and new records are refused.
	Space Space `json:"space"`
}

// Depth is the number of pending records.
func (s Stats) Depth() int {
	n := 0
	for _, c := range s.Pending {
		n += c
	}
	return n
}

// Stats returns the counters; the oldest record is read from the file.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	s := Stats{Pending: map[string]int{}, Dead: q.dead, LastError: map[string]string{}, PausedUntil: map[string]time.Time{},
		Delivered: q.counters["delivered"], Duplicates: q.counters["duplicates"], Retries: q.counters["retries"],
		DeadTotal: q.counters["dead"], Dropped: q.counters["dropped"], Alerts: append([]string(nil), q.alerts...)}
	for k, v := range q.pending {
		s.Pending[k] = v
		s.PendingBytes += q.bytes[k]
	}
	for k, v := range q.lastErr {
		s.LastError[k] = v
	}
	now := q.o.Now()
	for k, v := range q.paused {
		if v.After(now) {
			s.PausedUntil[k] = v
		}
	}
	if q.recovery != nil {
		r := *q.recovery
		s.Recovery = &r
	}
	q.mu.Unlock()
	s.Space = q.spaceStats()
	q.dbMu.RLock()
	defer q.dbMu.RUnlock()
	_ = q.db.View(func(tx *bolt.Tx) error {
		s.FileSize = tx.Size()
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if len(name) <= len(kindPrefix) || string(name[:len(kindPrefix)]) != kindPrefix {
				return nil
			}
			if k, v := b.Cursor().First(); k != nil {
				if r, err := q.decode(k, v); err == nil && (s.Oldest.IsZero() || r.Enqueued.Before(s.Oldest)) {
					s.Oldest = r.Enqueued
				}
			}
			return nil
		})
	})
	if !s.Oldest.IsZero() {
		s.OldestAge = now.Sub(s.Oldest)
	}
	return s
}

func (q *Queue) totalLocked() (int, int64) {
	n, s := 0, int64(0)
	for k, c := range q.pending {
		n += c
		s += q.bytes[k]
	}
	return n, s
}

func (q *Queue) alert(msg string) {
	q.mu.Lock()
	q.alerts = append(q.alerts, q.o.Now().Format(time.RFC3339)+" "+msg)
	if len(q.alerts) > 20 {
		q.alerts = q.alerts[len(q.alerts)-20:]
	}
	q.mu.Unlock()
}
