package his

import (
	"crypto/subtle"
	"net"
	"net/http"
	"os"
	"strings"

	"scanagent/internal/loopback"

	"github.com/rs/zerolog"
)

// guard applies the API's security rules, whatever address it is bound to:
//   - the Host header must name this machine (loopback, its own names and
//     addresses, his.api.allowed_hosts): a page on a rebinding domain that
//     reaches the API through the user's browser is refused (403);
//   - a browser Origin in allowed_origins gets CORS and the peer's rule; any
//     other Origin needs the bearer token, even from loopback (403 without),
//     and never gets CORS headers;
//   - a peer beyond this machine needs the bearer token (401);
//   - bodies are capped.
func (a *API) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.hosts.allowed(r.Host) {
			a.refuse(w, r, causeHost, http.StatusForbidden, "host not allowed: add the name this machine is called by to his.api.allowed_hosts")
			return
		}
		foreign := false
		if origin := r.Header.Get("Origin"); origin != "" {
			if foreign = !a.originAllowed(origin); !foreign {
				if a.cors(w, r, origin) {
					return
				}
			}
		}
		if (foreign || !loopback.Addr(r.RemoteAddr)) && !a.tokenOK(r) && r.URL.Path != "/healthz" {
			if foreign {
				a.refuse(w, r, causeOrigin, http.StatusForbidden, "origin not allowed: add it to his.api.allowed_origins")
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="scanagent"`)
			a.refuse(w, r, causeToken, http.StatusUnauthorized, "a bearer token is required from other machines")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		next.ServeHTTP(w, r)
	})
}

// cors answers an allowed origin's CORS headers; it reports whether the
// request was a preflight, now answered.
func (a *API) cors(w http.ResponseWriter, r *http.Request, origin string) bool {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key")
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	h.Set("Access-Control-Max-Age", "600")
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}

// refuse answers a refused or rejected request and logs it, at most once a
// minute per cause. Only the path, the peer and the origin are logged:
// never a body.
func (a *API) refuse(w http.ResponseWriter, r *http.Request, cause string, status int, msg string) {
	a.refuseWith(w, r, cause, status, apiError{Error: msg})
}

func (a *API) refuseWith(w http.ResponseWriter, r *http.Request, cause string, status int, body apiError) {
	level := zerolog.WarnLevel
	if status >= 500 && cause != causeStreamCap {
		level = zerolog.ErrorLevel
	}
	e := a.rlog.event(level, cause).Int("status", status).Str("path", r.URL.Path).Str("peer", r.RemoteAddr)
	if o := r.Header.Get("Origin"); o != "" {
		e = e.Str("origin", o)
	}
	if len(body.Fields) > 0 {
		names := make([]string, 0, len(body.Fields))
		for k := range body.Fields {
			names = append(names, k)
		}
		e = e.Strs("fields", names)
	}
	e.Msg("HIS API request refused: " + body.Error)
	writeJSON(w, status, body)
}

func (a *API) originAllowed(origin string) bool {
	for _, o := range a.o.AllowedOrigins {
		if strings.EqualFold(strings.TrimRight(o, "/"), origin) {
			return true
		}
	}
	return false
}

func (a *API) tokenOK(r *http.Request) bool {
	if a.o.Token == "" {
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		got = r.URL.Query().Get("access_token") // WebSocket and EventSource cannot set headers
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(a.o.Token)) == 1
}

// hostSet is the names and addresses the Host header may carry, normalised
// by hostKey; loopback names and addresses are always in it.
type hostSet map[string]bool

func newHostSet(machine, configured []string) hostSet {
	s := hostSet{}
	for _, h := range configured {
		s[hostKey(h)] = true
	}
	for _, h := range machine {
		k := hostKey(h)
		s[k] = true
		if short, _, ok := strings.Cut(k, "."); ok && net.ParseIP(k) == nil {
			s[short] = true // kiosk-12.hospital.local is also called kiosk-12
		}
	}
	delete(s, "")
	return s
}

func (s hostSet) allowed(host string) bool {
	k := hostKey(host)
	if k == "" {
		return false
	}
	return s[k] || loopback.Host(k)
}

// hostKey normalises a Host header or a configured host: port and brackets
// dropped, lower case, no trailing dot, an IP in its canonical form (an
// IPv6 zone dropped).
func hostKey(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
	if ipText, _, _ := strings.Cut(h, "%"); net.ParseIP(ipText) != nil {
		return net.ParseIP(ipText).String()
	}
	return h
}

// machineHosts returns this machine's host name and interface addresses.
func machineHosts() []string {
	var hosts []string
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			hosts = append(hosts, n.IP.String())
		}
	}
	return hosts
}
