package fleet

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// valid is a heartbeat body as a terminal sends it.
const valid = `{"campus":"东院","version":"1.4.0","health":"degraded","reasons":["queue_backlog","dead_letters"],
"scanners":[{"name":"counter","connected":true,"since":"2026-11-23T07:30:12+08:00","scans":212,"reconnects":1}],
"queue":{"depth":12,"dead":1,"oldestPendingSeconds":420},"lastScan":"2026-11-23T10:24:51+08:00",
"lastError":"12 reports queued","lastErrorAt":"2026-11-23T10:24:51+08:00"}`

// with returns valid with one field replaced (raw JSON).
func with(field, raw string) string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(valid), &m); err != nil {
		panic(err)
	}
	m[field] = json.RawMessage(raw)
	b, _ := json.Marshal(m)
	return string(b)
}

func TestDecode(t *testing.T) {
	scanners := func(n int) string {
		return "[" + strings.TrimSuffix(strings.Repeat(`{"name":"s"},`, n), ",") + "]"
	}
	tests := []struct {
		name, body string
		want       string // "" = accepted; else a part of the error
	}{
		{"valid", valid, ""},
		{"minimal", `{"health":"ok"}`, ""},
		{"unknown fields ignored", with("future", `{"x":1}`), ""},
		{"terminal in the body ignored", with("terminal", `"spoofed"`), ""},
		{"every level", with("health", `"unconfigured"`), ""},
		{"not json", `health=ok`, "invalid character"},
		{"empty", ``, "EOF"},
		{"array", `[]`, "cannot unmarshal array"},
		{"two objects", `{"health":"ok"} {"health":"ok"}`, "data after the object"},
		{"trailing garbage", `{"health":"ok"}x`, "data after the object"},
		{"no health", `{"version":"1"}`, "health must be one of"},
		{"bad health", with("health", `"green"`), "health must be one of"},
		{"wrong type", with("queue", `{"depth":"many"}`), "cannot unmarshal string"},
		{"negative depth", with("queue", `{"depth":-1}`), "queue counts"},
		{"huge dead", with("queue", `{"dead":1099511627777}`), "queue counts"},
		{"long campus", with("campus", `"`+strings.Repeat("院", MaxName+1)+`"`), "campus is longer than 64"},
		{"campus of 64 CJK", with("campus", `"`+strings.Repeat("院", MaxName)+`"`), ""},
		{"control in version", with("version", `"1.4\u0000"`), "version holds a control character"},
		{"line break in campus", with("campus", `"a\nb"`), "campus holds a control character"},
		{"line break in error", with("lastError", `"a\nb"`), ""},
		{"long error", with("lastError", `"`+strings.Repeat("x", MaxText+1)+`"`), "lastError is longer than 256"},
		{"bad reason", with("reasons", `["Queue Backlog"]`), "is not a reason code"},
		{"too many reasons", with("reasons", `[`+strings.TrimSuffix(strings.Repeat(`"a",`, MaxReasons+1), ",")+`]`), "at most 16 reasons"},
		{"too many scanners", with("scanners", scanners(MaxScanners+1)), "at most 16 scanners"},
		{"16 scanners", with("scanners", scanners(MaxScanners)), ""},
		{"unnamed scanner", with("scanners", `[{"connected":true}]`), "scanners[0].name"},
		{"negative scans", with("scanners", `[{"name":"a","scans":-5}]`), "scanners[0]: counts"},
		{"ancient scan", with("lastScan", `"1970-01-01T00:00:00Z"`), "lastScan and lastErrorAt"},
		{"bad time", with("lastScan", `"yesterday"`), "cannot parse"},
		{"too large", `{"health":"ok","campus":"` + strings.Repeat(" ", MaxBody) + `"}`, "bytes, at most"},
		{"invalid utf8", "{\"health\":\"ok\",\"campus\":\"\xff\"}", ""}, // JSON turns it into U+FFFD
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := Decode([]byte(tt.body))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err = %v, want ErrInvalid with %q", err, tt.want)
			case err == nil && h.Terminal != "":
				t.Fatalf("terminal %q taken from the body", h.Terminal)
			}
		})
	}
}

// The gateway masks what a terminal should have masked.
func TestDecodeMasks(t *testing.T) {
	h, err := Decode([]byte(with("lastError", `"card 432901198810228888 refused, phone 18812342012, token terminal-token-0123456789"`)))
	if err != nil {
		t.Fatal(err)
	}
	if want := "card 4329**********8888 refused, phone 188****2012, token termin***************6789"; h.LastError != want {
		t.Fatalf("lastError = %q, want %q", h.LastError, want)
	}
	h, err = Decode([]byte(with("scanners", `[{"name":"a","lastError":"read D109C4C340995DFC:1"}]`)))
	if err != nil || h.Scanners[0].LastError != "read D109C4******5DFC:1" {
		t.Fatalf("scanner lastError = %+v %v", h.Scanners, err)
	}
}

// A terminal's Clip makes any heartbeat one the gateway accepts, and the
// largest possible one fits in MaxBody.
func TestClipFitsTheBounds(t *testing.T) {
	long := strings.Repeat("<&\x00龙", 400) + "432901198810228888"
	h := Heartbeat{Terminal: strings.Repeat("t", MaxName), Campus: long, Version: long, Health: HealthCritical, LastError: long,
		Queue: Queue{Depth: -3, Dead: 1 << 50, OldestPendingSeconds: 1 << 60}, LastScan: time.Now(), LastErrorAt: time.Now()}
	for range 3 * MaxScanners {
		h.Scanners = append(h.Scanners, Scanner{Name: long, LastError: long, Since: time.Now(), Scans: -1, Reconnects: 1 << 62})
	}
	for range 3 * MaxReasons {
		h.Reasons = append(h.Reasons, strings.Repeat("r", MaxName))
	}
	h.Clip()
	if err := h.Validate(); err != nil {
		t.Fatalf("clipped heartbeat refused: %v", err)
	}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxBody {
		t.Fatalf("the largest clipped heartbeat is %d bytes, more than MaxBody %d", len(b), MaxBody)
	}
	if _, err := Decode(b); err != nil {
		t.Fatalf("the gateway refuses a clipped heartbeat: %v", err)
	}
	if utf8.RuneCountInString(h.LastError) != MaxText || strings.Contains(string(b), "432901198810228888") {
		t.Fatalf("lastError not cut or not masked: %q", h.LastError)
	}
}

// FuzzDecode: whatever a terminal sends, Decode returns a heartbeat within
// the bounds or ErrInvalid, never panics, and what it returns encodes
// within MaxBody and decodes to itself.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{valid, `{"health":"ok"}`, `{}`, `[]`, `null`, `{"health":"ok","scanners":[{"name":"a"}]}`,
		with("lastError", `"id 432901198810228888"`), with("queue", `{"depth":1e99}`), "{\"health\":\"ok\",\"campus\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		if err := h.Validate(); err != nil {
			t.Fatalf("decoded heartbeat out of bounds: %v", err)
		}
		out, err := json.Marshal(h)
		if err != nil || len(out) > MaxBody {
			t.Fatalf("re-encoded: %d bytes, %v", len(out), err)
		}
		again, err := Decode(out)
		if err != nil {
			t.Fatalf("re-decoded: %v\n%s", err, out)
		}
		if a, b := mustJSON(again), string(out); a != b {
			t.Fatalf("not stable:\n%s\n%s", a, b)
		}
	})
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
