package gateway

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// terminals maps each terminal's bearer token to its id.
type terminals map[string]string

// newTerminals inverts byID (terminal id → token).
func newTerminals(byID map[string]string) terminals {
	t := make(terminals, len(byID))
	for id, tok := range byID {
		t[tok] = id
	}
	return t
}

// authenticate returns the terminal id of the request's bearer token,
// comparing against every token in constant time.
func (t terminals) authenticate(r *http.Request) (string, bool) {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || got == "" {
		return "", false
	}
	var id string
	for tok, term := range t {
		if subtle.ConstantTimeCompare([]byte(got), []byte(tok)) == 1 {
			id = term
		}
	}
	return id, id != ""
}

// unauthorized answers a call without a valid terminal token.
func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="scanagent-gateway"`)
	http.Error(w, "unauthorized", http.StatusUnauthorized)
}
