package scanner

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

const readTimeout = 50 * time.Millisecond

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
	port, err := serial.Open(name, s.mode())
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	// Closing the port is the only way to interrupt a Read on every
	// platform; the read timeout keeps cancellation prompt anyway.
	done := make(chan struct{})
	defer func() {
		close(done)
		port.Close()
	}()
	go func() {
		select {
		case <-ctx.Done():
			port.Close()
		case <-done:
		}
	}()
	if err := port.SetReadTimeout(readTimeout); err != nil {
		return fmt.Errorf("%s: set read timeout: %w", name, err)
	}
	Connected(ctx)
	s.o.Log.Debug().Str("port", name).Int("baud", s.o.Baud).Msg("serial port open")
	return readLoop(ctx, port, NewFramer(s.o.Suffix, s.o.Gap, s.o.MaxFrame), s.o.Name, emit)
}

// reader is the part of serial.Port the read loop needs.
type reader interface {
	Read(p []byte) (int, error)
}

// readLoop reads with a short timeout, feeding the framer. A port that
// returns nothing at once, many times in a row, has vanished (some USB
// drivers report unplug that way) and is treated as closed.
func readLoop(ctx context.Context, port reader, fr *Framer, source string, emit func(card.Scan)) error {
	buf := make([]byte, 512)
	fastZeros := 0
	for {
		start := time.Now()
		n, err := port.Read(buf)
		now := time.Now()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			var pe *serial.PortError
			if errors.As(err, &pe) && pe.Code() == serial.PortClosed {
				return errors.New("port closed")
			}
			return fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			if now.Sub(start) < readTimeout/5 {
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
