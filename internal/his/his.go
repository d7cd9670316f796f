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

	"scanagent/internal/card"
)

// Usage is the HIS's account of how a card was used: a reportHISData,
// or a scan of which the report is derived.
type Usage struct {
	ScanID string `json:"scanId,omitempty"`
	card.Report
	// IdempotencyKey comes from the Idempotency-Key header: a retried POST
	// with the same key is queued once.
	IdempotencyKey string `json:"-"`
	// BodyDigest is the hex SHA-256 of the request as the HIS sent it
	// (before a scanId is resolved or defaults filled): a recorder that
	// keeps it with IdempotencyKey returns ErrIdempotencyConflict when the
	// key comes back with another digest.
	BodyDigest string `json:"-"`
}

// Binding asks for a bindCardRelation, of a card or of a scan's card.
type Binding struct {
	ScanID string `json:"scanId,omitempty"`
	card.Binding
	// IdempotencyKey, BodyDigest: see Usage.
	IdempotencyKey string `json:"-"`
	BodyDigest     string `json:"-"`
}

// UsageRecorder queues usage reports and bindings durably; the outbox
// (through internal/agent and internal/visit) satisfies it. It returns the record's id once the
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
	Deliver(ctx context.Context, e card.Visit) error
}
