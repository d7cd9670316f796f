package scanner

import (
	"bufio"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readReports(t testing.TB, name string) [][]byte {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		b, err := hex.DecodeString(strings.TrimSpace(sc.Text()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestHIDDecoderCaptured(t *testing.T) {
	exp, err := os.ReadFile("testdata/expected.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(exp)), "\n") {
		parts := strings.Fields(line)
		file, layout, want := parts[0], Layout(parts[1]), parts[2]
		t.Run(file, func(t *testing.T) {
			d := NewHIDDecoder(layout, 4096)
			reports := readReports(t, file)
			for i, r := range reports {
				got, done, err := d.Feed(r)
				if err != nil {
					t.Fatal(err)
				}
				if last := i == len(reports)-1; done != last {
					t.Fatalf("report %d: done = %v", i, done)
				}
				if done && string(got) != want {
					t.Fatalf("got %q, want %q", got, want)
				}
			}
		})
	}
}

func TestHIDDecoderWrongLayoutAndBadReports(t *testing.T) {
	r := readReports(t, "honeywell_id.hex")[0]
	// Decoded with the Newland layout, a Honeywell report yields the AIM
	// prefix and misses the tail: layouts really differ.
	got, _, _ := NewHIDDecoder(LayoutNewland, 0).Feed(r)
	if string(got) == "432901198810228888" {
		t.Fatal("layouts indistinguishable")
	}
	bad := map[string][]byte{
		"short":     r[:10],
		"report id": append([]byte{0x01}, r[1:]...),
		"length":    append([]byte{0x02, 60}, r[2:]...),
	}
	for name, b := range bad {
		_, _, err := NewHIDDecoder(LayoutHoneywell, 0).Feed(b)
		if !errors.Is(err, ErrBadReport) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	// A bad report in the middle discards the partial scan.
	d := NewHIDDecoder(LayoutHoneywell, 0)
	st := readReports(t, "honeywell_static.hex")
	d.Feed(st[0])
	d.Feed(r[:10])
	got, done, err := d.Feed(st[1])
	if err != nil || !done || len(got) != 10 {
		t.Fatalf("after a bad report: %q %v %v", got, done, err)
	}
	// Overlong assembled scans are refused.
	d = NewHIDDecoder(LayoutHoneywell, 60)
	d.Feed(st[0])
	if _, _, err := d.Feed(st[0]); err == nil {
		t.Fatal("overlong scan accepted")
	}
}

func TestLayoutFor(t *testing.T) {
	if l, err := LayoutFor("auto", 0x0c2e); err != nil || l != LayoutHoneywell {
		t.Fatal(l, err)
	}
	if l, err := LayoutFor("auto", 0x1eab); err != nil || l != LayoutNewland {
		t.Fatal(l, err)
	}
	if _, err := LayoutFor("auto", 0x05e0); err == nil {
		t.Fatal("unknown vendor accepted")
	}
	if l, _ := LayoutFor("newland", 0x0c2e); l != LayoutNewland {
		t.Fatal("configured layout ignored")
	}
}

func fuzzHID(f *testing.F, l Layout) {
	for _, file := range []string{"honeywell_static.hex", "newland_dynamic.hex"} {
		for _, r := range readReports(f, file) {
			f.Add(r)
		}
	}
	f.Fuzz(func(t *testing.T, r []byte) {
		d := NewHIDDecoder(l, 100)
		for i := 0; i < 3; i++ {
			got, _, err := d.Feed(r)
			if err == nil && len(got) > 100 {
				t.Fatalf("scan of %d bytes exceeds max", len(got))
			}
		}
	})
}

func FuzzHoneywell(f *testing.F) { fuzzHID(f, LayoutHoneywell) }
func FuzzNewland(f *testing.F)   { fuzzHID(f, LayoutNewland) }
