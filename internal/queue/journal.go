package queue

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// The journal holds the records a producer has announced (Intend) but not
// yet committed: a scan's usage report is announced before its identity
// goes to the HIS and committed (fsync'd) right after, so the patient does
// not wait for the disk. An announcement is one append to the journal
// file, without fsync: it survives the process being killed, and Open
// enqueues whatever the journal still holds (keyed, so a record that did
// commit is not queued twice). When no announcement is pending the file is
// truncated, so it stays a few lines long and an entry never outlives its
// key's idempotency window.
type journal struct {
	mu      sync.Mutex
	f       *os.File
	pending int
}

// journalEntry is one line of the journal.
type journalEntry struct {
	Kind    string `json:"kind"`
	Key     string `json:"key"`
	Payload []byte `json:"payload"` // sealed when the outbox is encrypted
}

// journalPath is the journal of the outbox at path.
func journalPath(path string) string { return path + ".journal" }

// openJournal opens (or creates) the journal at path and returns the
// entries a crash left in it. A torn last line — the process died while
// writing it, before the HIS got anything — is ignored.
func openJournal(path string) (*journal, []journalEntry, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open journal: %w", err)
	}
	entries, err := readJournal(f)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return &journal{f: f}, entries, nil
}

func readJournal(r io.Reader) ([]journalEntry, error) {
	var entries []journalEntry
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return entries, nil // a last line without its newline is torn
		}
		if err != nil {
			return nil, fmt.Errorf("read journal: %w", err)
		}
		var e journalEntry
		if json.Unmarshal(bytes.TrimSpace(line), &e) == nil && e.Kind != "" {
			entries = append(entries, e)
		}
	}
}

// note appends an entry in one write and counts it pending; done ends it.
func (j *journal) note(e journalEntry) (done func(), err error) {
	line, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	line = append(line, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.f.Write(line); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	j.pending++
	var once sync.Once
	return func() { once.Do(j.done) }, nil
}

// done ends one pending entry; the last one truncates the file.
func (j *journal) done() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.pending--; j.pending == 0 {
		_ = j.f.Truncate(0) // a failure leaves entries that replay as no-ops (keyed)
	}
}

// clear empties the journal once its entries are committed.
func (j *journal) clear() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.pending > 0 {
		return nil
	}
	return j.f.Truncate(0)
}

func (j *journal) close() error { return j.f.Close() }

// openJournal opens the outbox's journal and enqueues what a crash left in
// it: records announced before a hand-off whose commit never happened.
// Each is keyed, so one that did commit is not queued again.
func (q *Queue) openJournal() error {
	j, entries, err := openJournal(journalPath(q.o.Path))
	if err != nil {
		return err
	}
	q.journal = j
	for _, e := range entries {
		payload, err := q.sealer.open([]byte(e.Key), e.Payload)
		if err != nil {
			q.o.Log.Error().Err(err).Str("key", e.Key).Msg("journal entry unreadable: dropped")
			continue
		}
		if _, err := q.EnqueueKeyed(context.Background(), e.Kind, e.Key, payload); err != nil {
			return fmt.Errorf("replay journal: %w", err) // kept for the next start
		}
	}
	if len(entries) > 0 {
		q.o.Log.Warn().Int("records", len(entries)).Msg("outbox journal replayed: records announced before a crash are queued")
	}
	return j.clear()
}

// Intend announces a record that the caller will EnqueueKeyed right after,
// in one append to the outbox's journal, without fsync: if the process dies
// before that EnqueueKeyed commits, the next Open queues the record (by
// its key, so never twice). A producer calls it before handing out what
// the record describes (a scan's identity to the HIS), and done once
// EnqueueKeyed returned.
func (q *Queue) Intend(kind, key string, payload []byte) (done func(), err error) {
	if q.journal == nil {
		return nil, errors.New("outbox opened read-only")
	}
	if key == "" {
		return nil, errors.New("journal: a record announced by Intend needs a key")
	}
	return q.journal.note(journalEntry{Kind: kind, Key: key, Payload: q.sealer.seal([]byte(key), payload)})
}
