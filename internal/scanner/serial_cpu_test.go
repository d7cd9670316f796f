//go:build linux

package scanner

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/test/fakescanner/device"
)

// cpuTime is the user+system CPU time this process has used.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchFrame is the i-th 66-byte frame on the wire: 65 characters and CR.
func benchFrame(i int) []byte {
	return fmt.Appendf(nil, "%065d\r", i)
}

// fakeDevice is a fake scanner in a child process (this test binary), so
// that the pacing writer's CPU is not counted with the reader's.
type fakeDevice struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	link string
}

func startFakeDevice(t *testing.T, baud int) *fakeDevice {
	t.Helper()
	link := filepath.Join(t.TempDir(), "scanner")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSerialCPUDeviceHelper$")
	cmd.Env = append(os.Environ(), "SCANAGENT_DEVICE_HELPER="+link, "SCANAGENT_DEVICE_BAUD="+strconv.Itoa(baud))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &fakeDevice{cmd: cmd, in: in, out: bufio.NewReaderSize(outp, 1<<20), link: link}
	t.Cleanup(func() { in.Close(); cmd.Wait() })
	if line := d.line(t); line != "ready" {
		t.Fatalf("device helper: %q", line)
	}
	return d
}

func (d *fakeDevice) line(t *testing.T) string {
	t.Helper()
	s, err := d.out.ReadString('\n')
	if err != nil {
		t.Fatalf("device helper: %v", err)
	}
	return strings.TrimSpace(s)
}

// send types n frames, pause apart, and returns when each one's last byte
// was written.
func (d *fakeDevice) send(t *testing.T, n int, pause time.Duration) []time.Time {
	t.Helper()
	fmt.Fprintf(d.in, "%d %d\n", n, pause)
	var last []time.Time
	for _, f := range strings.Fields(d.line(t)) {
		ns, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			t.Fatalf("device helper: %q", f)
		}
		last = append(last, time.Unix(0, ns))
	}
	if len(last) != n {
		t.Fatalf("device helper sent %d frames, want %d", len(last), n)
	}
	return last
}

// TestSerialCPUDeviceHelper is the child process of startFakeDevice: it
// reads "N PAUSE" lines and answers with the last-byte times of the N
// frames it typed.
func TestSerialCPUDeviceHelper(t *testing.T) {
	link := os.Getenv("SCANAGENT_DEVICE_HELPER")
	if link == "" {
		t.Skip("child process of TestSerialCPU")
	}
	baud, _ := strconv.Atoi(os.Getenv("SCANAGENT_DEVICE_BAUD"))
	dev, err := device.New(device.Options{Link: link, Baud: baud})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer dev.Close()
	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		var n int
		var pause time.Duration
		if _, err := fmt.Sscan(sc.Text(), &n, &pause); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		var out []byte
		for i := range n {
			time.Sleep(pause)
			if err := dev.WriteRaw(benchFrame(i)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			out = strconv.AppendInt(append(out, ' '), dev.LastByte().UnixNano(), 10)
		}
		fmt.Printf("%s\n", out)
	}
	os.Exit(0)
}

// bareReader is the baseline: the same pty read in 4 KiB chunks through
// the runtime poller and split at the suffix.
func bareReader(t *testing.T, path string, frames chan<- time.Time) (stop func()) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		var pending []byte
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			now := time.Now()
			pending = append(pending, buf[:n]...)
			for {
				i := bytes.IndexByte(pending, '\r')
				if i < 0 {
					break
				}
				frames <- now
				pending = pending[:copy(pending, pending[i+1:])]
			}
		}
	}()
	return func() { f.Close(); <-done }
}

func percentile(d []time.Duration, q float64) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	return d[int(float64(len(d)-1)*q)]
}

// collect waits for n frame times and returns the CPU time used meanwhile
// and each frame's latency from its last byte on the wire.
func collect(t *testing.T, dev *fakeDevice, got <-chan time.Time, n int, pause time.Duration) (time.Duration, []time.Duration) {
	t.Helper()
	cpu0 := cpuTime(t)
	last := dev.send(t, n, pause)
	var lat []time.Duration
	for i := range n {
		select {
		case at := <-got:
			lat = append(lat, at.Sub(last[i]))
		case <-time.After(5 * time.Second):
			t.Fatalf("frame %d not read", i)
		}
	}
	return cpuTime(t) - cpu0, lat
}

const idleFor = 3 * time.Second

// idleCPU is the CPU time per second, in ms, the process uses while the
// port stays silent.
func idleCPU(t *testing.T) float64 {
	t.Helper()
	time.Sleep(200 * time.Millisecond)
	cpu0 := cpuTime(t)
	time.Sleep(idleFor)
	return float64(cpuTime(t)-cpu0) / float64(time.Millisecond) / idleFor.Seconds()
}

// TestSerialCPU measures the CPU time the Serial source uses per 1000
// 66-byte scans at 9600 and 115200 baud, next to a bare reader of the same
// pty in the same run, and the CPU an open idle port costs. The fake device
// runs in a child process. Run with SCANAGENT_BENCH=1; SCANAGENT_BENCH_SCANS
// sets the scans per configuration (300), SCANAGENT_BENCH_BAUDS the baud
// rates (9600,115200).
func TestSerialCPU(t *testing.T) {
	if os.Getenv("SCANAGENT_BENCH") == "" {
		t.Skip("set SCANAGENT_BENCH=1 (scripts/bench.sh) to run")
	}
	n := 300
	if v, err := strconv.Atoi(os.Getenv("SCANAGENT_BENCH_SCANS")); err == nil && v > 0 {
		n = v
	}
	bauds := []int{9600, 115200}
	if v := os.Getenv("SCANAGENT_BENCH_BAUDS"); v != "" {
		bauds = nil
		for _, f := range strings.Split(v, ",") {
			b, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("SCANAGENT_BENCH_BAUDS: %v", err)
			}
			bauds = append(bauds, b)
		}
	}
	const pause = 5 * time.Millisecond // between scans, as a person scanning cards
	for _, baud := range bauds {
		dev := startFakeDevice(t, baud)
		got := make(chan time.Time, n)

		stop := bareReader(t, dev.link, got)
		collect(t, dev, got, 3, pause) // warm up
		bareCPU, bareLat := collect(t, dev, got, n, pause)
		bareIdle := idleCPU(t)
		stop()

		src := NewSerial(SerialOptions{Name: "bench", Port: dev.link, Baud: baud, DataBits: 8, Suffix: []byte("\r"), Gap: 50 * time.Millisecond, MaxFrame: 4096, Log: zerolog.Nop()})
		ctx, cancel := context.WithCancel(context.Background())
		opened := make(chan struct{})
		octx := context.WithValue(ctx, connectedKey{}, connectedFunc(func() { close(opened) }))
		done := make(chan error, 1)
		go func() {
			done <- src.Run(octx, func(s card.Scan) {
				if len(s.Data) != 65 {
					t.Errorf("scan of %d bytes: %q", len(s.Data), s.Data)
				}
				got <- s.At
			})
		}()
		select {
		case <-opened:
		case err := <-done:
			t.Fatal(err)
		}
		collect(t, dev, got, 3, pause) // warm up
		agentCPU, agentLat := collect(t, dev, got, n, pause)

		idle := idleCPU(t)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}

		per1000 := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) * 1000 / float64(n) }
		fmt.Printf("serial cpu: baud=%d agent=%.0fms/1000 bare=%.0fms/1000 ratio=%.2f (n=%d; last byte→At p50/p99 agent=%v/%v bare=%v/%v)\n",
			baud, per1000(agentCPU), per1000(bareCPU), float64(agentCPU)/float64(bareCPU), n,
			percentile(agentLat, .5).Round(time.Microsecond), percentile(agentLat, .99).Round(time.Microsecond),
			percentile(bareLat, .5).Round(time.Microsecond), percentile(bareLat, .99).Round(time.Microsecond))
		fmt.Printf("serial idle: %.3fms/s (baud=%d: an open idle port; bare reader %.3fms/s; CPU of the whole test process over %v)\n",
			idle, baud, bareIdle, idleFor)
	}
}
