package scanner

import (
	"slices"
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
		at     []time.Duration // each frame's time, when set
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
		// Chunk boundaries: a frame ends, and takes its time, with the
		// chunk that brings its suffix's last byte.
		{name: "frame split across chunks", suffix: "\r", feeds: []feed{{"ab", 0}, {"cd", ms}, {"e\r", 2 * ms}}, want: []string{"abcde"}, at: []time.Duration{2 * ms}},
		{name: "crlf split between CR and LF", suffix: "\r\n", feeds: []feed{{"abc\r", 0}, {"\n", ms}}, want: []string{"abc"}, at: []time.Duration{ms}},
		{name: "two-byte suffix split twice", suffix: "\x03\x04", feeds: []feed{{"ab\x03", 0}, {"\x04cd\x03", ms}, {"\x04", 2 * ms}}, want: []string{"ab", "cd"}, at: []time.Duration{ms, 2 * ms}},
		{name: "several frames and a partial in one chunk", suffix: "\r", feeds: []feed{{"a\rbb\rccc\rdd", 0}, {"d\r", ms}}, want: []string{"a", "bb", "ccc", "ddd"}, at: []time.Duration{0, 0, 0, ms}},
		{name: "crlf frames in one chunk, the last split", suffix: "\r\n", feeds: []feed{{"a\r\nb\r\nc\r", 0}, {"\n", ms}}, want: []string{"a", "b", "c"}, at: []time.Duration{0, 0, ms}},
		{name: "lone CR inside a crlf frame", suffix: "\r\n", feeds: []feed{{"a\r", 0}, {"b\r\n", ms}}, want: []string{"a\rb"}, at: []time.Duration{ms}},
		{name: "overflow across chunks", suffix: "\r", max: 4, feeds: []feed{{"abc", 0}, {"defgh\r", ms}}, want: []string{"abcd", "efgh"}, over: []bool{true, true}, at: []time.Duration{ms, ms}},
		{name: "gap frame from chunks takes the last chunk's time", gap: 50 * ms, feeds: []feed{{"ab", 0}, {"cd", 10 * ms}}, idleAt: 60 * ms, want: []string{"abcd"}, at: []time.Duration{10 * ms}},
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
				if tt.at != nil && !got[i].At.Equal(t0.Add(tt.at[i])) {
					t.Fatalf("frame %d at %v, want %v", i, got[i].At.Sub(t0), tt.at[i])
				}
			}
		})
	}
}

func TestFramerDeadline(t *testing.T) {
	t0 := time.Unix(0, 0)
	f := NewFramer(nil, 40*time.Millisecond, 0)
	if _, ok := f.Deadline(); ok {
		t.Fatal("deadline with nothing pending")
	}
	f.Feed([]byte("ab"), t0)
	f.Feed([]byte("c"), t0.Add(time.Millisecond))
	d, ok := f.Deadline()
	if want := t0.Add(41 * time.Millisecond); !ok || !d.Equal(want) {
		t.Fatalf("deadline %v %v, want %v", d, ok, want)
	}
	if _, ok := f.Idle(d.Add(-time.Nanosecond)); ok {
		t.Fatal("flushed before the deadline")
	}
	if fr, ok := f.Idle(d); !ok || string(fr.Data) != "abc" {
		t.Fatalf("not flushed at the deadline: %q %v", fr.Data, ok)
	}
	if _, ok := f.Deadline(); ok {
		t.Fatal("deadline after the flush")
	}
	s := NewFramer([]byte("\r"), 0, 0)
	s.Feed([]byte("x\r"), t0)
	if _, ok := s.Deadline(); ok {
		t.Fatal("deadline after a complete frame")
	}
}

// byteFrame is a frame fed one byte at a time, each at a time that names
// its position, so At tells where the frame ended.
type byteFrame struct {
	data string
	over bool
	end  int // index of the frame's last byte in the stream
}

// feedBytes is the reference: the stream fed one byte per call.
func feedBytes(suffix string, max int, stream []byte) (frames []byteFrame, pending string) {
	t0 := time.Unix(0, 0)
	f := NewFramer([]byte(suffix), time.Second, max)
	for i := range stream {
		for _, fr := range f.Feed(stream[i:i+1], t0.Add(time.Duration(i))) {
			frames = append(frames, byteFrame{string(fr.Data), fr.Overflow, int(fr.At.Sub(t0))})
		}
	}
	if fr, ok := f.Idle(t0.Add(time.Hour)); ok {
		pending = string(fr.Data)
	}
	return frames, pending
}

// checkChunked feeds the stream cut at cuts (increasing offsets), chunk k
// at time k ms, and compares with the byte-at-a-time reference: the same
// frames, each timed by the chunk holding its last byte, and the same
// partial frame left.
func checkChunked(t *testing.T, suffix string, max int, stream []byte, cuts []int) {
	t.Helper()
	want, wantPending := feedBytes(suffix, max, stream)
	t0 := time.Unix(0, 0)
	chunkOf := func(i int) int { // index of the chunk holding byte i: cuts at or before it
		k, _ := slices.BinarySearch(cuts, i+1)
		return k
	}
	f := NewFramer([]byte(suffix), time.Second, max)
	var got []Frame
	prev := 0
	for k, c := range append(append([]int(nil), cuts...), len(stream)) {
		got = append(got, f.Feed(stream[prev:c], t0.Add(time.Duration(k)*time.Millisecond))...)
		prev = c
	}
	var pending string
	if fr, ok := f.Idle(t0.Add(time.Hour)); ok {
		pending = string(fr.Data)
	}
	if len(got) != len(want) {
		t.Fatalf("suffix %q max %d stream %q cuts %v: %d frames, byte-wise %d", suffix, max, stream, cuts, len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		wantAt := t0.Add(time.Duration(chunkOf(w.end)) * time.Millisecond)
		if string(g.Data) != w.data || g.Overflow != w.over || !g.At.Equal(wantAt) {
			t.Fatalf("suffix %q max %d stream %q cuts %v: frame %d = %q over=%v at %v, byte-wise %q over=%v at %v",
				suffix, max, stream, cuts, i, g.Data, g.Overflow, g.At.Sub(t0), w.data, w.over, wantAt.Sub(t0))
		}
	}
	if pending != wantPending {
		t.Fatalf("suffix %q max %d stream %q cuts %v: pending %q, byte-wise %q", suffix, max, stream, cuts, pending, wantPending)
	}
}

// TestFramerChunkings cuts each stream into two and three chunks at every
// possible pair of positions: the frames never depend on the chunking.
func TestFramerChunkings(t *testing.T) {
	tests := []struct {
		suffix, stream string
		max            int
		want           []string // byte-wise frames, to pin the reference
	}{
		{"\r", "C7DA29345B6D\r", 0, []string{"C7DA29345B6D"}},
		{"\r", "a\rbb\rccc\rdd", 0, []string{"a", "bb", "ccc"}},
		{"\n", "\n\nx\ny", 0, []string{"x"}},
		{"\r\n", "ab\r\ncd\r\n\r\nef\rg\r\n", 0, []string{"ab", "cd", "ef\rg"}},
		{"\r\n", "a\r\r\nb\n\r\n", 0, []string{"a\r", "b\n"}},
		{"\x03\x04", "12\x03\x0434\x03\x035\x03\x04", 0, []string{"12", "34\x03\x035"}},
		{"\r", "abcdefgh\rxy\rz", 4, []string{"abcd", "efgh", "xy"}},
		{"\r\n", "abcdef\r\nxyz\r\n", 3, []string{"abc", "def", "xyz"}},
		{"", "no suffix at all", 5, []string{"no su", "ffix ", "at al"}},
	}
	for _, tt := range tests {
		stream := []byte(tt.stream)
		frames, _ := feedBytes(tt.suffix, tt.max, stream)
		var data []string
		for _, f := range frames {
			data = append(data, f.data)
		}
		if !slices.Equal(data, tt.want) {
			t.Fatalf("suffix %q stream %q: byte-wise frames %q, want %q", tt.suffix, tt.stream, data, tt.want)
		}
		for i := 0; i <= len(stream); i++ {
			checkChunked(t, tt.suffix, tt.max, stream, []int{i})
			for j := i; j <= len(stream); j++ {
				checkChunked(t, tt.suffix, tt.max, stream, []int{i, j})
			}
		}
	}
}

// FuzzFramer: whatever the chunking, every suffix (none, one byte, two
// bytes that may overlap, four bytes) and max frame length, the framer
// yields the frames, times and partial frame of feeding one byte at a time;
// and no frame exceeds max.
func FuzzFramer(f *testing.F) {
	f.Add([]byte("abc\rdef\r"), []byte{3}, uint8(0), uint8(16))
	f.Add([]byte("\r\r\rxx"), []byte{1}, uint8(0), uint8(16))
	f.Add([]byte("ab\r\ncd\r\r\nef"), []byte{3, 1, 1, 4}, uint8(2), uint8(4))
	f.Add([]byte("12\x03\x0434\x03\x03\x04"), []byte{2, 0, 5}, uint8(3), uint8(8))
	suffixes := []string{"\r", "\n", "\r\n", "\x03\x04", "", "\r\r", "ab\x00a"}
	f.Fuzz(func(t *testing.T, stream []byte, sizes []byte, suffix, maxLen uint8) {
		sfx := suffixes[int(suffix)%len(suffixes)]
		mx := 1 + int(maxLen)%32
		// Cut the stream into chunks of the given sizes, in turn.
		var cuts []int
		for i, at := 0, 0; len(sizes) > 0; i++ {
			at += int(sizes[i%len(sizes)])
			if at >= len(stream) || i > len(stream) {
				break
			}
			cuts = append(cuts, at)
		}
		checkChunked(t, sfx, mx, stream, cuts)
		frames, _ := feedBytes(sfx, mx, stream)
		for _, fr := range frames {
			if len(fr.data) > mx {
				t.Fatalf("frame of %d bytes, max %d", len(fr.data), mx)
			}
		}
	})
}
