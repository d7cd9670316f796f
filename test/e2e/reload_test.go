//go:build linux

package e2e

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

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
