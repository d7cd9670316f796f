package mask

import (
	"testing"
	"unicode/utf8"
)

func TestMask(t *testing.T) {
	tests := []struct {
		name string
		fn   func(string) string
		in   string
		want string
	}{
		{"id18", ID, "432901198810228888", "4329**********8888"},
		{"id15", ID, "432901881022888", "4329*******2888"},
		{"id short", ID, "12345678", "********"},
		{"id empty", ID, "", ""},
		{"phone", Phone, "18812342012", "188****2012"},
		{"phone short", Phone, "12345", "*****"},
		{"name3", Name, "龙小英", "龙*英"},
		{"name2", Name, "龙英", "龙*"},
		{"name1", Name, "龙", "*"},
		{"name4", Name, "欧阳小英", "欧**英"},
		{"name latin", Name, "Alice", "A***e"},
		{"qr", QR, "C7DA29340C1A4C2B9F6E0A12B34C5D6E:1", "C7DA29************************6E:1"},
		{"qr short", QR, "abc", "***"},
		{"secret", Secret, "8c8e763f443ef983ac33aef1c7085cfb", "[redacted]"},
		{"secret empty", Secret, "", ""},
		{"invalid utf8", ID, "\xff\xfe1234567890", "?123***7890"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.fn(tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzMask(f *testing.F) {
	f.Add("432901198810228888")
	f.Add("龙小英")
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		n := utf8.RuneCountInString(s)
		for _, c := range []struct {
			fn         func(string) string
			head, tail int
		}{{ID, 4, 4}, {Phone, 3, 4}, {QR, 6, 4}, {Name, 1, 1}} {
			out := []rune(c.fn(s))
			if len(out) != n {
				t.Fatalf("length changed: %q → %q", s, string(out))
			}
			if n > c.head+c.tail {
				for _, r := range out[c.head : n-c.tail] {
					if r != '*' {
						t.Fatalf("middle not masked: %q → %q", s, string(out))
					}
				}
			}
		}
	})
}

func TestText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"open /dev/ttyUSB0: no such file or directory", "open /dev/ttyUSB0: no such file or directory"},
		{"id 432901198810228888 refused", "id 4329**********8888 refused"},
		{"id=11010519491231002X", "id=1101**********002X"},
		{"old id 432901881022888.", "old id 4329*******2888."},
		{"phone 18812342012", "phone 188****2012"},
		{"code D109C4C340995DFC:1 invalid", "code D109C4******5DFC:1 invalid"},
		{"Bearer terminal-token-0123456789", "Bearer termin***************6789"},
		{"card 6222021234567890123", "card 622202*********0123"},
		{"reportHISData: platform error -10019 二维码无效 (rejected)", "reportHISData: platform error -10019 二维码无效 (rejected)"},
		{"Post \"http://10.0.0.1:8471/v1/verify\": dial tcp 10.0.0.1:8471: connect: connection refused",
			"Post \"http://10.0.0.1:8471/v1/verify\": dial tcp 10.0.0.1:8471: connect: connection refused"},
		{"platform_unreachable_for_a_long_time", "platform_unreachable_for_a_long_time"},
		{"龙*英 4329**********8888", "龙*英 4329**********8888"},
		{"bad \xff utf8 432901198810228888", "bad ? utf8 4329**********8888"},
	}
	for _, tt := range tests {
		got := Text(tt.in)
		if got != tt.want {
			t.Errorf("Text(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if again := Text(got); again != got {
			t.Errorf("Text(%q) twice = %q, want it unchanged", tt.in, again)
		}
	}
}
