//go:build linux

package scanner

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/test/fakescanner/device"
)

type collector struct {
	ch chan card.Scan
}

func newCollector() *collector        { return &collector{ch: make(chan card.Scan, 1024)} }
func (c *collector) emit(s card.Scan) { c.ch <- s }
func (c *collector) next(t *testing.T, d time.Duration) card.Scan {
	t.Helper()
	select {
	case s := <-c.ch:
		return s
	case <-time.After(d):
		t.Fatal("no scan within", d)
	}
	return card.Scan{}
}

func startSerial(t *testing.T, o device.Options, suffix []byte, gap time.Duration) (*device.Device, *collector, *Supervisor, context.CancelFunc, chan struct{}) {
	t.Helper()
	o.Link = filepath.Join(t.TempDir(), "scanner")
	dev, err := device.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	src := NewSerial(SerialOptions{Name: "s1", Port: o.Link, Baud: max(o.Baud, 9600), DataBits: 8, Parity: "none", StopBits: "1", Suffix: suffix, Gap: gap, MaxFrame: 4096, Log: zerolog.Nop()})
	col := newCollector()
	sup := NewSupervisor(zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sup.Run(ctx, []Source{src}, col.emit); close(done) }()
	waitConnected(t, sup, true)
	return dev, col, sup, cancel, done
}

func waitConnected(t *testing.T, sup *Supervisor, want bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < 5*time.Second {
		st := sup.States()
		if len(st) == 1 && st[0].Connected == want {
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("source connected != %v after 5s: %+v", want, sup.States())
	return 0
}

func TestSerialFraming(t *testing.T) {
	for _, baud := range []int{9600, 115200} {
		dev, col, _, cancel, done := startSerial(t, device.Options{Baud: baud, Suffix: "\r", AIM: "]Q1"}, []byte("\r"), 50*time.Millisecond)
		payload := "C7DA29345B6DF90A6F5BBEBD73EBE2EDA26F341A6CFEEEB1210A1B2C3D4E5F60:1"
		if err := dev.Type([]byte(payload)); err != nil {
			t.Fatal(err)
		}
		s := col.next(t, 2*time.Second)
		if string(s.Data) != "]Q1"+payload || s.Source != "s1" {
			t.Fatalf("baud %d: scan %q", baud, s.Data)
		}
		if s.At.Before(dev.LastByte().Add(-5 * time.Millisecond)) {
			t.Fatalf("scan time %v before last byte %v", s.At, dev.LastByte())
		}
		cancel()
		<-done
	}
}

func TestSerialGapFraming(t *testing.T) {
	dev, col, _, cancel, done := startSerial(t, device.Options{Baud: 115200}, nil, 40*time.Millisecond)
	defer func() { cancel(); <-done }()
	dev.Type([]byte("432901198810228888"))
	time.Sleep(100 * time.Millisecond)
	dev.Type([]byte("HC0012345678"))
	if s := col.next(t, time.Second); string(s.Data) != "432901198810228888" {
		t.Fatalf("first %q", s.Data)
	}
	if s := col.next(t, time.Second); string(s.Data) != "HC0012345678" {
		t.Fatalf("second %q", s.Data)
	}
}

func TestSerialRepeats(t *testing.T) {
	dev, col, _, cancel, done := startSerial(t, device.Options{Baud: 115200, Suffix: "\r", Repeat: 3, Every: 20 * time.Millisecond}, []byte("\r"), 50*time.Millisecond)
	defer func() { cancel(); <-done }()
	dev.Type([]byte("abc"))
	for i := 0; i < 4; i++ {
		if s := col.next(t, time.Second); string(s.Data) != "abc" {
			t.Fatalf("repeat %d: %q", i, s.Data)
		}
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

func TestSerialUnplugReplugNoLeak(t *testing.T) {
	dev, col, sup, cancel, done := startSerial(t, device.Options{Baud: 115200, Suffix: "\r"}, []byte("\r"), 50*time.Millisecond)
	cycle := func(i int) {
		if err := dev.Unplug(); err != nil {
			t.Fatal(err)
		}
		waitConnected(t, sup, false)
		if err := dev.Replug(); err != nil {
			t.Fatal(err)
		}
		if took := waitConnected(t, sup, true); took > time.Second+200*time.Millisecond {
			t.Fatalf("cycle %d: reconnected after %v, want within 1s", i, took)
		}
		dev.Type([]byte("after-replug"))
		if s := col.next(t, 2*time.Second); string(s.Data) != "after-replug" {
			t.Fatalf("cycle %d: %q", i, s.Data)
		}
	}
	cycle(0) // warm up lazily created goroutines and fds
	runtime.GC()
	g0, fd0 := runtime.NumGoroutine(), openFDs(t)
	for i := 1; i <= 100; i++ {
		cycle(i)
	}
	time.Sleep(100 * time.Millisecond)
	runtime.GC()
	g1, fd1 := runtime.NumGoroutine(), openFDs(t)
	if g1 > g0+2 || fd1 > fd0+2 {
		t.Fatalf("leak over 100 unplug cycles: goroutines %d → %d, fds %d → %d", g0, g1, fd0, fd1)
	}
	if st := sup.States()[0]; st.Reconnects < 100 {
		t.Fatalf("reconnects = %d", st.Reconnects)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("supervisor did not stop within 2s of cancel")
	}
}

func TestSerialAbsentPortNoBusyLoop(t *testing.T) {
	src := NewSerial(SerialOptions{Name: "gone", Port: filepath.Join(t.TempDir(), "none"), Baud: 9600, DataBits: 8, Parity: "none", StopBits: "1", Suffix: []byte("\r"), MaxFrame: 10})
	var opens int
	counting := sourceFunc{name: "gone", run: func(ctx context.Context, emit func(card.Scan)) error { opens++; return src.Run(ctx, emit) }}
	sup := NewSupervisor(zerolog.Nop())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	sup.Run(ctx, []Source{counting}, func(card.Scan) {})
	// 100ms doubling to 1s: about 5-6 attempts in 2s, never hundreds.
	if opens > 12 || opens < 2 {
		t.Fatalf("%d open attempts in 2s", opens)
	}
	if st := sup.States()[0]; st.Connected || st.LastError == "" {
		t.Fatalf("state %+v", st)
	}
}

type sourceFunc struct {
	name string
	run  func(ctx context.Context, emit func(card.Scan)) error
}

func (s sourceFunc) Name() string                                        { return s.name }
func (s sourceFunc) Run(ctx context.Context, emit func(card.Scan)) error { return s.run(ctx, emit) }
