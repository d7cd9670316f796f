package verify

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/internal/mask"
)

// Gateway API paths, served by GatewayServer and called by Gateway.
const (
	gwVerify = "/v1/verify"
	gwReport = "/v1/report"
	gwBind   = "/v1/bind"
	gwStatus = "/v1/status"
)

// Upstream is what a gateway forwards to: the EHC client (and the SKM
// client for Su Kang Codes).
type Upstream interface {
	Verify(ctx context.Context, r card.Request) (card.Identity, error)
	ReportHISData(ctx context.Context, r card.Report, requestID string) error
	BindCardRelation(ctx context.Context, b card.Binding, requestID string) error
}

var _ Upstream = (*EHC)(nil)
var _ Upstream = (*Gateway)(nil)

// wireError is an *card.Error on the gateway wire.
type wireError struct {
	API         string    `json:"api"`
	Class       string    `json:"class"`
	Code        int       `json:"code,omitempty"`
	Message     string    `json:"message"`
	RequestID   string    `json:"requestId,omitempty"`
	Unknown     bool      `json:"unknown,omitempty"`
	Unavailable bool      `json:"unavailable,omitempty"`
	RetryAfter  time.Time `json:"retryAfter,omitzero"`
}

var classNames = map[string]card.Class{}

func init() {
	for c := card.Retryable; c <= card.Duplicate; c++ {
		classNames[c.String()] = c
	}
}

// wireIdentity is a verified identity on the gateway wire: the kind and
// verified fields keep terminals of earlier versions working.
type wireIdentity struct {
	card.Identity
	Kind     card.Kind `json:"kind"`
	Verified bool      `json:"verified"`
}

// GatewayServer serves the platform to terminal agents on the LAN,
// authenticated by per-terminal bearer tokens. It holds the only appToken.
type GatewayServer struct {
	up        Upstream
	terminals map[string]string // token → terminal id
	log       zerolog.Logger
	status    func() any
}

// NewGatewayServer returns a server forwarding to up; terminals maps
// terminal id → bearer token. status, when set, is served at /v1/status.
func NewGatewayServer(up Upstream, terminals map[string]string, status func() any, log zerolog.Logger) *GatewayServer {
	t := make(map[string]string, len(terminals))
	for id, tok := range terminals {
		t[tok] = id
	}
	return &GatewayServer{up: up, terminals: t, log: log, status: status}
}

// authenticate returns the terminal id of the request's bearer token,
// comparing against every token in constant time.
func (g *GatewayServer) authenticate(r *http.Request) (string, bool) {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || got == "" {
		return "", false
	}
	var id string
	for tok, term := range g.terminals {
		if subtle.ConstantTimeCompare([]byte(got), []byte(tok)) == 1 {
			id = term
		}
	}
	return id, id != ""
}

// Handler returns the gateway's HTTP handler.
func (g *GatewayServer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+gwVerify, g.handle(func(ctx context.Context, term string, body []byte) (any, error) {
		var r card.Request
		if err := strictJSON(body, &r); err != nil {
			return nil, err
		}
		r.TerminalID = term
		id, err := g.up.Verify(ctx, r)
		if err != nil {
			return nil, err
		}
		g.log.Debug().Str("terminal", term).Str("kind", string(r.Kind)).Str("id", mask.ID(id.IDNumber)).Msg("gateway verified")
		return wireIdentity{Identity: id, Kind: r.Kind, Verified: true}, nil
	}))
	mux.HandleFunc("POST "+gwReport, g.handle(func(ctx context.Context, _ string, body []byte) (any, error) {
		var r struct {
			RequestID string      `json:"requestId"`
			Report    card.Report `json:"report"`
		}
		if err := strictJSON(body, &r); err != nil {
			return nil, err
		}
		return struct{}{}, g.up.ReportHISData(ctx, r.Report, r.RequestID)
	}))
	mux.HandleFunc("POST "+gwBind, g.handle(func(ctx context.Context, _ string, body []byte) (any, error) {
		var r struct {
			RequestID string       `json:"requestId"`
			Binding   card.Binding `json:"binding"`
		}
		if err := strictJSON(body, &r); err != nil {
			return nil, err
		}
		return struct{}{}, g.up.BindCardRelation(ctx, r.Binding, r.RequestID)
	}))
	mux.HandleFunc("GET "+gwStatus, g.handle(func(context.Context, string, []byte) (any, error) {
		if g.status == nil {
			return struct{}{}, nil
		}
		return g.status(), nil
	}))
	return mux
}

var errBadRequest = errors.New("bad request")

func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", errBadRequest, err)
	}
	return nil
}

func (g *GatewayServer) handle(fn func(ctx context.Context, terminal string, body []byte) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		term, ok := g.authenticate(r)
		if !ok {
			g.log.Warn().Str("remote", r.RemoteAddr).Str("path", r.URL.Path).Msg("gateway call without a valid terminal token")
			w.Header().Set("WWW-Authenticate", `Bearer realm="scanagent-gateway"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		if err != nil {
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
		out, err := fn(r.Context(), term, body)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if errors.Is(err, errBadRequest) {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": wireError{Class: card.Rejected.String(), Message: err.Error()}})
			return
		}
		if err != nil {
			e, ok := card.AsError(err)
			if !ok {
				// No definite answer (the call's context ended, or
				// something failed mid-call): the platform may have
				// processed the request.
				e = &card.Error{API: "gateway", Class: card.Retryable, Msg: err.Error(), Unavailable: true, Unknown: true}
			}
			g.log.Info().Str("terminal", term).Str("path", r.URL.Path).Str("class", e.Class.String()).Int("code", e.Code).Msg("gateway call failed")
			w.WriteHeader(http.StatusOK) // the platform's answer travels in the body
			_ = json.NewEncoder(w).Encode(map[string]any{"error": wireError{
				API: e.API, Class: e.Class.String(), Code: e.Code, Message: e.Msg, RequestID: e.RequestID,
				Unknown: e.Unknown, Unavailable: e.Unavailable, RetryAfter: e.RetryAfter,
			}})
			return
		}
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(map[string]any{"result": out})
	}
}

// GatewayOptions configures a terminal's gateway client.
type GatewayOptions struct {
	URL             string
	Token           string
	HTTP            *http.Client
	Retries         int
	BreakerFailures int
	BreakerCooldown time.Duration
	Now             func() time.Time
}

// Gateway is a terminal's client of a scanagent gateway: the same methods
// as EHC, and no appSecret.
type Gateway struct {
	o    GatewayOptions
	gate *gate
}

// NewGateway returns a gateway client.
func NewGateway(o GatewayOptions) *Gateway {
	if o.Now == nil {
		o.Now = time.Now
	}
	o.HTTP = withoutRedirects(o.HTTP)
	return &Gateway{o: o, gate: newGate(o.BreakerFailures, o.BreakerCooldown, time.Hour, o.Now)}
}

// Status reports the breaker state towards the gateway.
func (c *Gateway) Status() Status { return Status{Mode: "gateway", GateState: c.gate.state()} }

func (c *Gateway) call(ctx context.Context, api, path string, in, out any) error {
	p, err := c.gate.allow(api)
	if err != nil {
		return err
	}
	defer p.release() // frees a half-open trial however the call ends
	err = c.once(ctx, api, path, in, out)
	if ctx.Err() == nil {
		p.record(err)
	}
	return err
}

// gwError is a failure to get the gateway's answer.
func gwError(api string, unknown bool, msg string, err error) *card.Error {
	return &card.Error{API: api, Class: card.Retryable, Msg: "gateway: " + msg, Err: err, Unknown: unknown, Unavailable: true}
}

func (c *Gateway) once(ctx context.Context, api, path string, in, out any) error {
	a, err := c.post(ctx, api, path, in)
	if err != nil {
		return err
	}
	return c.interpret(api, path, a, out)
}

// post sends in to the gateway; a transport fault is card.Retryable, Unknown
// once the request was written; a redirect is not followed.
func (c *Gateway) post(ctx context.Context, api, path string, in any) (httpAnswer, error) {
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.o.URL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return httpAnswer{}, &card.Error{API: api, Class: card.Fatal, Msg: "bad gateway URL", Err: err}
	}
	var wrote bool
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { wrote = true }}))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.o.Token)
	resp, err := c.o.HTTP.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return httpAnswer{}, ctx.Err()
		}
		return httpAnswer{}, gwError(api, wrote, "request failed", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil || len(data) > MaxResponse {
		return httpAnswer{}, gwError(api, true, "reading answer failed", err)
	}
	return httpAnswer{status: resp.StatusCode, location: redirectTarget(resp), data: data}, nil
}

// interpret turns the gateway's answer into nil or an *card.Error. The gateway
// answers 200 (or 400 for a malformed request) with a JSON envelope; any
// other 5xx, 429 or 408 comes from something in between that may have
// forwarded the request, so its outcome is unknown.
func (c *Gateway) interpret(api, path string, a httpAnswer, out any) error {
	switch {
	case isRedirect(a.status):
		return &card.Error{API: api, Class: card.Fatal, Msg: "gateway: " + redirectMsg(a.status, strings.TrimRight(c.o.URL, "/")+path, a.location) + ": check platform.gateway_url"}
	case a.status == http.StatusUnauthorized:
		return &card.Error{API: api, Class: card.Fatal, Msg: "gateway refused this terminal's token (check platform.gateway_token)"}
	case a.status >= 500, a.status == http.StatusTooManyRequests, a.status == http.StatusRequestTimeout:
		return gwError(api, true, fmt.Sprintf("HTTP %d (the request may have been processed)", a.status), nil)
	case a.status != http.StatusOK && a.status != http.StatusBadRequest:
		return &card.Error{API: api, Class: card.Fatal, Msg: fmt.Sprintf("gateway: HTTP %d (check platform.gateway_url)", a.status)}
	}
	var ans struct {
		Result json.RawMessage `json:"result"`
		Error  *wireError      `json:"error"`
	}
	if err := json.Unmarshal(a.data, &ans); err != nil {
		return gwError(api, true, "answer is not JSON", nil)
	}
	if ans.Error != nil {
		return ans.Error.err()
	}
	if out != nil && len(ans.Result) > 0 {
		if err := json.Unmarshal(ans.Result, out); err != nil {
			return gwError(api, true, "answer has an unexpected shape", err)
		}
	}
	return nil
}

// err is the *card.Error a wireError carries.
func (w *wireError) err() *card.Error {
	cl, ok := classNames[w.Class]
	if !ok {
		cl = card.Retryable
	}
	return &card.Error{API: w.API, Class: cl, Code: w.Code, Msg: w.Message, RequestID: w.RequestID,
		Unknown: w.Unknown, Unavailable: w.Unavailable, RetryAfter: w.RetryAfter}
}

// Verify asks the gateway to verify r.
func (c *Gateway) Verify(ctx context.Context, r card.Request) (card.Identity, error) {
	return retry(ctx, c.o.Retries, r.Kind == card.KindEHCDynamic, func() (card.Identity, error) {
		var id card.Identity
		err := c.call(ctx, "verify", gwVerify, r, &id)
		return id, err
	})
}

// ReportHISData forwards a usage report.
func (c *Gateway) ReportHISData(ctx context.Context, r card.Report, requestID string) error {
	return c.call(ctx, APIReportHISData, gwReport, map[string]any{"requestId": requestID, "report": r}, nil)
}

// BindCardRelation forwards a binding.
func (c *Gateway) BindCardRelation(ctx context.Context, b card.Binding, requestID string) error {
	return c.call(ctx, APIBindCardRelation, gwBind, map[string]any{"requestId": requestID, "binding": b}, nil)
}
