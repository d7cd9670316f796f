package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"scanagent/internal/card"
)

// The gateway wire. Terminals of every earlier version call it (their
// client is verify.Gateway), so it changes only by addition:
//
//	POST /v1/verify  card.Request                                → {"result": wireIdentity}
//	POST /v1/report  {"requestId": "…", "report": card.Report}   → {"result": {}}
//	POST /v1/bind    {"requestId": "…", "binding": card.Binding} → {"result": {}}
//	GET  /v1/status                                              → {"result": status}
//
// A platform failure is answered 200 with {"error": wireError}, a
// malformed request 400 with {"error": wireError} of class "rejected", a
// missing or unknown bearer token 401. Request bodies are decoded
// strictly: an unknown field is a malformed request.
const (
	pathVerify = "/v1/verify"
	pathReport = "/v1/report"
	pathBind   = "/v1/bind"
	pathStatus = "/v1/status"
)

// reportRequest is the body of /v1/report.
type reportRequest struct {
	RequestID string      `json:"requestId"`
	Report    card.Report `json:"report"`
}

// bindRequest is the body of /v1/bind.
type bindRequest struct {
	RequestID string       `json:"requestId"`
	Binding   card.Binding `json:"binding"`
}

// wireIdentity is a verified identity on the wire: the kind and verified
// fields keep terminals of earlier versions working.
type wireIdentity struct {
	card.Identity
	Kind     card.Kind `json:"kind"`
	Verified bool      `json:"verified"`
}

// wireError is an *card.Error on the wire; the class travels by name
// (card.Class.String). The error's cause (Err) stays at the gateway.
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

// toWire is e as it travels to the terminal.
func toWire(e *card.Error) wireError {
	return wireError{API: e.API, Class: e.Class.String(), Code: e.Code, Message: e.Msg, RequestID: e.RequestID,
		Unknown: e.Unknown, Unavailable: e.Unavailable, RetryAfter: e.RetryAfter}
}

// errBadRequest marks a request body that does not decode.
var errBadRequest = errors.New("bad request")

// strictJSON decodes b into v, refusing unknown fields.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", errBadRequest, err)
	}
	return nil
}

func jsonHeader(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
}

// writeResult answers {"result": out}, HTML characters unescaped.
func writeResult(w http.ResponseWriter, out any) {
	jsonHeader(w)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(map[string]any{"result": out})
}

// writeError answers the platform's failure: 200, {"error": wireError}.
func writeError(w http.ResponseWriter, e *card.Error) {
	jsonHeader(w)
	w.WriteHeader(http.StatusOK) // the platform's answer travels in the body
	_ = json.NewEncoder(w).Encode(map[string]any{"error": toWire(e)})
}

// writeBadRequest answers a malformed request: 400, {"error": wireError}
// of class rejected.
func writeBadRequest(w http.ResponseWriter, err error) {
	jsonHeader(w)
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": wireError{Class: card.Rejected.String(), Message: err.Error()}})
}
