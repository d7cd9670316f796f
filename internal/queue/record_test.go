package queue

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRecordCodec(t *testing.T) {
	now := time.UnixMilli(1763900000123)
	for _, r := range []Record{
		{Kind: "report", Payload: []byte("{}"), Enqueued: now},
		{Kind: "bind", Payload: []byte("x"), Enqueued: now, Attempts: 3, RequestID: "DB4D975748A84309977EA25224C0F5CF", Unknown: true, NextAttempt: now.Add(time.Hour), LastError: "超时", DeadAt: now},
		{Kind: "k", RequestID: "odd-id"},
	} {
		got, err := unmarshal(r.marshal())
		if err != nil {
			t.Fatal(err)
		}
		got.Seq = r.Seq
		if fmt.Sprint(got) != fmt.Sprint(r) {
			t.Fatalf("round trip\n got %+v\nwant %+v", got, r)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add((&Record{Kind: "report", Payload: []byte("{}"), RequestID: "DB4D975748A84309977EA25224C0F5CF"}).marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := unmarshal(b)
		if err != nil {
			return
		}
		again, err := unmarshal(r.marshal())
		if err != nil || fmt.Sprint(again) != fmt.Sprint(r) {
			t.Fatalf("re-encode differs: %+v vs %+v (%v)", r, again, err)
		}
	})
}

func TestEncryptionAtRest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	key := bytes.Repeat([]byte{7}, 32)
	secret := []byte(`{"qrCodeText":"C7DA29345B6DF90A6F5BBEBD73EBE2ED:1","idCardNumber":"432901198810228888"}`)
	q := open(t, path, func(o *Options) { o.Key = key })
	q.Enqueue(context.Background(), "report", secret)
	q.Close()
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte("432901198810228888")) || bytes.Contains(raw, []byte("C7DA29345B")) {
		t.Fatal("plaintext payload on disk")
	}
	q = open(t, path, func(o *Options) { o.Key = key })
	recs, _ := q.List(false, 0)
	q.Close()
	if len(recs) != 1 || !bytes.Equal(recs[0].Payload, secret) {
		t.Fatalf("decrypt: %+v", recs)
	}
	q = open(t, path, func(o *Options) { o.Key = bytes.Repeat([]byte{8}, 32) })
	defer q.Close()
	recs, _ = q.List(false, 0)
	if len(recs) != 1 || !strings.Contains(recs[0].LastError, "decrypted") {
		t.Fatalf("wrong key: %+v", recs)
	}
	if q.Stats().Depth() != 1 {
		t.Fatal("undecryptable record lost")
	}
}
