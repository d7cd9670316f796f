//go:build linux

package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"scanagent/test/fakescanner/device"
)

// Under systemd (Type=notify, WatchdogSec) the agent says READY=1 once it
// listens and scans, WATCHDOG=1 from its main loop, STOPPING=1 on stop.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ln.Read(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func(want string) string {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case m := <-msgs:
				if strings.HasPrefix(m, want) {
					return m
				}
			case <-deadline:
				t.Fatalf("no %q from the agent", want)
			}
		}
	}
	s := newSetup(t, device.Options{Baud: 115200, Suffix: "\r"})
	cfg := s.config("baud = 115200", "")
	a := &agent{t: t, events: make(chan event, 4096), done: make(chan struct{}),
		cmd: &exec.Cmd{Env: append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=200000")}}
	startBinary(t, a, binary, cfg)
	ready := next("READY=1")
	if !strings.Contains(ready, "STATUS=scanning: 1 scanner(s)") {
		t.Fatalf("ready message %q", ready)
	}
	a.waitFor("agent ready", 5*time.Second) // READY came with or after it, never before the API listened
	next("WATCHDOG=1")
	next("WATCHDOG=1")
	a.stop(syscall.SIGTERM, 10*time.Second)
	next("STOPPING=1")
}
