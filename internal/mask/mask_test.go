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
