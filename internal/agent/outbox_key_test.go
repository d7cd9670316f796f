package agent

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"scanagent/internal/config"
)

// By default the outbox is encrypted with a key generated on the first
// start (0600, beside the outbox) and read again on the next; the records
// on disk carry no plaintext; the CLI reads the key but never makes one.
func TestOutboxEncryptedByDefault(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse([]byte("[agent]\ndata_dir = \""+dir+"\"\n[platform]\nmode = \"gateway\"\ngateway_url = \"https://gw.example:8471\"\ngateway_token = \"0123456789abcdef\"\n"),
		"k.toml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if o, err := QueueOptions(cfg, zerolog.Nop()); err != nil || o.Key != nil {
		t.Fatalf("CLI before the first start: key %v, %v (want none, no error)", o.Key, err)
	}
	ob, err := openOutbox(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte(`{"qrCodeText":"C7DA29340C1A4C2B9F6E0A12B34C5D6E:1"}`)
	if _, err := ob.EnqueueKeyed(context.Background(), "report", "scan:1", secret); err != nil {
		t.Fatal(err)
	}
	ob.Close()
	keyPath := filepath.Join(dir, "outbox.key")
	st, err := os.Stat(keyPath)
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != 65 {
		t.Fatalf("key file %v %v", st, err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "outbox.db"))
	if bytes.Contains(raw, []byte("C7DA29340C1A4C2B")) {
		t.Fatal("the outbox holds the record in clear")
	}
	key1, _ := os.ReadFile(keyPath)
	o, err := QueueOptions(cfg, zerolog.Nop())
	if err != nil || len(o.Key) != 32 {
		t.Fatalf("CLI after the first start: %v %v", o.Key, err)
	}
	ob, err = openOutbox(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	recs, err := ob.List(false, 0)
	if err != nil || len(recs) != 1 || !bytes.Equal(recs[0].Payload, secret) {
		t.Fatalf("reopened: %v %v", recs, err)
	}
	if key2, _ := os.ReadFile(keyPath); !bytes.Equal(key1, key2) {
		t.Fatal("the key was replaced")
	}
}
