package scanner

import (
	"bytes"
	"testing"
	"time"
)

func TestFramer(t *testing.T) {
	t0 := time.Unix(0, 0)
	ms := time.Millisecond
	type feed struct {
		data string
		at   time.Duration
	}
	tests := []struct {
		name   string
		suffix string
		gap    time.Duration
		max    int
		feeds  []feed
		idleAt time.Duration
		want   []string
		over   []bool
	}{
		{name: "cr", suffix: "\r", feeds: []feed{{"abc\r", 0}}, want: []string{"abc"}},
		{name: "crlf split", suffix: "\r\n", feeds: []feed{{"ab", 0}, {"c\r", ms}, {"\nde", 2 * ms}, {"f\r\n", 3 * ms}}, want: []string{"abc", "def"}},
		{name: "lf two in one read", suffix: "\n", feeds: []feed{{"a\nb\n", 0}}, want: []string{"a", "b"}},
		{name: "empty frames dropped", suffix: "\r", feeds: []feed{{"\r\r\rx\r", 0}}, want: []string{"x"}},
		{name: "custom suffix", suffix: "\x03", feeds: []feed{{"abc\x03", 0}}, want: []string{"abc"}},
		{name: "gap framing", gap: 50 * ms, feeds: []feed{{"abc", 0}, {"def", 10 * ms}}, idleAt: 70 * ms, want: []string{"abcdef"}},
		{name: "gap not yet", gap: 50 * ms, feeds: []feed{{"abc", 0}}, idleAt: 40 * ms, want: nil},
		{name: "suffix mode flushes stale partial", suffix: "\r", gap: 50 * ms, feeds: []feed{{"abc", 0}}, idleAt: 600 * ms, want: []string{"abc"}},
		{name: "suffix mode keeps partial within 500ms", suffix: "\r", gap: 50 * ms, feeds: []feed{{"abc", 0}}, idleAt: 100 * ms, want: nil},
		{name: "overflow", suffix: "\r", max: 4, feeds: []feed{{"abcdefgh\r", 0}}, want: []string{"abcd", "efgh"}, over: []bool{true, true}},
		{name: "overflow then normal", suffix: "\r", max: 4, feeds: []feed{{"abcdef\rxy\r", 0}}, want: []string{"abcd", "ef", "xy"}, over: []bool{true, true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFramer([]byte(tt.suffix), tt.gap, tt.max)
			var got []Frame
			for _, fd := range tt.feeds {
				got = append(got, f.Feed([]byte(fd.data), t0.Add(fd.at))...)
			}
			if tt.idleAt > 0 {
				if fr, ok := f.Idle(t0.Add(tt.idleAt)); ok {
					got = append(got, fr)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("frames = %+v, want %q", got, tt.want)
			}
			for i := range got {
				if string(got[i].Data) != tt.want[i] {
					t.Fatalf("frame %d = %q, want %q", i, got[i].Data, tt.want[i])
				}
				if tt.over != nil && got[i].Overflow != tt.over[i] {
					t.Fatalf("frame %d overflow = %v", i, got[i].Overflow)
				}
			}
		})
	}
}

// FuzzFramer: whatever the chunking, suffix framing yields the same frames
// as splitting the whole stream at once, and no frame exceeds max.
func FuzzFramer(f *testing.F) {
	f.Add([]byte("abc\rdef\r"), uint8(3))
	f.Add([]byte("\r\r\rxx"), uint8(1))
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8) {
		if chunk == 0 {
			chunk = 1
		}
		whole := NewFramer([]byte("\r"), 0, 16)
		want := whole.Feed(stream, time.Time{})
		parts := NewFramer([]byte("\r"), 0, 16)
		var got []Frame
		for i := 0; i < len(stream); i += int(chunk) {
			got = append(got, parts.Feed(stream[i:min(len(stream), i+int(chunk))], time.Time{})...)
		}
		if len(got) != len(want) {
			t.Fatalf("chunked %d frames, whole %d", len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i].Data, want[i].Data) || len(got[i].Data) > 16 {
				t.Fatalf("frame %d differs: %q vs %q", i, got[i].Data, want[i].Data)
			}
		}
	})
}
