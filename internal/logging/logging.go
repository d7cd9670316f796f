// Package logging builds the agent's zerolog loggers: console output on a
// terminal, JSON otherwise, a rotated file (lumberjack) for services, and one
// child logger per component. It holds no global state: the root logger is
// created by internal/agent and passed down.
package logging

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/natefinch/lumberjack.v2"
)

// Options configures the root logger.
type Options struct {
	Level      string // trace, debug, info, warn, error
	Format     string // auto, json, console
	File       string // when set, log to this rotated file instead of Stderr
	MaxSizeMB  int
	MaxBackups int
	MaxAgeDays int
	// Stderr is where logs go without File; os.Stderr when nil.
	Stderr io.Writer
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// New returns the root logger and a Closer for its file, if any.
func New(o Options) (zerolog.Logger, io.Closer, error) {
	lvl, err := zerolog.ParseLevel(o.Level)
	if err != nil || o.Level == "" {
		lvl = zerolog.InfoLevel
	}
	var (
		w      io.Writer = o.Stderr
		closer io.Closer = nopCloser{}
	)
	if w == nil {
		w = os.Stderr
	}
	if o.File != "" {
		if err := os.MkdirAll(filepath.Dir(o.File), 0o750); err != nil {
			return zerolog.Nop(), nil, fmt.Errorf("log directory: %w", err)
		}
		lj := &lumberjack.Logger{Filename: o.File, MaxSize: o.MaxSizeMB, MaxBackups: o.MaxBackups, MaxAge: o.MaxAgeDays, Compress: true}
		w, closer = lj, lj
	}
	console := o.Format == "console" || (o.Format == "auto" || o.Format == "") && o.File == "" && IsTerminal(w)
	if console {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000", NoColor: !IsTerminal(w)}
	}
	l := zerolog.New(w).Level(lvl).Hook(timeHook{})
	return l, closer, nil
}

// timeHook stamps every event with a millisecond RFC 3339 time; zerolog's
// own Timestamp() uses a package-global format with whole seconds.
type timeHook struct{}

func (timeHook) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str(zerolog.TimestampFieldName, time.Now().Format("2006-01-02T15:04:05.000Z07:00"))
}

// Component returns the child logger of one component.
func Component(l zerolog.Logger, name string) zerolog.Logger {
	return l.With().Str("component", name).Logger()
}

// IsTerminal reports whether w is a character device (a console).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
