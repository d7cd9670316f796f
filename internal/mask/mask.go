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

// Text masks what looks like personal data or a secret in free text (an
// error message, a reason): every run of letters, digits, '_', '+' and '-'
// that is an ID number (18 or 15 characters) is masked as ID, a mobile
// number as Phone, and any other run of 16 or more that holds a digit (a
// code payload, a token, a card number) as QR. Names cannot be told from
// words, so text must never carry one unmasked. Masked text is left as it
// is: a second pass changes nothing.
func Text(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	var b strings.Builder
	start := -1
	flush := func(end int) {
		if start >= 0 {
			b.WriteString(maskRun(s[start:end]))
			start = -1
		}
	}
	for i, r := range s {
		if isRunChar(r) {
			if start < 0 {
				start = i
			}
			continue
		}
		flush(i)
		b.WriteRune(r)
	}
	flush(len(s))
	return b.String()
}

func isRunChar(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' || r == '+' || r == '-'
}

// maskRun masks one run of Text.
func maskRun(run string) string {
	digits := 0
	for i := 0; i < len(run); i++ {
		if run[i] >= '0' && run[i] <= '9' {
			digits++
		}
	}
	n := len(run) // ASCII only
	switch {
	case digits == 0:
		return run
	case n == 18 && digits >= 17 && (digits == 18 || run[17] == 'X' || run[17] == 'x'), n == 15 && digits == 15:
		return ID(run)
	case n == 11 && digits == 11 && run[0] == '1':
		return Phone(run)
	case n >= 16:
		return QR(run)
	}
	return run
}
