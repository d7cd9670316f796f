// Package card is scanagent's domain model, the only definition of each of
// its ideas: the kinds of code a patient shows, the parsed code, the
// verification request, the verified identity, the visit (a scan and its
// outcome, as the HIS receives it), the usage records reported to the
// platform, and the code tables of the e-Health Card guide (§3.3) that
// configuration, the local API and the platform clients check values
// against. Every stage uses these types or narrower ones of its own. Pure:
// no I/O, no logging; the only side effect is reading random ids.
package card

import (
	"errors"
	"fmt"
)

// Kind names the type of a recognised code. The values are part of the
// agent's external interface (CLI output, HIS events, the gateway wire).
type Kind string

// Kinds of code.
const (
	KindEHCStatic  Kind = "ehc_static"  // e-Health Card static QR, <id>:1
	KindEHCDynamic Kind = "ehc_dynamic" // e-Health Card dynamic QR, <id>:0:<token>::<org>
	KindSKM        Kind = "skm"         // Su Kang Code URL
	KindIDCard     Kind = "id_card"     // resident ID card number
	KindCustom     Kind = "custom"      // hospital-defined type (hospital card, …)
)

// IsEHC reports whether k is an e-Health Card code.
func (k Kind) IsEHC() bool { return k == KindEHCStatic || k == KindEHCDynamic }

// Code is a recognised payload.
type Code struct {
	Kind Kind `json:"kind"`
	// Text is the normalised payload; for e-Health Card codes it is the
	// qrCodeText sent to the platform.
	Text string `json:"qrCodeText,omitempty"`
	// CardID is the e-Health Card id (the part before the first colon).
	CardID string `json:"cardId,omitempty"`
	// OrgCode is the issuing organisation of a dynamic code, or the optional
	// organisation suffix of a static one.
	OrgCode string `json:"orgCode,omitempty"`
	// IDNumber is a resident ID card number (upper-case X).
	IDNumber string `json:"idNumber,omitempty"`
	// Type is the configured name of a custom code type.
	Type string `json:"type,omitempty"`
	// Symbology is the AIM identifier stripped during normalisation, if any.
	Symbology string `json:"symbology,omitempty"`
}

// Reason classifies why a payload was rejected.
type Reason string

// Rejection reasons.
const (
	ReasonEmpty       Reason = "empty"
	ReasonTooLong     Reason = "too_long"
	ReasonBinary      Reason = "binary"
	ReasonBadChecksum Reason = "bad_checksum"
	ReasonBadShape    Reason = "bad_shape"
	ReasonUnknown     Reason = "unknown"
)

// RejectedError says why a payload is not a usable code. Its message never
// contains the payload itself.
type RejectedError struct {
	Reason Reason
	Detail string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("code rejected (%s): %s", e.Reason, e.Detail)
}

// IsRejected reports whether err is a rejection and returns it.
func IsRejected(err error) (*RejectedError, bool) {
	var r *RejectedError
	ok := errors.As(err, &r)
	return r, ok
}
