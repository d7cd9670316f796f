package queue

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
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

// A journal is whatever a crash left on disk: any bytes read without a
// panic, every entry returned has a kind, and a whole line written after
// the damage is still read back (a torn or garbled line costs only
// itself).
func FuzzReadJournal(f *testing.F) {
	f.Add([]byte(`{"kind":"report","key":"scan:1","payload":"e30="}` + "\n"))
	f.Add([]byte(`{"kind":"report","key":"scan:3","pay`))
	f.Add([]byte("\x00\xff\n{}\n[1,2]\n{\"kind\":\"\"}\n"))
	good := journalEntry{Kind: "report", Key: "scan:9", Payload: []byte(`{"a":9}`)}
	f.Fuzz(func(t *testing.T, damage []byte) {
		entries, err := readJournal(bytes.NewReader(damage))
		if err != nil {
			t.Fatalf("read error on bytes alone: %v", err)
		}
		for _, e := range entries {
			if e.Kind == "" {
				t.Fatalf("entry without a kind: %+v", e)
			}
		}
		var buf bytes.Buffer
		buf.Write(damage)
		buf.WriteString("\n")
		line, _ := json.Marshal(good)
		buf.Write(append(line, '\n'))
		entries, err = readJournal(&buf)
		if err != nil || len(entries) == 0 {
			t.Fatalf("the whole line after the damage is lost: %v, %v", entries, err)
		}
		if last := entries[len(entries)-1]; last.Kind != good.Kind || last.Key != good.Key || !bytes.Equal(last.Payload, good.Payload) {
			t.Fatalf("last entry %+v, want %+v", last, good)
		}
	})
}
