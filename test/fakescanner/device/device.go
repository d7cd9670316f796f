//go:build !windows

package device

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// Options configures a fake scanner.
type Options struct {
	// Link is the path the agent opens; a symlink to the current pty slave.
	Link string
	// Baud paces the bytes (10 bits per byte, as 8N1); 0 writes at once.
	Baud int
	// Suffix ends each payload (e.g. "\r"); empty for gap framing.
	Suffix string
	// AIM is prepended to each payload (e.g. "]Q1").
	AIM string
	// Repeat sends each payload this many extra times, Every apart, like a
	// held trigger.
	Repeat int
	Every  time.Duration
}

// Device is a fake scanner.
type Device struct {
	o Options

	mu       sync.Mutex
	master   *os.File
	slave    *os.File
	lastByte time.Time
}

// New creates the pty and the link.
func New(o Options) (*Device, error) {
	if o.Link == "" {
		return nil, errors.New("device: Link is required")
	}
	if o.Every == 0 {
		o.Every = 200 * time.Millisecond
	}
	d := &Device{o: o}
	if err := d.plug(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Device) plug() error {
	master, slave, err := pty.Open()
	if err != nil {
		return fmt.Errorf("open pty: %w", err)
	}
	// Raw mode before anyone opens the slave: no echo, no CR→NL mapping.
	t, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err == nil {
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB
		t.Cflag |= unix.CS8
		err = unix.IoctlSetTermios(int(slave.Fd()), unix.TCSETS, t)
	}
	if err != nil {
		master.Close()
		slave.Close()
		return fmt.Errorf("raw mode: %w", err)
	}
	tmp := d.o.Link + ".tmp"
	os.Remove(tmp)
	if err := os.MkdirAll(filepath.Dir(d.o.Link), 0o755); err != nil {
		return err
	}
	if err := os.Symlink(slave.Name(), tmp); err != nil {
		master.Close()
		slave.Close()
		return fmt.Errorf("link: %w", err)
	}
	if err := os.Rename(tmp, d.o.Link); err != nil {
		return fmt.Errorf("link: %w", err)
	}
	d.mu.Lock()
	d.master, d.slave = master, slave
	d.mu.Unlock()
	return nil
}

// Path is the pty slave the link points to now.
func (d *Device) Path() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.slave == nil {
		return ""
	}
	return d.slave.Name()
}

// ByteTime is the wire time of one byte at the configured baud.
func (d *Device) ByteTime() time.Duration {
	if d.o.Baud <= 0 {
		return 0
	}
	return time.Duration(float64(time.Second) * 10 / float64(d.o.Baud))
}

// Type sends payload (with AIM prefix and suffix), plus the configured
// repeats, and returns when the last byte was written.
func (d *Device) Type(payload []byte) error {
	frame := append(append([]byte(d.o.AIM), payload...), d.o.Suffix...)
	for i := 0; i <= d.o.Repeat; i++ {
		if i > 0 {
			time.Sleep(d.o.Every)
		}
		if err := d.write(frame); err != nil {
			return err
		}
	}
	return nil
}

// WriteRaw sends bytes as they are, paced.
func (d *Device) WriteRaw(b []byte) error { return d.write(b) }

// write paces bytes at the baud rate: each byte is due at start + i·byteTime;
// bytes already due go out in one write.
func (d *Device) write(b []byte) error {
	d.mu.Lock()
	m := d.master
	d.mu.Unlock()
	if m == nil {
		return errors.New("device unplugged")
	}
	bt := d.ByteTime()
	start := time.Now()
	for i := 0; i < len(b); {
		n := len(b) - i
		if bt > 0 {
			due := int(time.Since(start)/bt) + 1 - i
			if due < 1 {
				time.Sleep(time.Until(start.Add(time.Duration(i) * bt)))
				continue
			}
			n = min(n, due)
		}
		if _, err := m.Write(b[i : i+n]); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		i += n
	}
	d.mu.Lock()
	d.lastByte = time.Now()
	d.mu.Unlock()
	return nil
}

// LastByte is when the last byte of the last payload was written.
func (d *Device) LastByte() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastByte
}

// Unplug closes the pty, as pulling the cable does, and removes the link.
func (d *Device) Unplug() error {
	d.mu.Lock()
	m, s := d.master, d.slave
	d.master, d.slave = nil, nil
	d.mu.Unlock()
	if m == nil {
		return errors.New("already unplugged")
	}
	os.Remove(d.o.Link)
	s.Close()
	return m.Close()
}

// Replug creates a new pty behind the same link.
func (d *Device) Replug() error {
	d.mu.Lock()
	plugged := d.master != nil
	d.mu.Unlock()
	if plugged {
		return errors.New("already plugged")
	}
	return d.plug()
}

// Close unplugs for good.
func (d *Device) Close() error {
	d.mu.Lock()
	plugged := d.master != nil
	d.mu.Unlock()
	if plugged {
		return d.Unplug()
	}
	return nil
}
