package app

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"scanagent/internal/queue"
	"scanagent/internal/verify"
)

// Outbox record kinds.
const (
	kindReport = "report" // reportHISData
	kindBind   = "bind"   // bindCardRelation
)

// recorder is what producers need of the outbox: a durable enqueue with
// an optional idempotency key.
type recorder interface {
	EnqueueKeyed(ctx context.Context, kind, key string, payload []byte) (uint64, error)
}

var _ recorder = (*queue.Queue)(nil)

// platformSender adapts the platform client to the outbox: it decodes a
// record, makes the call with the record's requestId and turns the answer
// into a verdict (SPEC §4).
type platformSender struct {
	p     verify.Upstream
	pause time.Duration
	now   func() time.Time
}

var _ queue.Sender = platformSender{}

func (s platformSender) Send(ctx context.Context, kind string, payload []byte, requestID string) queue.Verdict {
	var err error
	switch kind {
	case kindReport:
		var r verify.Report
		if err = json.Unmarshal(payload, &r); err == nil {
			err = s.p.ReportHISData(ctx, r, requestID)
		} else {
			return queue.Verdict{Outcome: queue.Dead, Reason: "unreadable report record: " + err.Error()}
		}
	case kindBind:
		var b verify.Binding
		if err = json.Unmarshal(payload, &b); err == nil {
			err = s.p.BindCardRelation(ctx, b, requestID)
		} else {
			return queue.Verdict{Outcome: queue.Dead, Reason: "unreadable binding record: " + err.Error()}
		}
	default:
		return queue.Verdict{Outcome: queue.Dead, Reason: fmt.Sprintf("unknown record kind %q", kind)}
	}
	return verdictOf(err, s.now, s.pause)
}

func verdictOf(err error, now func() time.Time, pause time.Duration) queue.Verdict {
	if err == nil {
		return queue.Verdict{Outcome: queue.Delivered}
	}
	e, ok := verify.AsError(err)
	if !ok {
		// Context ended mid-call: the request may have gone out.
		return queue.Verdict{Outcome: queue.Retry, Unknown: true, Reason: err.Error()}
	}
	switch e.Class {
	case verify.Duplicate:
		return queue.Verdict{Outcome: queue.Duplicate, Reason: e.Error()}
	case verify.RateLimited:
		until := e.RetryAfter
		if until.IsZero() {
			until = now().Add(pause)
		}
		return queue.Verdict{Outcome: queue.Pause, RetryAfter: until, Reason: e.Error()}
	case verify.Fatal, verify.Rejected:
		return queue.Verdict{Outcome: queue.Dead, Reason: e.Error()}
	case verify.TokenExpired:
		// 21003/21004 on a queued record: the token was dropped and the
		// request not processed, so its requestId is spent; the next
		// attempt, after the usual backoff, gets a new one (unless this
		// attempt replayed an id whose first outcome is still unknown).
		return queue.Verdict{Outcome: queue.Retry, Reason: e.Error()}
	}
	return queue.Verdict{Outcome: queue.Retry, Unknown: e.Unknown, Reason: e.Error()}
}

// reportDefaults are a source's usage-report settings.
type reportDefaults struct {
	scene, channel, department string
}

// enqueueReport queues the reportHISData of a successful e-Health Card scan
// from a source with report settings, keyed by the scan. It returns the
// record's sequence.
func enqueueReport(ctx context.Context, rec recorder, d reportDefaults, scanID, qrCodeText string, at time.Time) (uint64, error) {
	payload, err := json.Marshal(verify.Report{QRCodeText: qrCodeText, Time: verify.FormatTime(at), Scene: d.scene,
		Department: d.department, CardType: "11", CardChannel: d.channel})
	if err != nil {
		return 0, err
	}
	return rec.EnqueueKeyed(ctx, kindReport, "scan:"+scanID, payload)
}
