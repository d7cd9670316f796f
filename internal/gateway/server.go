// Package gateway is the gateway server for terminals: one agent holds the
// appSecret and the only appToken and serves the platform to the terminal
// agents on its LAN, which call it with verify.Gateway instead of the
// platform. It owns the gateway wire (the paths, the JSON envelope, the
// encoding of a verified identity and of a *card.Error), the terminals'
// bearer-token authentication and the stamping of each verification with
// the authenticated terminal. It forwards every call to an Upstream (in the
// agent, the e-Health Card client and the Su Kang Code client) and imports
// no other stage. It also takes the terminals' heartbeats into a Fleet
// registry (internal/fleet) and serves the fleet view to IT staff: GET
// /v1/fleet and the page /fleet, behind the fleet viewer token.
package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/internal/mask"
)

// Upstream is what the gateway forwards to: the platform clients. Its
// errors are *card.Error (wrapped or not); any other error means the call
// ended without a definite answer.
type Upstream interface {
	Verify(ctx context.Context, r card.Request) (card.Identity, error)
	ReportHISData(ctx context.Context, r card.Report, requestID string) error
	BindCardRelation(ctx context.Context, b card.Binding, requestID string) error
}

// maxBody bounds a terminal's request body.
const maxBody = 64 << 10

// Server serves the platform to terminal agents on the LAN, authenticated
// by per-terminal bearer tokens.
type Server struct {
	up        Upstream
	terminals terminals
	status    func() any
	log       zerolog.Logger
	// refusedLog logs calls without a valid terminal token at most once
	// a minute: anyone on the LAN can send them, as fast as they like.
	refusedLog zerolog.Logger
	fleet      fleetView
}

// New returns a server forwarding to up; terminals maps terminal id →
// bearer token. status, when set, is served at /v1/status.
func New(up Upstream, terminals map[string]string, status func() any, log zerolog.Logger) *Server {
	return &Server{up: up, terminals: newTerminals(terminals), status: status, log: log,
		refusedLog: log.Sample(&zerolog.BurstSampler{Burst: 1, Period: time.Minute})}
}

// Handler returns the gateway's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pathVerify, s.handle(s.verify))
	mux.HandleFunc("POST "+pathReport, s.handle(s.report))
	mux.HandleFunc("POST "+pathBind, s.handle(s.bind))
	mux.HandleFunc("GET "+pathStatus, s.handle(s.serveStatus))
	mux.HandleFunc("POST "+pathHeartbeat, s.serveHeartbeat)
	mux.HandleFunc("GET "+pathFleet, s.serveFleet)
	mux.HandleFunc("GET "+pathFleetPage, s.serveFleetPage)
	return mux
}

// endpoint answers one authenticated call: the result to send, or the
// error (errBadRequest, an *card.Error, or any other error: no definite
// answer).
type endpoint func(ctx context.Context, terminal string, body []byte) (any, error)

// verify verifies a code for the terminal, stamped with its id whatever
// the request says.
func (s *Server) verify(ctx context.Context, term string, body []byte) (any, error) {
	var r card.Request
	if err := strictJSON(body, &r); err != nil {
		return nil, err
	}
	r.TerminalID = term
	id, err := s.up.Verify(ctx, r)
	if err != nil {
		return nil, err
	}
	s.log.Debug().Str("terminal", term).Str("kind", string(r.Kind)).Str("id", mask.ID(id.IDNumber)).Msg("gateway verified")
	return wireIdentity{Identity: id, Kind: r.Kind, Verified: true}, nil
}

// report forwards a usage report under the terminal's requestId.
func (s *Server) report(ctx context.Context, _ string, body []byte) (any, error) {
	var r reportRequest
	if err := strictJSON(body, &r); err != nil {
		return nil, err
	}
	return struct{}{}, s.up.ReportHISData(ctx, r.Report, r.RequestID)
}

// bind forwards a card binding under the terminal's requestId.
func (s *Server) bind(ctx context.Context, _ string, body []byte) (any, error) {
	var r bindRequest
	if err := strictJSON(body, &r); err != nil {
		return nil, err
	}
	return struct{}{}, s.up.BindCardRelation(ctx, r.Binding, r.RequestID)
}

// serveStatus answers the status function's value, {} without one.
func (s *Server) serveStatus(context.Context, string, []byte) (any, error) {
	if s.status == nil {
		return struct{}{}, nil
	}
	return s.status(), nil
}

// handle authenticates the terminal, reads the body, calls fn and writes
// its answer. The platform's answer, success or failure, travels in a 200
// body; a malformed request is answered 400.
func (s *Server) handle(fn endpoint) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		term, body, ok := s.terminalCall(w, r, maxBody)
		if !ok {
			return
		}
		out, err := fn(r.Context(), term, body)
		switch {
		case errors.Is(err, errBadRequest):
			writeBadRequest(w, err)
		case err != nil:
			e := platformError(err)
			s.log.Info().Str("terminal", term).Str("path", r.URL.Path).Str("class", e.Class.String()).Int("code", e.Code).Msg("gateway call failed")
			writeError(w, e)
		default:
			writeResult(w, out)
		}
	}
}

// terminalCall authenticates a terminal's call and reads its body, at
// most limit bytes; when it reports false it has answered the call (401,
// 413).
func (s *Server) terminalCall(w http.ResponseWriter, r *http.Request, limit int64) (term string, body []byte, ok bool) {
	term, ok = s.terminals.authenticate(r)
	if !ok {
		s.refusedLog.Warn().Str("remote", r.RemoteAddr).Str("path", r.URL.Path).Msg("gateway call without a valid terminal token (logged at most once a minute)")
		unauthorized(w)
		return "", nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
		return "", nil, false
	}
	return term, body, true
}

// platformError is err as the *card.Error to send to the terminal. An
// error without a definite answer (the call's context ended, or something
// failed mid-call) is a retryable, unknown outcome: the platform may have
// processed the request.
func platformError(err error) *card.Error {
	if e, ok := card.AsError(err); ok {
		return e
	}
	return &card.Error{API: "gateway", Class: card.Retryable, Msg: err.Error(), Unavailable: true, Unknown: true}
}
