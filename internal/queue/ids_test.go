package queue

import (
	"context"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
)

// A crash mid-send: the attempt's requestId was written with the record,
// nothing was written for the send itself; after the restart the record
// is sent again with the same requestId, and 10054 means delivered.
func TestCrashMidSendReplaysTheRequestID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	opts := Options{Path: path, Concurrency: 2, Log: zerolog.Nop()}
	q, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	q.Enqueue(context.Background(), "report", []byte("r1"))
	recs, _, _ := q.due("report", 1)
	if err := q.prepare("report", recs); err != nil || recs[0].reused {
		t.Fatalf("first attempt: %v, reused %v", err, recs[0].reused)
	}
	pm := &platformModel{seen: map[string]bool{}, delivered: map[string]int{}}
	pm.send(recs[0].Payload, recs[0].RequestID, false, false) // processed; the answer dies with the agent
	kill(q)
	if q, err = Open(opts); err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	again, _, _ := q.due("report", 1)
	if err := q.prepare("report", again); err != nil || again[0].RequestID != recs[0].RequestID || !again[0].reused {
		t.Fatalf("after the restart: %v, %s (was %s), reused %v", err, again[0].RequestID, recs[0].RequestID, again[0].reused)
	}
	v := pm.send(again[0].Payload, again[0].RequestID, false, false)
	if v.Outcome != Duplicate {
		t.Fatalf("platform answered %+v", v)
	}
	if err := q.settle("report", again, []Verdict{v}); err != nil {
		t.Fatal(err)
	}
	if st := q.Stats(); st.Depth() != 0 || st.Delivered != 1 || pm.delivered["r1"] != 1 {
		t.Fatalf("stats %+v, platform %v", st, pm.delivered)
	}
}

// Within one process: an id this process assigned and has not sent is
// fresh (10054 on it is a collision, retried with a new id); one it sent
// and could not settle is a replay.
func TestSentButUnsettledIsAReplay(t *testing.T) {
	q := open(t, filepath.Join(t.TempDir(), "q.db"), nil)
	defer q.Close()
	q.Enqueue(context.Background(), "report", []byte("r1"))
	recs, _, _ := q.due("report", 1)
	if !q.ready(&recs[0]) || recs[0].reused || !strings.HasPrefix(recs[0].RequestID, q.idPrefixHex) {
		t.Fatalf("fresh record: %+v", recs[0])
	}
	q.sending(&recs[0]) // sent; its settle never commits
	again, _, _ := q.due("report", 1)
	if !q.ready(&again[0]) || !again[0].reused {
		t.Fatalf("sent, unsettled: %+v", again[0])
	}
	if err := q.settle("report", again, []Verdict{{Outcome: Duplicate}}); err != nil {
		t.Fatal(err)
	}
	if st := q.Stats(); st.Delivered != 1 || st.Duplicates != 1 {
		t.Fatalf("10054 on a replay: %+v", st)
	}
	if len(q.sent) != 0 {
		t.Fatalf("settled attempts remembered: %v", q.sent)
	}
}

// A record written by an earlier version after a definite answer has no
// requestId it may use (its last one was answered): it gets a new one,
// committed before it is sent.
func TestRecordOfAnEarlierVersionGetsANewRequestID(t *testing.T) {
	q := open(t, filepath.Join(t.TempDir(), "q.db"), nil)
	defer q.Close()
	q.Enqueue(context.Background(), "report", []byte("r1"))
	const old = "0F0E0D0C0B0A49088706050403020100"
	err := q.update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("q:report"))
		k, v := b.Cursor().First()
		r, err := q.decode(k, v)
		if err != nil {
			return err
		}
		r.RequestID, r.next, r.Attempts = old, false, 1 // as the earlier version left it
		_, err = q.put(b, &r)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &diskCheckSender{q: q}
	stop := run(t, q, s)
	defer stop()
	waitFor(t, "delivery", func() bool { return q.Stats().Delivered == 1 })
	if rids := s.check(t, 1); rids[0] == old {
		t.Fatal("sent with the requestId of an attempt already answered")
	}
}

// Record encoding keeps the flags: the next attempt's id, or an unknown
// outcome's; an earlier version reading flag 4 ignores it.
func TestRecordFlagsRoundTrip(t *testing.T) {
	for _, r := range []Record{
		{Kind: "report", RequestID: "0F0E0D0C0B0A49088706050403020100", next: true},
		{Kind: "report", RequestID: "0F0E0D0C0B0A49088706050403020100", Unknown: true},
		{Kind: "report", RequestID: "legacy"},
	} {
		got, err := unmarshal(r.marshal())
		if err != nil || got.RequestID != r.RequestID || got.next != r.next || got.Unknown != r.Unknown {
			t.Fatalf("%+v → %+v, %v", r, got, err)
		}
	}
}

// The outbox's requestIds are UUIDv4 in 32 uppercase hex digits, stored
// as their 16 bytes.
func TestRequestIDForm(t *testing.T) {
	q := &Queue{}
	q.idPrefix, q.idPrefixHex = newIDPrefix()
	for i := 0; i < 100; i++ {
		id := q.newRequestID()
		b, ok := rawID(id)
		if !ok || strings.ToUpper(hex.EncodeToString(b[:])) != id || id[12] != '4' || !strings.ContainsRune("89AB", rune(id[16])) || !strings.HasPrefix(id, q.idPrefixHex) {
			t.Fatalf("requestId %s (%x, %v)", id, b, ok)
		}
	}
	for _, s := range []string{"", "0f0e0d0c0b0a49088706050403020100", "0F0E0D0C0B0A4908870605040302010", "0F0E0D0C0B0A49088706050403020G00"} {
		if _, ok := rawID(s); ok {
			t.Fatalf("rawID(%q) accepted", s)
		}
	}
}
