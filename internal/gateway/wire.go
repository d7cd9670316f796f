package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"scanagent/internal/card"
)

// The gateway wire. Terminals of every earlier version call it (their
// client is verify.Gateway), so it changes only by addition:
//
//	POST /v1/verify  card.Request                                → {"result": wireIdentity}
//	POST /v1/report  {"requestId": "…", "report": card.Report}   → {"result": {}}
//	POST /v1/bind    {"requestId": "…", "binding": card.Binding} → {"result": {}}
//	GET  /v1/status                                              → {"result": status}
//	POST /v1/heartbeat fleet.Heartbeat                           → {"result": {}}
//
// A platform failure is answered 200 with {"error": card.Error}, a
// malformed request 400 with {"error": card.Error} of class "rejected", a
// missing or unknown bearer token 401. Request bodies are decoded
// strictly: an unknown field is a malformed request — except a
// heartbeat's, whose unknown fields are ignored (fleet.Decode), so that a
// newer terminal's additions do not make older gateways refuse it.
//
// The fleet view is for IT staff, not terminals: with the fleet viewer
// token (bearer, or HTTP Basic with it as the password) GET /v1/fleet
// answers {"result": fleetResult} and GET /fleet the page.
const (
	pathVerify    = "/v1/verify"
	pathReport    = "/v1/report"
	pathBind      = "/v1/bind"
	pathStatus    = "/v1/status"
	pathHeartbeat = "/v1/heartbeat"
	pathFleet     = "/v1/fleet"
	pathFleetPage = "/fleet"
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

// writeError answers the platform's failure: 200, {"error": card.Error}.
func writeError(w http.ResponseWriter, e *card.Error) {
	writeFailure(w, http.StatusOK, e) // the platform's answer travels in the body
}

// writeBadRequest answers a malformed request: 400, {"error": card.Error}
// of class rejected.
func writeBadRequest(w http.ResponseWriter, err error) {
	writeFailure(w, http.StatusBadRequest, &card.Error{Class: card.Rejected, Msg: err.Error()})
}

// writeFailure answers status with {"error": e}.
func writeFailure(w http.ResponseWriter, status int, e *card.Error) {
	jsonHeader(w)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": e})
}
