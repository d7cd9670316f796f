package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/internal/queue"
	"scanagent/internal/visit"
)

func TestQueueCLI(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "c.toml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("[agent]\ndata_dir = %q\n[platform]\nmode = \"off\"\n", dir)), 0o600)
	dbPath := filepath.Join(dir, "outbox.db")

	if r := run(t, "", nil, "queue", "stats", "-c", cfgPath); r.code != 1 || !strings.Contains(r.err, "has not run") {
		t.Fatalf("missing outbox: %+v", r)
	}
	q, err := queue.Open(queue.Options{Path: dbPath, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	d := card.ReportDefaults{Scene: "010101", Channel: "0100"}
	visit.EnqueueReport(context.Background(), q, visit.ReportKey("s1"), d.StaticReport("C7DA29345B6DF90A6F5BBEBD73EBE2EDA26F341A6CFEEEB1210A1B2C3D4E5F60:1", timeZero()))
	q.Enqueue(context.Background(), card.RecordBind, []byte(`{"patid":"P0001234","qrCodeText":"C7DA29345B6DF90A6F5BBEBD73EBE2EDA26F341A6CFEEEB1210A1B2C3D4E5F60:1"}`))
	// While another process holds the file, the CLI says why it cannot read.
	if r := run(t, "", nil, "queue", "stats", "-c", cfgPath); r.code != 1 || !strings.Contains(r.err, "running agent holds the outbox") {
		t.Fatalf("locked: %+v", r)
	}
	q.Close()

	r := run(t, "", nil, "queue", "stats", "-c", cfgPath)
	if r.code != 0 || !strings.Contains(r.out, "pending       2") {
		t.Fatalf("stats: %+v", r)
	}
	r = run(t, "", nil, "queue", "list", "-c", cfgPath)
	if r.code != 0 || !strings.Contains(r.out, "qr=C7DA29") || strings.Contains(r.out, "C7DA29345B6DF90A") || strings.Contains(r.out, "P0001234") {
		t.Fatalf("list must mask: %+v", r)
	}
	if r := run(t, "", nil, "queue", "purge", "-c", cfgPath, "--pending"); r.code != 2 || !strings.Contains(r.err, "--yes") {
		t.Fatalf("purge without --yes: %+v", r)
	}
	if r := run(t, "", nil, "queue", "purge", "-c", cfgPath, "--pending", "--yes"); r.code != 0 || !strings.Contains(r.out, "2 record(s) deleted") {
		t.Fatalf("purge: %+v", r)
	}
	if r := run(t, "", nil, "queue", "retry", "-c", cfgPath); r.code != 0 || !strings.Contains(r.out, "0 dead letter(s)") {
		t.Fatalf("retry: %+v", r)
	}
	if r := run(t, "", nil, "queue", "retry", "-c", cfgPath, "--seq", "x"); r.code != 2 {
		t.Fatalf("retry bad seq: %+v", r)
	}
}

func timeZero() time.Time { return time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC) }
