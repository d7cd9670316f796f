package his

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/internal/loopback"
	"scanagent/internal/mask"
)

//go:embed status.html
var statusPage []byte

// APIOptions configures the local API.
type APIOptions struct {
	// AllowedOrigins are the browser origins (scheme://host:port) allowed
	// to call the API and open WebSockets with CORS; other origins need the
	// token, even from this machine.
	AllowedOrigins []string
	// AllowedHosts are further names (or addresses) the Host header may
	// carry, beyond loopback and this machine's own names and addresses:
	// e.g. a DNS alias the HIS uses for this terminal. Any other Host gets
	// 403 (DNS-rebinding defence), whatever the binding.
	AllowedHosts []string
	// Token is required from peers that are not on this machine, and from
	// browser origins not in AllowedOrigins.
	Token string
	// MaxStreamClients caps WebSocket, SSE and long-poll clients together;
	// beyond it the API answers 503 with Retry-After. 0 means 64.
	MaxStreamClients int
	// CheckQRCode returns text as the code it is (normalized: no AIM
	// prefix, no line end, ASCII colons), whether a dynamic e-Health Card
	// code, or an error when it is no e-Health Card code; nil: a built-in
	// shape check.
	CheckQRCode func(text string) (code string, dynamic bool, err error)
	// CheckIDNumber validates a resident ID number (GB 11643); nil: a
	// built-in check of the length and check digit.
	CheckIDNumber func(number string) error
	// DefaultDepartment fills a usage report that names none (the recorder
	// would fill the same); a scene that needs a department (guide §3.2.7)
	// is refused without one only when this is empty too.
	DefaultDepartment string
	// MachineHosts returns this machine's names and addresses, read once by
	// NewAPI; nil: os.Hostname and net.InterfaceAddrs. For tests.
	MachineHosts func() []string
	Recorder     UsageRecorder
	// Status returns the agent's state for /v1/status; the API adds its own.
	Status func() map[string]any
	// Metrics serves GET /metrics (the Prometheus exposition) behind the
	// API's security rules; nil: no /metrics.
	Metrics http.Handler
	// Reload validates and applies the configuration file again
	// (POST /v1/reload, from this machine only).
	Reload func() error
	Keep   int
	Log    zerolog.Logger
	Now    func() time.Time
}

// API is the local HTTP/WebSocket/SSE API and a Sink.
type API struct {
	o     APIOptions
	hub   *hub
	hosts hostSet
	keys  *idemKeys
	rlog  *limitedLog
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
	if o.MaxStreamClients <= 0 {
		o.MaxStreamClients = 64
	}
	if o.MachineHosts == nil {
		o.MachineHosts = machineHosts
	}
	return &API{o: o, hub: newHub(o.Keep), hosts: newHostSet(o.MachineHosts(), o.AllowedHosts), keys: newIdemKeys(),
		rlog: newLimitedLog(o.Log, o.Now)}
}

// SetRecorder sets where usage reports and bindings go (the outbox opens
// after the API is built). Call it before serving.
func (a *API) SetRecorder(r UsageRecorder) { a.o.Recorder = r }

// Deliver publishes an outcome to every connected client. It writes the
// event to the WebSocket clients on plain connections itself (see hub) and
// wakes the others; it never waits on a slow client for more than
// tryWrite, once, and returns no error.
func (a *API) Deliver(_ context.Context, e card.Visit) error {
	if n := a.hub.publish(e); n > 0 {
		a.o.Log.Warn().Int("clients", n).Msg("slow HIS clients disconnected (buffer full)")
	}
	return nil
}

// Clients is the number of connected WebSocket/SSE clients.
func (a *API) Clients() int { return a.hub.clients() }

// CloseStreams disconnects every streaming client (WebSocket, SSE, long
// poll); WebSockets get 1012 "service restart". Register it with the HTTP
// server's shutdown: it is what ends the hijacked WebSockets on a stop or
// a reload.
func (a *API) CloseStreams() { a.hub.closeAll() }

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
	if a.o.Metrics != nil {
		mux.Handle("GET /metrics", a.o.Metrics)
	}
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
	s := a.subscribe(w, r)
	if s == nil {
		return
	}
	defer a.hub.unsubscribe(s)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case m := <-s.ch:
		writeJSON(w, http.StatusOK, m.Visit)
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
	s := a.subscribe(w, r)
	if s == nil {
		return
	}
	defer a.hub.unsubscribe(s)
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	io.WriteString(w, "retry: 2000\n: scanagent events\n\n")
	fl.Flush()
	ping := time.NewTicker(20 * time.Second)
	defer ping.Stop()
	// Each write gets drainTimeout: a client that stops reading is cut
	// off instead of holding this handler (and its connection) forever.
	send := func(frame []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(drainTimeout))
		if _, err := w.Write(frame); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	for {
		select {
		case m := <-s.ch:
			if !send(m.sseFrame()) {
				return
			}
		case <-ping.C:
			if !send([]byte(": ping\n\n")) {
				return
			}
		case <-s.closed:
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (a *API) serveWS(w http.ResponseWriter, r *http.Request) {
	s := a.subscribe(w, r)
	if s == nil {
		return
	}
	hw := &hijackWriter{ResponseWriter: w, onSlow: func() {
		a.o.Log.Warn().Msg("slow HIS client disconnected (socket backlog full)")
	}}
	// guard has already checked the Origin against the allowlist (or the
	// token); the library's own same-host check would refuse the allowed
	// origins.
	c, err := websocket.Accept(hw, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		a.hub.unsubscribe(s)
		return
	}
	if hw.conn == nil {
		defer a.hub.unsubscribe(s)
		defer c.CloseNow()
		a.writeWS(r.Context(), c, s)
		return
	}
	// A plain connection: publishers write to it (see hub). All it needs
	// is a goroutine that reads, to answer pings and notice the client
	// leave; a new one, whose stack starts small, rather than this one
	// with the request's stack and state, freed when it returns.
	if !a.hub.attach(s, c, hw.conn) {
		c.Close(a.hub.closeReason())
		a.hub.unsubscribe(s)
		return
	}
	go func() {
		defer a.hub.unsubscribe(s)
		defer c.CloseNow()
		if _, _, err := c.Reader(context.Background()); err == nil {
			c.Close(websocket.StatusPolicyViolation, "unexpected data message")
		}
	}()
}

// writeWS writes s's events to c from this goroutine: for connections the
// hub cannot write to without waiting (TLS).
func (a *API) writeWS(ctx context.Context, c *websocket.Conn, s *sub) {
	ctx = c.CloseRead(ctx)
	for {
		select {
		case m := <-s.ch:
			wctx, cancel := context.WithTimeout(ctx, drainTimeout)
			err := c.Write(wctx, websocket.MessageText, m.data)
			cancel()
			if err != nil {
				return
			}
		case <-s.closed:
			c.Close(a.hub.closeReason())
			return
		case <-ctx.Done():
			return
		}
	}
}

// subscribe takes a place among the stream clients, or answers 503 and
// returns nil when MaxStreamClients are connected.
func (a *API) subscribe(w http.ResponseWriter, r *http.Request) *sub {
	s, ok := a.hub.trySubscribe(a.o.MaxStreamClients)
	if !ok {
		w.Header().Set("Retry-After", "30")
		a.refuse(w, r, causeStreamCap, http.StatusServiceUnavailable, fmt.Sprintf(
			"too many streaming clients (his.api.max_stream_clients = %d): close one, or retry later", a.o.MaxStreamClients))
	}
	return s
}

// serveReload reloads the configuration; only processes on this machine
// may ask, whatever token they hold.
func (a *API) serveReload(w http.ResponseWriter, r *http.Request) {
	if !loopback.Addr(r.RemoteAddr) || r.Header.Get("Origin") != "" {
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
