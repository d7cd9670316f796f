// Package his hands scan outcomes to the hospital information system and
// takes back what the HIS says about a card's use. Its local API is the
// integration point HIS vendors use (HTTP + WebSocket + Server-Sent Events,
// the pattern of the "read-card services" browser HIS already know): every
// outcome is pushed to connected clients, the last one can be fetched or the
// next one long-polled, and usage reports and card bindings posted by the HIS
// are queued durably before they are acknowledged, once checked against the
// guide's rules and code tables (internal/card). It imports no other stage:
// it consumes a UsageRecorder, and the code checks are injected.
package his

import (
	"context"
	"errors"
	"time"
)

// Identity is a patient's identity as the HIS receives it.
type Identity struct {
	Name         string `json:"name,omitempty"`
	Gender       string `json:"gender,omitempty"`
	Nation       string `json:"nation,omitempty"`
	Birthday     string `json:"birthday,omitempty"`
	IDType       string `json:"idType,omitempty"`
	IDNumber     string `json:"idNumber,omitempty"`
	Phone        string `json:"phone,omitempty"`
	Address      string `json:"address,omitempty"`
	PHID         string `json:"phid,omitempty"`
	HealthCardID string `json:"healthCardId,omitempty"`
	PatID        string `json:"patid,omitempty"`
	QRCodeText   string `json:"qrCodeText,omitempty"`
	CustomType   string `json:"customType,omitempty"`
	// Level and Tip are the Su Kang Code colour (green, yellow, red) and text.
	Level string `json:"level,omitempty"`
	Tip   string `json:"tip,omitempty"`
}

// Event is one scan outcome, as pushed to HIS clients.
type Event struct {
	Type     string    `json:"type"` // "scan"
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	Source   string    `json:"source"`
	Kind     string    `json:"kind,omitempty"`
	Verified bool      `json:"verified"`
	// Offline: the platform was unreachable and the code was handed over
	// unverified under the offline policy.
	Offline  bool        `json:"offline,omitempty"`
	Identity *Identity   `json:"identity,omitempty"`
	Error    *EventError `json:"error,omitempty"`
	Latency  float64     `json:"latencyMs"`
}

// EventError says why a scan was refused.
type EventError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Usage is the HIS's account of how a card was used (reportHISData).
type Usage struct {
	ScanID       string `json:"scanId,omitempty"`
	QRCodeText   string `json:"qrCodeText,omitempty"`
	IDCardNumber string `json:"idCardNumber,omitempty"`
	Name         string `json:"name,omitempty"`
	Scene        string `json:"scene"`
	Department   string `json:"department,omitempty"`
	CardType     string `json:"cardType,omitempty"`
	CardChannel  string `json:"cardChannel,omitempty"`
	Time         string `json:"time,omitempty"`
	// IdempotencyKey comes from the Idempotency-Key header: a retried POST
	// with the same key is queued once.
	IdempotencyKey string `json:"-"`
	// BodyDigest is the hex SHA-256 of the request as the HIS sent it
	// (before a scanId is resolved or defaults filled): a recorder that
	// keeps it with IdempotencyKey returns ErrIdempotencyConflict when the
	// key comes back with another digest.
	BodyDigest string `json:"-"`
}

// Binding asks for a bindCardRelation.
type Binding struct {
	ScanID     string `json:"scanId,omitempty"`
	QRCodeText string `json:"qrCodeText,omitempty"`
	PatID      string `json:"patid"`
	// IdempotencyKey, BodyDigest: see Usage.
	IdempotencyKey string `json:"-"`
	BodyDigest     string `json:"-"`
}

// UsageRecorder queues usage reports and bindings durably; the outbox
// (through internal/app) satisfies it. It returns the record's id once the
// record is on disk.
type UsageRecorder interface {
	RecordUsage(ctx context.Context, u Usage) (string, error)
	RecordBinding(ctx context.Context, b Binding) (string, error)
}

// ErrQueueRefused is returned by a UsageRecorder whose queue refuses the
// record (full, disk full, closing): the API answers 503.
var ErrQueueRefused = errors.New("queue refused the record")

// ErrIdempotencyConflict is returned by a UsageRecorder that already holds
// the record's IdempotencyKey with another BodyDigest: the API answers 409.
var ErrIdempotencyConflict = errors.New("idempotency key already used with a different body")

// Sink receives every scan outcome.
type Sink interface {
	Deliver(ctx context.Context, e Event) error
}
