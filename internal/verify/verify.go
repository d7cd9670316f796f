// Package verify turns a recognised code into a verified identity and
// delivers usage reports to the platforms: the WeChat e-Health Card open
// platform (directly, or through a scanagent gateway on the LAN) and the
// Jiangsu Su Kang Code service. It owns signing (verify/sign), the appToken
// holder, typed errors, retries, the circuit breaker and rate-limit pauses.
// It does not import any other stage.
package verify

import "strings"

// NormalizeIDType writes the platform's idType as two digits: some answers
// carry "0" for 01 居民身份证, or drop the leading zero.
func NormalizeIDType(s string) string {
	s = strings.TrimSpace(s)
	switch {
	case s == "0":
		return "01"
	case len(s) == 1 && s[0] >= '1' && s[0] <= '9':
		return "0" + s
	}
	return s
}
