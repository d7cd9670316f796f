package scanner

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.bug.st/serial"
	"go.bug.st/serial/enumerator"

	"scanagent/internal/card"
)

// SerialOptions configures a serial scanner.
type SerialOptions struct {
	Name string
	// Port is the port name (COM3, /dev/ttyACM0). When empty the port is
	// found by VID/PID (and SerialNumber, when set) at every (re)open.
	Port         string
	VID, PID     string
	SerialNumber string
	Baud         int
	DataBits     int
	Parity       string // none, odd, even, mark, space
	StopBits     string // 1, 1.5, 2
	Suffix       []byte
	Gap          time.Duration
	MaxFrame     int
	Log          zerolog.Logger
}

// Serial is a scanner on a serial port.
type Serial struct{ o SerialOptions }

// NewSerial returns a serial source.
func NewSerial(o SerialOptions) *Serial { return &Serial{o: o} }

// Name returns the source name.
func (s *Serial) Name() string { return s.o.Name }

// resolve finds the port name, by USB ids when no name is configured.
func (s *Serial) resolve() (string, error) {
	if s.o.Port != "" {
		return s.o.Port, nil
	}
	ports, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return "", fmt.Errorf("enumerate serial ports: %w", err)
	}
	for _, p := range ports {
		if p.IsUSB && strings.EqualFold(p.VID, s.o.VID) && strings.EqualFold(p.PID, s.o.PID) &&
			(s.o.SerialNumber == "" || p.SerialNumber == s.o.SerialNumber) {
			return p.Name, nil
		}
	}
	return "", fmt.Errorf("no serial port with USB id %s:%s%s", s.o.VID, s.o.PID, map[bool]string{true: " serial " + s.o.SerialNumber}[s.o.SerialNumber != ""])
}

func (s *Serial) mode() *serial.Mode {
	m := &serial.Mode{BaudRate: s.o.Baud, DataBits: s.o.DataBits}
	m.Parity = map[string]serial.Parity{"odd": serial.OddParity, "even": serial.EvenParity, "mark": serial.MarkParity, "space": serial.SpaceParity}[s.o.Parity]
	m.StopBits = map[string]serial.StopBits{"1.5": serial.OnePointFiveStopBits, "2": serial.TwoStopBits}[s.o.StopBits]
	return m
}

// Run opens the port and frames scans until ctx ends or the port fails.
func (s *Serial) Run(ctx context.Context, emit func(card.Scan)) error {
	name, err := s.resolve()
	if err != nil {
		return err
	}
	// The polled reader is opened before the library takes exclusive
	// access; without it (not Linux, or a device epoll refuses) the
	// library reads.
	polled, perr := openPolled(name)
	sp, err := serial.Open(name, s.mode())
	if err != nil {
		if polled != nil {
			polled.Close()
		}
		return fmt.Errorf("open %s: %w", name, err)
	}
	var rd port = sp
	if polled != nil {
		rd = polled
	} else if !errors.Is(perr, errors.ErrUnsupported) {
		s.o.Log.Debug().Err(perr).Str("port", name).Msg("serial port read through the library")
	}
	// Closing the port is the only way to interrupt a Read on every
	// platform.
	var closeOnce sync.Once
	closePort := func() {
		closeOnce.Do(func() {
			if polled != nil {
				polled.Close()
			}
			sp.Close()
		})
	}
	done := make(chan struct{})
	defer func() {
		close(done)
		closePort()
	}()
	go func() {
		select {
		case <-ctx.Done():
			closePort()
		case <-done:
		}
	}()
	if err := rd.SetReadTimeout(idleTimeout); err != nil {
		return fmt.Errorf("%s: set read timeout: %w", name, err)
	}
	Connected(ctx)
	s.o.Log.Debug().Str("port", name).Int("baud", s.o.Baud).Bool("polled", polled != nil).Msg("serial port open")
	return readLoop(ctx, rd, NewFramer(s.o.Suffix, max(s.o.Gap, minGap), s.o.MaxFrame), s.o.Name, emit)
}

// minGap is the least silence that ends a frame. The loop used to notice
// a gap only at a 50 ms read timeout, so no frame ended on less; keep that
// floor for configured gaps below it: USB serial adapters deliver a byte
// stream in bursts up to their latency timer apart (16 ms on FTDI).
const minGap = 50 * time.Millisecond

// errPortClosed is a read on a port closed meanwhile, or hung up.
var errPortClosed = errors.New("port closed")

// port is the part of serial.Port the read loop needs.
type port interface {
	Read(p []byte) (int, error)
	SetReadTimeout(t time.Duration) error
}

// readBufSize is the most one read takes: a burst (a USB virtual COM
// packet, bytes queued while the loop was busy) costs one read.
const readBufSize = 4096

// idleTimeout bounds a read while no partial frame is pending, when there
// is no gap to time and a timeout would only wake the loop for nothing. On
// Unix the library wakes a blocked Read when the port is closed (a pipe in
// the same select) and reports unplug as PortClosed, so the read waits for
// data. On Windows its Read loops inside the library on zero-byte reads
// when there is no timeout (some USB drivers, CH340 among them, return
// nothing at once), and a driver may not abort a pending read on close: a
// second bounds both, at one wakeup per idle second.
var idleTimeout = func() time.Duration {
	if runtime.GOOS == "windows" {
		return time.Second
	}
	return serial.NoTimeout
}()

// readLoop reads the port in chunks of whatever has arrived, feeding the
// framer: a suffix is seen, and its frame emitted, as soon as the read that
// brings it returns. While a partial frame is pending the read times out
// when the framer's gap would end it, so a gap-terminated frame is emitted
// once the gap has passed; with nothing pending the read waits (see
// idleTimeout). A port that returns nothing at once, many times in a row,
// has vanished (some USB drivers report unplug that way) and is treated as
// closed. The port's read timeout is idleTimeout on entry.
func readLoop(ctx context.Context, p port, fr *Framer, source string, emit func(card.Scan)) error {
	buf := make([]byte, readBufSize)
	fastZeros := 0
	timeout := idleTimeout // as set on the port
	now := time.Now()
	for {
		want := idleTimeout
		if end, ok := fr.Deadline(); ok {
			// Whole milliseconds, at least one: Windows counts in them,
			// and a zero timeout there means "return at once".
			want = max(end.Sub(now), 0)
			want = (want + time.Millisecond - 1).Truncate(time.Millisecond)
			want = max(want, time.Millisecond)
		}
		if want != timeout {
			if err := p.SetReadTimeout(want); err != nil {
				return fmt.Errorf("set read timeout: %w", err)
			}
			timeout = want
		}
		start := time.Now()
		n, err := p.Read(buf)
		now = time.Now()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			var pe *serial.PortError
			if errors.Is(err, errPortClosed) || errors.As(err, &pe) && pe.Code() == serial.PortClosed {
				return errors.New("port closed")
			}
			return fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			// A read without a timeout never returns empty; one with a
			// timeout does so only once the timeout has (nearly) passed.
			if timeout < 0 || now.Sub(start) < timeout/5 {
				if fastZeros++; fastZeros >= 20 {
					return errors.New("port returns no data without waiting: device gone")
				}
			} else {
				fastZeros = 0
			}
			if f, ok := fr.Idle(now); ok {
				emit(card.Scan{Data: f.Data, Source: source, At: f.At, Overflow: f.Overflow})
			}
			continue
		}
		fastZeros = 0
		for _, f := range fr.Feed(buf[:n], now) {
			emit(card.Scan{Data: f.Data, Source: source, At: f.At, Overflow: f.Overflow})
		}
	}
}
