package scanner

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"scanagent/internal/card"
)

// scriptPort is a port whose reads follow a script: a step with data
// returns it at once; a step without waits out the read timeout (at once
// when fast) and returns nothing. After the script every read fails.
type scriptPort struct {
	steps    []portStep
	timeouts []time.Duration // every SetReadTimeout
	timeout  time.Duration
	reads    int
}

type portStep struct {
	data string
	fast bool // an empty read that does not wait
}

var errEndOfScript = errors.New("end of script")

func (p *scriptPort) SetReadTimeout(d time.Duration) error {
	p.timeouts = append(p.timeouts, d)
	p.timeout = d
	return nil
}

func (p *scriptPort) Read(b []byte) (int, error) {
	p.reads++
	if len(p.steps) == 0 {
		return 0, errEndOfScript
	}
	st := p.steps[0]
	p.steps = p.steps[1:]
	if st.data == "" && !st.fast {
		if p.timeout < 0 {
			panic("empty read without a timeout would block for ever")
		}
		time.Sleep(p.timeout)
	}
	return copy(b, st.data), nil
}

func runScript(t *testing.T, fr *Framer, steps ...portStep) (*scriptPort, []card.Scan, error) {
	t.Helper()
	p := &scriptPort{steps: steps, timeout: idleTimeout}
	var scans []card.Scan
	err := readLoop(context.Background(), p, fr, "s", func(s card.Scan) { scans = append(scans, s) })
	return p, scans, err
}

// TestReadLoopTimeouts: the read waits without a short timeout while no
// frame is pending, and times out at the gap while one is.
func TestReadLoopTimeouts(t *testing.T) {
	gap := 20 * time.Millisecond
	p, scans, err := runScript(t, NewFramer(nil, gap, 0),
		portStep{data: "abc"}, // pending: timeout = gap
		portStep{data: "def"},
		portStep{},           // the gap passes: "abcdef", then idle again
		portStep{data: "gh"}, // pending again
		portStep{},           // "gh"
	)
	if !errors.Is(err, errEndOfScript) {
		t.Fatalf("err = %v", err)
	}
	if want := []time.Duration{gap, idleTimeout, gap, idleTimeout}; !slices.Equal(p.timeouts, want) {
		t.Fatalf("read timeouts %v, want %v", p.timeouts, want)
	}
	if len(scans) != 2 || string(scans[0].Data) != "abcdef" || string(scans[1].Data) != "gh" || scans[0].Source != "s" {
		t.Fatalf("scans %+v", scans)
	}
}

// TestReadLoopSuffixInChunks: frames end with the read that brings their
// suffix, whatever the chunks; the partial frame left arms the gap timeout.
func TestReadLoopSuffixInChunks(t *testing.T) {
	p, scans, err := runScript(t, NewFramer([]byte("\r\n"), 50*time.Millisecond, 0),
		portStep{data: "ab\r\ncd\r"},
		portStep{data: "\nef\r\ngh"},
	)
	if !errors.Is(err, errEndOfScript) {
		t.Fatalf("err = %v", err)
	}
	var got []string
	for _, s := range scans {
		got = append(got, string(s.Data))
	}
	if !slices.Equal(got, []string{"ab", "cd", "ef"}) {
		t.Fatalf("scans %q", got)
	}
	if !scans[1].At.Equal(scans[2].At) || scans[1].At.Before(scans[0].At) {
		t.Fatalf("scan times %v %v %v: cd and ef end in the second read", scans[0].At, scans[1].At, scans[2].At)
	}
	// A partial frame after each read: the gap (500 ms in suffix mode).
	if want := []time.Duration{500 * time.Millisecond}; !slices.Equal(p.timeouts, want) {
		t.Fatalf("read timeouts %v, want %v", p.timeouts, want)
	}
}

// TestReadLoopDeviceGone: a port that keeps returning nothing at once is
// treated as unplugged, with or without a partial frame.
func TestReadLoopDeviceGone(t *testing.T) {
	for _, first := range []string{"", "partial"} {
		var steps []portStep
		if first != "" {
			steps = append(steps, portStep{data: first})
		}
		for range 30 {
			steps = append(steps, portStep{fast: true})
		}
		p, _, err := runScript(t, NewFramer([]byte("\r"), 0, 0), steps...)
		if err == nil || errors.Is(err, errEndOfScript) || p.reads > 22 {
			t.Fatalf("first %q: err = %v after %d reads", first, err, p.reads)
		}
	}
}
