//go:build linux

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	bolt "go.etcd.io/bbolt"

	"scanagent/test/fakeplatform/platform"
	"scanagent/test/fakescanner/device"
)

func TestReloadOnSIGHUP(t *testing.T) {
	s := newSetup(t, device.Options{Baud: 115200, Suffix: "\r"})
	path := s.config("baud = 115200", "")
	a := s.start(path)
	s.dev.Type([]byte("XY0012345678"))
	if e := a.waitFor("scan", 3*time.Second); e.str("error") != "unknown" {
		t.Fatalf("before reload: %v", e)
	}
	// A new custom type, applied by SIGHUP without a restart.
	b, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(b), "'^HC[0-9]{10}$'", "'^(HC|XY)[0-9]{10}$'", 1)), 0o600)
	a.cmd.Process.Signal(syscall.SIGHUP)
	a.waitFor("configuration reloaded: scanners, platform client and HIS API rebuilt; outbox kept", 5*time.Second)
	a.waitFor("scanner connected", 5*time.Second)
	s.dev.Type([]byte("XY0012345679"))
	if e := a.waitFor("scan", 3*time.Second); e.str("kind") != "custom" {
		t.Fatalf("after reload: %v", e)
	}
	// A broken file is refused and the agent keeps running as it was.
	os.WriteFile(path, []byte("[agent]\nbogus = 1\n"), 0o600)
	a.cmd.Process.Signal(syscall.SIGHUP)
	a.waitFor("reload refused; the running configuration stays", 5*time.Second)
	s.dev.Type([]byte("XY0012345670"))
	if e := a.waitFor("scan", 3*time.Second); e.str("kind") != "custom" {
		t.Fatalf("after a refused reload: %v", e)
	}
	a.stop(syscall.SIGTERM, 6*time.Second)
	if a.err != nil {
		t.Fatal(a.err)
	}
}

// A reload that leaves the platform settings alone keeps the appToken (a
// new getAppToken would invalidate the one in use) and the counters.
func TestReloadKeepsTokenAndCounters(t *testing.T) {
	s := newSetup(t, device.Options{Baud: 115200, Suffix: "\r"})
	s.his = "[his.api]\nlisten = \"127.0.0.1:0\""
	path := s.config("baud = 115200", "")
	a := s.start(path)
	cards := platform.BuiltinCards()
	s.dev.Type([]byte(cards[0].QRCodeText))
	if e := a.waitFor("scan", 5*time.Second); e["verified"] != true {
		t.Fatalf("before reload: %v", e)
	}
	ws := dialWS(t, a.apiAddr()) // a HIS connected across the reload
	a.cmd.Process.Signal(syscall.SIGHUP)
	a.waitFor("configuration reloaded: scanners, platform client and HIS API rebuilt; outbox kept", 5*time.Second)
	a.waitFor("scanner connected", 5*time.Second)
	// Its WebSocket is closed with 1012 "service restart", so it
	// reconnects to the new API, rather than left open on the old one,
	// which no longer gets scans.
	select {
	case m := <-ws.msgs:
		if websocket.CloseStatus(m.err) != websocket.StatusServiceRestart {
			t.Fatalf("the HIS's WebSocket across a reload: %q %v, want close 1012", m.data, m.err)
		}
	case <-time.After(10 * time.Second): // a guard against a hang, not a timing
		t.Fatal("the HIS's WebSocket stayed open on the replaced API")
	}
	s.dev.Type([]byte(cards[1].QRCodeText))
	if e := a.waitFor("scan", 5*time.Second); e["verified"] != true {
		t.Fatalf("after reload: %v", e)
	}
	if n := s.platform.Stats().Tokens; n != 1 {
		t.Fatalf("%d appTokens fetched across a reload that kept the platform settings, want 1", n)
	}
	st := getStatus(t, a)
	if scans, _ := st["scans"].(map[string]any); scans["total"] != float64(2) {
		t.Fatalf("scan counter after reload: %v", st["scans"])
	}
}

// The shipped unit reloads with kill -HUP: a SIGHUP while the agent is
// still starting (here: waiting for the outbox lock) must not kill it; the
// reload is applied once the agent is up.
func TestSIGHUPDuringStart(t *testing.T) {
	s := newSetup(t, device.Options{Baud: 115200, Suffix: "\r"})
	path := s.config("baud = 115200", "")
	db, err := bolt.Open(filepath.Join(s.dir, "outbox.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &agent{t: t, events: make(chan event, 4096), done: make(chan struct{})}
	startProcess(t, a, path)
	time.Sleep(300 * time.Millisecond) // the agent waits for the lock (2 s)
	a.cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(100 * time.Millisecond)
	db.Close()
	a.waitFor("agent ready", 5*time.Second)
	a.waitFor("configuration reloaded: scanners, platform client and HIS API rebuilt; outbox kept", 5*time.Second)
	a.waitFor("scanner connected", 5*time.Second)
	a.stop(syscall.SIGTERM, 6*time.Second)
	if a.err != nil {
		t.Fatalf("exit: %v", a.err)
	}
}

// getStatus reads GET /v1/status of an agent whose API listens.
func getStatus(t *testing.T, a *agent) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(statusBody(t, a.apiAddr())), &m); err != nil {
		t.Fatal(err)
	}
	return m
}
