// Package sdnotify tells systemd how the service is doing (sd_notify(3)):
// READY=1 once the agent is really up, WATCHDOG=1 while its main loop runs,
// RELOADING=1 and STOPPING=1 around a reload and a stop. Outside systemd
// (no NOTIFY_SOCKET: a terminal, Windows, another init) it does nothing.
// The protocol is one datagram on a unix socket; no library needed.
package sdnotify

import (
	"net"
	"os"
	"strconv"
	"time"
)

// Notifier sends states to the service manager's socket.
type Notifier struct {
	socket string // "" outside systemd
	env    func(string) string
}

// New reads the service manager's socket from the environment.
func New(env func(string) string) Notifier {
	return Notifier{socket: env("NOTIFY_SOCKET"), env: env}
}

// Enabled reports whether a service manager listens.
func (n Notifier) Enabled() bool { return n.socket != "" }

// Notify sends state (e.g. "READY=1\nSTATUS=scanning"); without a socket
// it does nothing.
func (n Notifier) Notify(state string) error {
	if n.socket == "" {
		return nil
	}
	name := n.socket
	if name[0] == '@' {
		name = "\x00" + name[1:] // an abstract socket
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}

// WatchdogInterval is how often to send WATCHDOG=1: half the unit's
// WatchdogSec, or 0 when no watchdog is set for this process.
func (n Notifier) WatchdogInterval() time.Duration {
	if n.env == nil {
		return 0 // the zero Notifier: no service manager
	}
	usec, err := strconv.ParseInt(n.env("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := n.env("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}
