package logging

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestJSONWhenNotTerminal(t *testing.T) {
	var buf bytes.Buffer
	l, c, err := New(Options{Level: "debug", Format: "auto", Stderr: &buf})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sl := Component(l, "scanner")
	sl.Debug().Str("k", "v").Msg("hello")
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("not JSON: %q", buf.String())
	}
	if m["component"] != "scanner" || m["message"] != "hello" || m["level"] != "debug" {
		t.Fatalf("fields: %v", m)
	}
}

func TestConsoleAndLevel(t *testing.T) {
	var buf bytes.Buffer
	l, _, _ := New(Options{Level: "warn", Format: "console", Stderr: &buf})
	l.Info().Msg("dropped")
	l.Warn().Msg("kept")
	out := buf.String()
	if strings.Contains(out, "dropped") || !strings.Contains(out, "kept") || strings.HasPrefix(out, "{") {
		t.Fatalf("console/level output: %q", out)
	}
}

func TestFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "sub", "agent.log")
	l, c, err := New(Options{Level: "info", Format: "auto", File: f, MaxSizeMB: 1})
	if err != nil {
		t.Fatal(err)
	}
	l.Info().Msg("to file")
	c.Close()
	b, err := os.ReadFile(f)
	if err != nil || !strings.HasPrefix(string(b), "{") || !strings.Contains(string(b), "to file") {
		t.Fatalf("file log: %q %v", b, err)
	}
}
