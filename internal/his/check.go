package his

import (
	"errors"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The built-in checks, used when APIOptions leaves CheckQRCode or
// CheckIDNumber nil. They follow the shapes of SPEC §6; the agent injects
// the code parser's own checks so that the API and the scanners agree.
var (
	reStaticQR  = regexp.MustCompile(`^[0-9A-Za-z]{32,64}:1(?:::[0-9A-Za-z_-]{1,64})?$`)
	reDynamicQR = regexp.MustCompile(`^[0-9A-Za-z]{32,64}:0:[0-9A-Za-z]{32}:[0-9A-Za-z]{0,64}:[0-9A-Za-z_-]{1,64}$`)
)

var errNotEHC = errors.New("not an e-Health Card code (static <id>:1 or dynamic <id>:0:<token>::<org>)")

// builtinQRCode returns text (it normalizes nothing) and whether it is a
// dynamic e-Health Card code, or an error when it is no e-Health Card code
// at all.
func builtinQRCode(text string) (code string, dynamic bool, err error) {
	switch {
	case reStaticQR.MatchString(text):
		return text, false, nil
	case reDynamicQR.MatchString(text):
		return text, true, nil
	}
	return "", false, errNotEHC
}

var (
	idWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	idCheck   = "10X98765432"
)

// builtinIDNumber checks the shape of a GB 11643 resident ID number: 18
// characters with a matching check digit, or a legacy 15 digits.
func builtinIDNumber(s string) error {
	s = strings.ToUpper(s)
	digits := func(s string) bool { return strings.Trim(s, "0123456789") == "" }
	switch {
	case len(s) == 15 && digits(s):
		return nil
	case len(s) == 18 && digits(s[:17]):
		sum := 0
		for i := 0; i < 17; i++ {
			sum += int(s[i]-'0') * idWeights[i]
		}
		if s[17] != idCheck[sum%11] {
			return errors.New("check digit does not match (GB 11643)")
		}
		return nil
	}
	return errors.New("must be 18 characters (GB 11643) or 15 digits")
}

// plainText reports whether s is non-blank, at most max runes, valid UTF-8
// and free of control characters: what a name, department or patient id
// may be.
func plainText(s string, max int) bool {
	if strings.TrimSpace(s) == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return false
	}
	return strings.IndexFunc(s, unicode.IsControl) < 0
}
