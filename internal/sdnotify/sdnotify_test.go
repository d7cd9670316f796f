//go:build linux

package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestNotifyAndWatchdog(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	env := map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": strconv.Itoa(os.Getpid())}
	n := New(func(k string) string { return env[k] })
	if !n.Enabled() || n.WatchdogInterval() != time.Second {
		t.Fatalf("enabled %v, watchdog %v", n.Enabled(), n.WatchdogInterval())
	}
	if err := n.Notify("READY=1\nSTATUS=scanning"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	ln.SetReadDeadline(time.Now().Add(5 * time.Second))
	k, err := ln.Read(buf)
	if err != nil || string(buf[:k]) != "READY=1\nSTATUS=scanning" {
		t.Fatalf("read %q %v", buf[:k], err)
	}
	env["WATCHDOG_PID"] = "1"
	if n.WatchdogInterval() != 0 {
		t.Fatal("a watchdog meant for another process was taken")
	}
	var zero Notifier
	if zero.Enabled() || zero.Notify("READY=1") != nil || zero.WatchdogInterval() != 0 {
		t.Fatal("the zero Notifier must do nothing")
	}
	off := New(func(string) string { return "" })
	if off.Enabled() || off.Notify("READY=1") != nil || off.WatchdogInterval() != 0 {
		t.Fatal("outside systemd it must do nothing")
	}
}
