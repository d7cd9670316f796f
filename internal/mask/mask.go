// Package mask hides personal data and secrets before they reach a log line,
// a status page or a CLI listing. Every function is pure and total: it never
// panics and never returns more of its input than the documented shape.
package mask

import (
	"strings"
	"unicode/utf8"
)

// ID masks an identity-document number, keeping the first 4 and last 4
// characters: 432901198810228888 → 4329**********8888. Inputs of 8 runes or
// fewer are masked completely.
func ID(s string) string { return keepEnds(s, 4, 4) }

// Phone masks a phone number, keeping the first 3 and last 4 characters:
// 18812342012 → 188****2012.
func Phone(s string) string { return keepEnds(s, 3, 4) }

// QR masks a QR or barcode payload, keeping the first 6 and last 4
// characters.
func QR(s string) string { return keepEnds(s, 6, 4) }

// Name masks a personal name: one rune → *, two runes → first + *, longer →
// first + stars + last (龙小英 → 龙*英).
func Name(s string) string {
	r := []rune(s)
	switch len(r) {
	case 0:
		return ""
	case 1:
		return "*"
	case 2:
		return string(r[0]) + "*"
	default:
		return string(r[0]) + strings.Repeat("*", len(r)-2) + string(r[len(r)-1])
	}
}

// Secret replaces a secret or token entirely, saying only whether it is set.
func Secret(s string) string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

func keepEnds(s string, head, tail int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	r := []rune(s)
	n := len(r)
	if n == 0 {
		return ""
	}
	if n <= head+tail {
		return strings.Repeat("*", n)
	}
	return string(r[:head]) + strings.Repeat("*", n-head-tail) + string(r[n-tail:])
}
