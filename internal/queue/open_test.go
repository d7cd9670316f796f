package queue

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestSecondOpenFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q := open(t, path, nil)
	defer q.Close()
	start := time.Now()
	_, err := Open(Options{Path: path, OpenTimeout: 200 * time.Millisecond, Log: zerolog.Nop()})
	if err == nil || !strings.Contains(err.Error(), "locked by another process") || time.Since(start) > 2*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
}

func TestCorruptFileMovedAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "q.db")
	junk := bytes.Repeat([]byte("not a bbolt file "), 4096)
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	q := open(t, path, nil)
	defer q.Close()
	if _, err := q.Enqueue(context.Background(), "report", []byte("x")); err != nil {
		t.Fatal(err)
	}
	st := q.Stats()
	if len(st.Alerts) != 1 || !strings.Contains(st.Alerts[0], "corrupt") {
		t.Fatalf("no alert: %+v", st)
	}
	matches, _ := filepath.Glob(path + ".corrupt-*")
	if len(matches) != 1 {
		t.Fatalf("corrupt file not kept aside: %v", matches)
	}
	if b, _ := os.ReadFile(matches[0]); !bytes.Equal(b, junk) {
		t.Fatal("moved-aside file altered")
	}
}
