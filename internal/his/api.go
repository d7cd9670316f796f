package his

import (
	"bytes"
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"scanagent/internal/mask"
)

//go:embed status.html
var statusPage []byte

// APIOptions configures the local API.
type APIOptions struct {
	// AllowedOrigins are the browser origins (scheme://host:port) allowed
	// to call the API and open WebSockets; others get 403.
	AllowedOrigins []string
	// Token is required from peers that are not on this machine.
	Token string
	// LoopbackOnly makes the API check the Host header against loopback
	// names (DNS-rebinding defence) — set when bound to loopback.
	LoopbackOnly bool
	Recorder     UsageRecorder
	// Status returns the agent's state for /v1/status; the API adds its own.
	Status func() map[string]any
	// Metrics writes Prometheus text exposition lines.
	Metrics func(w io.Writer)
	// Reload validates and applies the configuration file again
	// (POST /v1/reload, from this machine only).
	Reload func() error
	Keep   int
	Log    zerolog.Logger
	Now    func() time.Time
}

// API is the local HTTP/WebSocket/SSE API and a Sink.
type API struct {
	o   APIOptions
	hub *hub
}

var _ Sink = (*API)(nil)

// NewAPI returns the API.
func NewAPI(o APIOptions) *API {
	if o.Keep <= 0 {
		o.Keep = 500
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &API{o: o, hub: newHub(o.Keep)}
}

// SetRecorder sets where usage reports and bindings go (the outbox opens
// after the API is built). Call it before serving.
func (a *API) SetRecorder(r UsageRecorder) { a.o.Recorder = r }

// Deliver publishes an outcome to every connected client.
func (a *API) Deliver(_ context.Context, e Event) error {
	if n := a.hub.publish(e); n > 0 {
		a.o.Log.Warn().Int("clients", n).Msg("slow HIS clients disconnected (buffer full)")
	}
	return nil
}

// Clients is the number of connected WebSocket/SSE clients.
func (a *API) Clients() int { return a.hub.clients() }

const maxBody = 64 << 10

// Handler returns the API's handler with its security rules applied.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'")
		w.Write(statusPage)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /v1/status", a.serveStatus)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		fmt.Fprintf(w, "# HELP scanagent_his_clients Connected WebSocket and SSE clients.\n# TYPE scanagent_his_clients gauge\nscanagent_his_clients %d\n", a.hub.clients())
		if a.o.Metrics != nil {
			a.o.Metrics(w)
		}
	})
	mux.HandleFunc("GET /v1/scans/last", func(w http.ResponseWriter, r *http.Request) {
		e, ok := a.hub.last()
		if !ok {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(w, http.StatusOK, e)
	})
	mux.HandleFunc("GET /v1/scans/next", a.serveNext)
	mux.HandleFunc("GET /v1/events", a.serveSSE)
	mux.HandleFunc("GET /v1/ws", a.serveWS)
	mux.HandleFunc("POST /v1/usage", a.serveUsage)
	mux.HandleFunc("POST /v1/bind", a.serveBind)
	mux.HandleFunc("POST /v1/reload", a.serveReload)
	return a.guard(mux)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

type apiError struct {
	Error  string            `json:"error"`
	Fields map[string]string `json:"fields,omitempty"`
}

func isLoopbackAddr(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
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

// guard applies the API's security rules: a Host check against DNS
// rebinding when bound to loopback; browsers only from allowed origins
// (CORS answered for those alone); peers beyond this machine only with the
// bearer token; bodies capped.
func (a *API) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.o.LoopbackOnly && !isLoopbackAddr(r.Host) {
			writeJSON(w, http.StatusForbidden, apiError{Error: "host not allowed"})
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" {
			if !a.originAllowed(origin) {
				a.o.Log.Warn().Str("origin", origin).Str("path", r.URL.Path).Msg("request from a browser origin not in his.api.allowed_origins refused")
				writeJSON(w, http.StatusForbidden, apiError{Error: "origin not allowed: add it to his.api.allowed_origins"})
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key")
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Max-Age", "600")
			if r.Method == http.MethodOptions {
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		if !isLoopbackAddr(r.RemoteAddr) && !a.tokenOK(r) && r.URL.Path != "/healthz" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="scanagent"`)
			writeJSON(w, http.StatusUnauthorized, apiError{Error: "a bearer token is required from other machines"})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		next.ServeHTTP(w, r)
	})
}

func (a *API) serveStatus(w http.ResponseWriter, r *http.Request) {
	st := map[string]any{}
	if a.o.Status != nil {
		st = a.o.Status()
	}
	st["hisClients"] = a.hub.clients()
	recent := a.hub.snapshot(20)
	masked := make([]map[string]any, 0, len(recent))
	for i := len(recent) - 1; i >= 0; i-- {
		e := recent[i]
		m := map[string]any{"id": e.ID, "time": e.Time, "source": e.Source, "kind": e.Kind, "verified": e.Verified, "offline": e.Offline, "latencyMs": e.Latency}
		if e.Identity != nil {
			m["name"], m["idNumber"], m["level"] = mask.Name(e.Identity.Name), mask.ID(e.Identity.IDNumber), e.Identity.Level
		}
		if e.Error != nil {
			m["error"] = e.Error.Code
		}
		masked = append(masked, m)
	}
	st["recentScans"] = masked
	writeJSON(w, http.StatusOK, st)
}

func (a *API) serveNext(w http.ResponseWriter, r *http.Request) {
	timeout := 30 * time.Second
	if v := r.URL.Query().Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 120*time.Second {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "timeout must be a duration up to 120s, e.g. 30s"})
			return
		}
		timeout = d
	}
	s := a.hub.subscribe()
	defer a.hub.unsubscribe(s)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case m := <-s.ch:
		writeJSON(w, http.StatusOK, m.Event)
	case <-t.C:
		w.WriteHeader(http.StatusNoContent)
	case <-s.closed:
		w.WriteHeader(http.StatusServiceUnavailable)
	case <-r.Context().Done():
	}
}

func (a *API) serveSSE(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	s := a.hub.subscribe()
	defer a.hub.unsubscribe(s)
	io.WriteString(w, "retry: 2000\n: scanagent events\n\n")
	fl.Flush()
	ping := time.NewTicker(20 * time.Second)
	defer ping.Stop()
	for {
		select {
		case m := <-s.ch:
			fmt.Fprintf(w, "id: %s\nevent: scan\ndata: %s\n\n", m.ID, m.data)
			fl.Flush()
		case <-ping.C:
			io.WriteString(w, ": ping\n\n")
			fl.Flush()
		case <-s.closed:
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (a *API) serveWS(w http.ResponseWriter, r *http.Request) {
	// guard has already checked the Origin against the allowlist; the
	// library's own same-host check would refuse the allowed origins.
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := c.CloseRead(r.Context())
	s := a.hub.subscribe()
	defer a.hub.unsubscribe(s)
	for {
		select {
		case m := <-s.ch:
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := c.Write(wctx, websocket.MessageText, m.data)
			cancel()
			if err != nil {
				return
			}
		case <-s.closed:
			c.Close(websocket.StatusTryAgainLater, "client too slow")
			return
		case <-ctx.Done():
			return
		}
	}
}

var (
	reDigits  = regexp.MustCompile(`^[0-9]{1,10}$`)
	reChannel = regexp.MustCompile(`^[0-9]{4}$`)
	reCard    = regexp.MustCompile(`^[0-9]{2}$`)
)

func decodeStrict(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("body larger than %d bytes", mbe.Limit)
		}
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON: %v", err)
	}
	if dec.More() {
		return errors.New("invalid JSON: trailing data")
	}
	return nil
}

func (a *API) badRequest(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	if strings.HasPrefix(err.Error(), "body larger") {
		status = http.StatusRequestEntityTooLarge
	}
	writeJSON(w, status, apiError{Error: err.Error()})
}

// resolveScan fills a request's card fields from the scan it names.
func (a *API) resolveScan(scanID string, fields map[string]string) (Event, bool) {
	if scanID == "" {
		return Event{}, false
	}
	e, ok := a.hub.find(scanID)
	if !ok {
		fields["scanId"] = "unknown or too old (the agent keeps the last " + strconv.Itoa(a.o.Keep) + " scans): send qrCodeText instead"
		return Event{}, false
	}
	if e.Identity == nil {
		fields["scanId"] = "that scan was refused: no card to report"
		return Event{}, false
	}
	return e, true
}

func (a *API) serveUsage(w http.ResponseWriter, r *http.Request) {
	var u Usage
	if err := decodeStrict(r, &u); err != nil {
		a.badRequest(w, err)
		return
	}
	fields := map[string]string{}
	u.IdempotencyKey = idempotencyKey(r, fields)
	if e, ok := a.resolveScan(u.ScanID, fields); ok {
		if strings.HasPrefix(e.Kind, "ehc_") && e.Identity.QRCodeText != "" {
			u.QRCodeText = e.Identity.QRCodeText
		} else if e.Identity.IDNumber != "" && e.Identity.Name != "" {
			u.IDCardNumber, u.Name = e.Identity.IDNumber, e.Identity.Name
		} else {
			fields["scanId"] = "that scan carries neither an e-Health Card code nor an ID number with a name"
		}
	}
	if u.CardType == "" {
		u.CardType = "11"
		if u.QRCodeText == "" {
			u.CardType = "01"
		}
	}
	switch {
	case u.QRCodeText == "" && u.IDCardNumber == "" && fields["scanId"] == "":
		fields["qrCodeText"] = "give scanId, qrCodeText, or idCardNumber and name"
	case u.QRCodeText == "" && u.IDCardNumber != "" && u.Name == "":
		fields["name"] = "required with idCardNumber"
	case u.CardType == "11" && u.QRCodeText == "" && fields["scanId"] == "":
		fields["qrCodeText"] = "required for cardType 11"
	}
	if !reDigits.MatchString(u.Scene) {
		fields["scene"] = "required: a 用卡环节 code such as 010101"
	}
	if u.CardChannel != "" && !reChannel.MatchString(u.CardChannel) {
		fields["cardChannel"] = "a 4-digit 用卡渠道 code such as 0100"
	}
	if !reCard.MatchString(u.CardType) {
		fields["cardType"] = "a 2-digit 证件类型 code such as 11"
	}
	if u.Time != "" {
		if _, err := time.Parse("2006-01-02 15:04:05", u.Time); err != nil {
			fields["time"] = "format yyyy-MM-dd HH:mm:ss (China Standard Time)"
		}
	}
	if len(fields) > 0 {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "invalid request", Fields: fields})
		return
	}
	a.record(w, r, func(ctx context.Context) (string, error) { return a.o.Recorder.RecordUsage(ctx, u) })
}

func (a *API) serveBind(w http.ResponseWriter, r *http.Request) {
	var b Binding
	if err := decodeStrict(r, &b); err != nil {
		a.badRequest(w, err)
		return
	}
	fields := map[string]string{}
	b.IdempotencyKey = idempotencyKey(r, fields)
	if e, ok := a.resolveScan(b.ScanID, fields); ok {
		if !strings.HasPrefix(e.Kind, "ehc_") || e.Identity.QRCodeText == "" {
			fields["scanId"] = "only e-Health Card scans can be bound"
		} else {
			b.QRCodeText = e.Identity.QRCodeText
		}
	}
	if b.QRCodeText == "" && fields["scanId"] == "" {
		fields["qrCodeText"] = "give scanId or qrCodeText"
	}
	if strings.TrimSpace(b.PatID) == "" || len(b.PatID) > 64 {
		fields["patid"] = "required: the HIS patient id (at most 64 characters)"
	}
	if len(fields) > 0 {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "invalid request", Fields: fields})
		return
	}
	a.record(w, r, func(ctx context.Context) (string, error) { return a.o.Recorder.RecordBinding(ctx, b) })
}

// serveReload reloads the configuration; only processes on this machine
// may ask, whatever token they hold.
func (a *API) serveReload(w http.ResponseWriter, r *http.Request) {
	if !isLoopbackAddr(r.RemoteAddr) || r.Header.Get("Origin") != "" {
		writeJSON(w, http.StatusForbidden, apiError{Error: "reload is allowed from this machine's command line only"})
		return
	}
	if a.o.Reload == nil {
		writeJSON(w, http.StatusNotImplemented, apiError{Error: "reload not available"})
		return
	}
	if err := a.o.Reload(); err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "reload refused, the running configuration stays: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "reloading"})
}

// idempotencyKey reads the optional Idempotency-Key header.
func idempotencyKey(r *http.Request, fields map[string]string) string {
	k := r.Header.Get("Idempotency-Key")
	if len(k) > 128 {
		fields["Idempotency-Key"] = "at most 128 characters"
	}
	return k
}

// record answers 202 only once the record is durably queued.
func (a *API) record(w http.ResponseWriter, r *http.Request, fn func(context.Context) (string, error)) {
	if a.o.Recorder == nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "no outbox: platform.mode is \"off\""})
		return
	}
	id, err := fn(r.Context())
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, ErrQueueRefused) {
			status = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", "60")
		}
		a.o.Log.Error().Err(err).Str("path", r.URL.Path).Msg("HIS record not queued")
		writeJSON(w, status, apiError{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": id})
}
