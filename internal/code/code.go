// Package code turns the raw bytes a scanner delivers into a typed code: an
// e-Health Card static or dynamic QR code, a Su Kang Code URL, a resident ID
// card number, or a hospital-defined custom type. It is pure: no I/O, no
// logging, no clock except the one handed to the Debouncer.
package code

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"scanagent/internal/card"
)

// MaxLen is the longest raw payload accepted, in bytes.
const MaxLen = 4096

func reject(r card.Reason, format string, args ...any) error {
	return &card.RejectedError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// CustomType is a hospital-defined code type matched by a regular expression
// over the normalised payload.
type CustomType struct {
	Name    string
	Pattern string
}

// Options configures a Parser.
type Options struct {
	// Custom types are tried, in order, after every built-in kind failed.
	Custom []CustomType
	// SKMHosts are the host names (and their subdomains) whose https URLs
	// are Su Kang Codes. Defaults to jszwfw.gov.cn.
	SKMHosts []string
}

// DefaultSKMHosts are the hosts of Su Kang Code URLs.
var DefaultSKMHosts = []string{"jszwfw.gov.cn"}

type customType struct {
	name string
	re   *regexp.Regexp
}

// Parser recognises payloads. It is safe for concurrent use.
type Parser struct {
	custom   []customType
	skmHosts []string
}

// NewParser compiles opts. Invalid custom patterns are errors naming the type.
func NewParser(opts Options) (*Parser, error) {
	p := &Parser{skmHosts: opts.SKMHosts}
	if len(p.skmHosts) == 0 {
		p.skmHosts = DefaultSKMHosts
	}
	for i, c := range opts.Custom {
		if c.Name == "" {
			return nil, fmt.Errorf("custom type %d: empty name", i)
		}
		re, err := regexp.Compile(c.Pattern)
		if err != nil {
			return nil, fmt.Errorf("custom type %q: %w", c.Name, err)
		}
		p.custom = append(p.custom, customType{name: c.Name, re: re})
	}
	return p, nil
}

var (
	reStatic  = regexp.MustCompile(`^([0-9A-Za-z]{32,64}):1(?:::([0-9A-Za-z_-]{1,64}))?$`)
	reDynamic = regexp.MustCompile(`^([0-9A-Za-z]{32,64}):0:([0-9A-Za-z]{32}):([0-9A-Za-z]{0,64}):([0-9A-Za-z_-]{1,64})$`)
	reAIM     = regexp.MustCompile(`^\][A-Za-z][0-9A-Za-z]`)
	reDigits  = regexp.MustCompile(`^[0-9]{17}[0-9Xx]$|^[0-9]{15}$`)
)

// Normalize trims CR/LF/TAB/NUL and spaces, strips an AIM symbology prefix
// (]Q1, ]d2, ...) and turns full-width colons into ASCII colons. It returns
// the payload and the stripped symbology identifier.
func Normalize(raw []byte) (payload, symbology string) {
	s := strings.Trim(string(raw), "\r\n\t\x00 ")
	if m := reAIM.FindString(s); m != "" {
		symbology, s = m, s[len(m):]
	}
	s = strings.ReplaceAll(s, "：", ":")
	return strings.Trim(s, "\r\n\t\x00 "), symbology
}

// Parse recognises raw. Errors are *card.RejectedError.
func (p *Parser) Parse(raw []byte) (card.Code, error) {
	if len(raw) > MaxLen {
		return card.Code{}, reject(card.ReasonTooLong, "payload is %d bytes, limit %d", len(raw), MaxLen)
	}
	s, sym := Normalize(raw)
	if s == "" {
		return card.Code{}, reject(card.ReasonEmpty, "empty payload")
	}
	if !utf8.ValidString(s) {
		return card.Code{}, reject(card.ReasonBinary, "payload is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return card.Code{}, reject(card.ReasonBinary, "payload contains control character U+%04X", r)
		}
	}
	c, err := p.builtin(s)
	if err != nil {
		for _, ct := range p.custom {
			if ct.re.MatchString(s) {
				return card.Code{Kind: card.KindCustom, Type: ct.name, Text: s, Symbology: sym}, nil
			}
		}
		return card.Code{}, err
	}
	c.Symbology = sym
	return c, nil
}

func (p *Parser) builtin(s string) (card.Code, error) {
	if m := reStatic.FindStringSubmatch(s); m != nil {
		return card.Code{Kind: card.KindEHCStatic, Text: s, CardID: m[1], OrgCode: m[2]}, nil
	}
	if m := reDynamic.FindStringSubmatch(s); m != nil {
		return card.Code{Kind: card.KindEHCDynamic, Text: s, CardID: m[1], OrgCode: m[4]}, nil
	}
	if strings.Contains(s, ":") && !strings.Contains(s, "://") {
		return card.Code{}, reject(card.ReasonBadShape, "colon-separated payload is neither a static (id:1) nor a dynamic (id:0:token::org) e-Health Card code")
	}
	if reDigits.MatchString(s) {
		id, err := CheckIDNumber(s)
		if err != nil {
			return card.Code{}, err
		}
		return card.Code{Kind: card.KindIDCard, IDNumber: id}, nil
	}
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		if !p.isSKMHost(u.Hostname()) {
			return card.Code{}, reject(card.ReasonUnknown, "URL on host %q is not a Su Kang Code", u.Hostname())
		}
		if u.Scheme != "https" {
			return card.Code{}, reject(card.ReasonBadShape, "Su Kang Code URL must use https")
		}
		if u.RawQuery == "" {
			return card.Code{}, reject(card.ReasonBadShape, "Su Kang Code URL carries no query parameter")
		}
		return card.Code{Kind: card.KindSKM, Text: s}, nil
	}
	return card.Code{}, reject(card.ReasonUnknown, "payload (%d chars) matches no known code type", utf8.RuneCountInString(s))
}

func (p *Parser) isSKMHost(h string) bool {
	h = strings.ToLower(h)
	for _, want := range p.skmHosts {
		want = strings.ToLower(want)
		if h == want || strings.HasSuffix(h, "."+want) {
			return true
		}
	}
	return false
}

var (
	idWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	idCheck   = "10X98765432"
)

// CheckIDNumber validates an 18-character GB 11643 resident ID number (check
// digit and birth date) or a legacy 15-digit number (birth date), returning
// it with an upper-case X.
func CheckIDNumber(s string) (string, error) {
	s = strings.ToUpper(s)
	switch len(s) {
	case 18:
		sum := 0
		for i := 0; i < 17; i++ {
			if s[i] < '0' || s[i] > '9' {
				return "", reject(card.ReasonBadShape, "ID number has a non-digit at position %d", i+1)
			}
			sum += int(s[i]-'0') * idWeights[i]
		}
		if want := idCheck[sum%11]; s[17] != want {
			return "", reject(card.ReasonBadChecksum, "ID number check digit does not match")
		}
		if !validDate(s[6:14]) {
			return "", reject(card.ReasonBadShape, "ID number carries an impossible birth date")
		}
	case 15:
		for i := 0; i < 15; i++ {
			if s[i] < '0' || s[i] > '9' {
				return "", reject(card.ReasonBadShape, "ID number has a non-digit at position %d", i+1)
			}
		}
		if !validDate("19" + s[6:12]) {
			return "", reject(card.ReasonBadShape, "ID number carries an impossible birth date")
		}
	default:
		return "", reject(card.ReasonBadShape, "ID number must have 18 or 15 characters")
	}
	return s, nil
}

// validDate checks YYYYMMDD loosely: year 1850-2199, month 1-12, day within
// the month (Feb 29 only in leap years).
func validDate(d string) bool {
	n := func(s string) int {
		v := 0
		for _, c := range s {
			v = v*10 + int(c-'0')
		}
		return v
	}
	y, m, day := n(d[0:4]), n(d[4:6]), n(d[6:8])
	if y < 1850 || y > 2199 || m < 1 || m > 12 || day < 1 {
		return false
	}
	days := [13]int{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m]
	if m == 2 && (y%4 == 0 && (y%100 != 0 || y%400 == 0)) {
		days = 29
	}
	return day <= days
}
