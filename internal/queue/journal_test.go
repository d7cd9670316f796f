package queue

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
)

// Entries written and not ended survive a "kill" (the file is reopened
// without a clean close); a torn last line is ignored; when every entry
// ended the file is empty.
func TestJournalSurvivesKillAndTruncatesWhenIdle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db.journal")
	j, entries, err := openJournal(path)
	if err != nil || len(entries) != 0 {
		t.Fatalf("fresh journal: %v %v", entries, err)
	}
	done1, err := j.note(journalEntry{Kind: "report", Key: "scan:1", Payload: []byte(`{"a":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.note(journalEntry{Kind: "report", Key: "scan:2", Payload: []byte(`{"a":2}`)}); err != nil {
		t.Fatal(err)
	}
	done1() // scan:1 committed; scan:2 is still pending when the process dies
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"kind":"report","key":"scan:3","pay`) // torn: died mid-write
	f.Close()

	j2, entries, err := openJournal(path) // the first handle is never closed: a kill
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Key != "scan:1" || entries[1].Key != "scan:2" || string(entries[1].Payload) != `{"a":2}` {
		t.Fatalf("replayed %+v, want scan:1 and scan:2 (scan:1 ended but the file was not idle)", entries)
	}
	if err := j2.clear(); err != nil {
		t.Fatal(err)
	}
	d, err := j2.note(journalEntry{Kind: "bind", Key: "his:k"})
	if err != nil {
		t.Fatal(err)
	}
	d()
	d() // idempotent
	if st, _ := os.Stat(path); st.Size() != 0 {
		t.Fatalf("idle journal holds %d bytes", st.Size())
	}
	j2.close()
	j.close()
}

// A record announced with Intend and never committed (the process died
// after the hand-off) is queued by the next Open; one announced and
// committed is not queued twice; an encrypted outbox's journal holds no
// plaintext.
func TestIntendReplaysOnceAfterACrash(t *testing.T) {
	for _, encrypted := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "outbox.db")
		key := []byte(nil)
		if encrypted {
			key = make([]byte, 32)
		}
		q := open(t, path, func(o *Options) { o.Key = key })
		secret := []byte(`{"qrCodeText":"C7DA29340C1A4C2B9F6E0A12B34C5D6E:1","scene":"010105"}`)
		if _, err := q.Intend("report", "scan:lost", secret); err != nil {
			t.Fatal(err)
		}
		if _, err := q.Intend("report", "scan:kept", secret); err != nil {
			t.Fatal(err)
		}
		if _, err := q.EnqueueKeyed(context.Background(), "report", "scan:kept", secret); err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(journalPath(path))
		if plain := bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString(secret))); plain == encrypted {
			t.Fatalf("encrypted=%v: the journal holds the record in clear: %v", encrypted, plain)
		}
		q.Close() // neither done() ran: as after a kill
		q = open(t, path, func(o *Options) { o.Key = key })
		recs, err := q.List(false, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 2 || q.Stats().Depth() != 2 {
			t.Fatalf("encrypted=%v: %d records after replay, want 2 (kept once, lost recovered)", encrypted, len(recs))
		}
		if st, _ := os.Stat(journalPath(path)); st.Size() != 0 {
			t.Fatalf("journal not cleared after replay: %d bytes", st.Size())
		}
		q.Close()
	}
}
