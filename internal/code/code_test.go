package code

import (
	"strings"
	"testing"
	"time"

	"scanagent/internal/card"
)

const (
	staticID  = "C7DA29340C1A4C2B9F6E0A12B34C5D6E1F2A3B4C5D6E7F8091A2B3C4D5E6F708"
	dynID     = "D109C4C3B1E94A7F8E6D5C4B3A291807F6E5D4C3B2A1908172635445362718A9"
	dynToken  = "B0E3CC5F50EF5DC663F094C985B58312"
	dynamic   = dynID + ":0:" + dynToken + "::35020001001"
	goodID    = "432901198810228888"
	skmURL    = "https://jsstm.jszwfw.gov.cn/jkm/2?t=ABCDEF0123456789"
	hospCard  = "HC0012345678"
	hospRegex = `^HC[0-9]{10}$`
)

// guideDynamic is the dynamic code of the guide's getDynamicQRCode example,
// as printed (one line).
const guideDynamic = "D109C4C340995DFC13262A55699FBDAD8S564E8B65796FA1:0:BOE3CC5F50EF5DC663F094C985B58312::35020001001"

func TestParse(t *testing.T) {
	p, err := NewParser(Options{Custom: []CustomType{
		{Name: "hospital_card", Pattern: hospRegex},
		{Name: "legacy_id", Pattern: `^9[0-9]{17}$`},
	}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		in     string
		want   card.Code
		reason card.Reason
	}{
		{name: "static", in: staticID + ":1", want: card.Code{Kind: card.KindEHCStatic, Text: staticID + ":1", CardID: staticID}},
		{name: "static 32 lower", in: strings.ToLower(staticID[:32]) + ":1", want: card.Code{Kind: card.KindEHCStatic, Text: strings.ToLower(staticID[:32]) + ":1", CardID: strings.ToLower(staticID[:32])}},
		{name: "static 48", in: staticID[:48] + ":1", want: card.Code{Kind: card.KindEHCStatic, Text: staticID[:48] + ":1", CardID: staticID[:48]}},
		{name: "static with org", in: staticID + ":1::35020001001", want: card.Code{Kind: card.KindEHCStatic, Text: staticID + ":1::35020001001", CardID: staticID, OrgCode: "35020001001"}},
		{name: "static CRLF", in: staticID + ":1\r\n", want: card.Code{Kind: card.KindEHCStatic, Text: staticID + ":1", CardID: staticID}},
		{name: "static NUL TAB", in: "\x00\t" + staticID + ":1\x00", want: card.Code{Kind: card.KindEHCStatic, Text: staticID + ":1", CardID: staticID}},
		{name: "static AIM", in: "]Q1" + staticID + ":1\r", want: card.Code{Kind: card.KindEHCStatic, Text: staticID + ":1", CardID: staticID, Symbology: "]Q1"}},
		{name: "static fullwidth colon", in: staticID + "：1", want: card.Code{Kind: card.KindEHCStatic, Text: staticID + ":1", CardID: staticID}},
		{name: "dynamic", in: dynamic, want: card.Code{Kind: card.KindEHCDynamic, Text: dynamic, CardID: dynID, OrgCode: "35020001001"}},
		{name: "dynamic fullwidth", in: strings.ReplaceAll(dynamic, ":", "："), want: card.Code{Kind: card.KindEHCDynamic, Text: dynamic, CardID: dynID, OrgCode: "35020001001"}},
		{name: "dynamic AIM d2", in: "]d2" + dynamic + "\n", want: card.Code{Kind: card.KindEHCDynamic, Text: dynamic, CardID: dynID, OrgCode: "35020001001", Symbology: "]d2"}},
		// The guide's own example (§3.2.10's getDynamicQRCode answer) has an
		// S in the card id and an O in the token: the guide states no
		// alphabet, so letters are accepted and the platform judges.
		{name: "dynamic, the guide's example", in: guideDynamic, want: card.Code{Kind: card.KindEHCDynamic, Text: guideDynamic, CardID: "D109C4C340995DFC13262A55699FBDAD8S564E8B65796FA1", OrgCode: "35020001001"}},
		{name: "id 18", in: goodID, want: card.Code{Kind: card.KindIDCard, IDNumber: goodID}},
		{name: "id lower x", in: "11010519491231002x", want: card.Code{Kind: card.KindIDCard, IDNumber: "11010519491231002X"}},
		{name: "id 15", in: "432901881022888", want: card.Code{Kind: card.KindIDCard, IDNumber: "432901881022888"}},
		{name: "skm", in: skmURL, want: card.Code{Kind: card.KindSKM, Text: skmURL}},
		{name: "skm apex host", in: "https://jszwfw.gov.cn/x?c=1", want: card.Code{Kind: card.KindSKM, Text: "https://jszwfw.gov.cn/x?c=1"}},
		{name: "custom", in: hospCard + "\r", want: card.Code{Kind: card.KindCustom, Type: "hospital_card", Text: hospCard}},
		{name: "custom rescues bad checksum", in: "901102199809089988", want: card.Code{Kind: card.KindCustom, Type: "legacy_id", Text: "901102199809089988"}},

		{name: "empty", in: "", reason: card.ReasonEmpty},
		{name: "only CRLF", in: "\r\n\x00", reason: card.ReasonEmpty},
		{name: "too long", in: strings.Repeat("A", MaxLen+1), reason: card.ReasonTooLong},
		{name: "binary", in: "\xff\xfe\x01abc", reason: card.ReasonBinary},
		{name: "control inside", in: "abc\x07def", reason: card.ReasonBinary},
		{name: "guide example id fails checksum", in: "101102199809089988", reason: card.ReasonBadChecksum},
		{name: "id bad date", in: "432901198813228883", reason: card.ReasonBadShape},
		{name: "static redacted XXX", in: "C7DA2934121XXX:1", reason: card.ReasonBadShape},
		{name: "static short id", in: "C7DA2934:1", reason: card.ReasonBadShape},
		{name: "dynamic short token", in: dynID + ":0:B0E3::35020001001", reason: card.ReasonBadShape},
		{name: "dynamic no org", in: dynID + ":0:" + dynToken + "::", reason: card.ReasonBadShape},
		{name: "version 2", in: staticID + ":2", reason: card.ReasonBadShape},
		{name: "skm http", in: "http://jsstm.jszwfw.gov.cn/jkm/2?t=1", reason: card.ReasonBadShape},
		{name: "skm no query", in: "https://jsstm.jszwfw.gov.cn/jkm/2", reason: card.ReasonBadShape},
		{name: "lookalike host", in: "https://jszwfw.gov.cn.evil.example/x?t=1", reason: card.ReasonUnknown},
		{name: "other url", in: "https://example.com/?a=1", reason: card.ReasonUnknown},
		{name: "garbage", in: "hello world", reason: card.ReasonUnknown},
		{name: "16 digits", in: "1234567890123456", reason: card.ReasonUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.Parse([]byte(tt.in))
			if tt.reason != "" {
				r, ok := card.IsRejected(err)
				if !ok {
					t.Fatalf("Parse = %+v, %v; want rejection %s", got, err, tt.reason)
				}
				if r.Reason != tt.reason {
					t.Fatalf("reason = %s (%s), want %s", r.Reason, r.Detail, tt.reason)
				}
				if len(tt.in) > 8 && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
					t.Fatalf("rejection message leaks the payload: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got != tt.want {
				t.Fatalf("Parse =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestBuiltinOnlyRejectsBadChecksum(t *testing.T) {
	p, _ := NewParser(Options{})
	if _, err := p.Parse([]byte("901102199809089988")); err == nil {
		t.Fatal("ID-shaped number with a bad check digit accepted without a custom type")
	}
}

func TestNewParserBadPattern(t *testing.T) {
	_, err := NewParser(Options{Custom: []CustomType{{Name: "x", Pattern: "("}}})
	if err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Fatalf("err = %v, want one naming the type", err)
	}
}

func TestCheckIDNumberAllCheckDigits(t *testing.T) {
	// For a fixed 17-digit body exactly one of the 11 check characters is valid.
	body := "11010519491231002"
	valid := 0
	for _, c := range "0123456789X" {
		if _, err := CheckIDNumber(body + string(c)); err == nil {
			valid++
		}
	}
	if valid != 1 {
		t.Fatalf("%d check characters accepted, want 1", valid)
	}
}

func TestValidDate(t *testing.T) {
	for d, want := range map[string]bool{
		"20000229": true, "19000229": false, "20240229": true, "20230229": false,
		"19881022": true, "19881301": false, "19880100": false, "19880431": false, "18000101": false,
	} {
		if got := validDate(d); got != want {
			t.Errorf("validDate(%s) = %v", d, got)
		}
	}
}

func TestDebouncer(t *testing.T) {
	d := NewDebouncer(2 * time.Second)
	t0 := time.Unix(1000, 0)
	steps := []struct {
		src, payload string
		at           time.Duration
		repeat       bool
	}{
		{"a", "x", 0, false},
		{"a", "x", 200 * time.Millisecond, true},
		{"b", "x", 300 * time.Millisecond, false}, // other source
		{"a", "y", 400 * time.Millisecond, false}, // other payload
		{"a", "x", 2100 * time.Millisecond, true}, // held: window extends from last sighting
		{"a", "x", 4200 * time.Millisecond, false},
		{"a", "x", 9 * time.Second, false},
	}
	for i, s := range steps {
		if got := d.Repeat(s.src, []byte(s.payload), t0.Add(s.at)); got != s.repeat {
			t.Fatalf("step %d: Repeat = %v, want %v", i, got, s.repeat)
		}
	}
	if n := len(d.seen); n > 2 {
		t.Fatalf("old entries not swept: %d", n)
	}
	off := NewDebouncer(0)
	first := off.Repeat("a", []byte("x"), t0)
	if second := off.Repeat("a", []byte("x"), t0); first || second {
		t.Fatal("disabled debouncer suppressed a scan")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{staticID + ":1", dynamic, goodID, skmURL, hospCard, "]Q1" + staticID + "：1\r\n", "\xff", ""} {
		f.Add([]byte(s))
	}
	p, err := NewParser(Options{Custom: []CustomType{{Name: "hospital_card", Pattern: hospRegex}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := p.Parse(raw)
		if err != nil {
			if _, ok := card.IsRejected(err); !ok {
				t.Fatalf("error is not a rejection: %v", err)
			}
			return
		}
		switch c.Kind {
		case card.KindEHCStatic, card.KindEHCDynamic:
			if !strings.HasPrefix(c.Text, c.CardID+":") || c.CardID == "" {
				t.Fatalf("inconsistent EHC code %+v", c)
			}
		case card.KindIDCard:
			if _, err := CheckIDNumber(c.IDNumber); err != nil {
				t.Fatalf("accepted ID %q fails its own check", c.IDNumber)
			}
		case card.KindSKM, card.KindCustom:
			if c.Text == "" {
				t.Fatal("empty text")
			}
		default:
			t.Fatalf("unknown kind %q", c.Kind)
		}
		// Parsing the normalised form again is stable.
		if c.Text != "" {
			again, err := p.Parse([]byte(c.Text))
			if err != nil || again.Kind != c.Kind || again.Text != c.Text {
				t.Fatalf("not idempotent: %+v then %+v, %v", c, again, err)
			}
		}
	})
}
