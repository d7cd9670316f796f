package visit

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"scanagent/internal/card"
)

// pending is a visit's usage record on its way to the outbox.
type pending struct {
	key     string
	payload []byte
	done    func() // ends its journal entry; nil when not journaled
}

// reportOf is the usage record a visit owes, or nil: the one reportHISData
// of a static e-Health Card visit that reached the HIS (verified, or handed
// over unverified offline) from a source with report settings. A dynamic
// code's visit was counted by verifyQRCode itself (guide §3.2.11) and is
// never reported again; an ID number carries no name, so its visit is
// reported by the HIS through POST /v1/usage, once per scan (ReportKey).
func (p *Pipeline) reportOf(v card.Visit) *pending {
	d, ok := p.o.Reports[v.Source]
	if p.outbox == nil || !ok || v.Identity == nil || v.Kind != card.KindEHCStatic {
		return nil
	}
	payload, err := json.Marshal(d.StaticReport(v.Identity.QRCodeText, v.Time))
	if err != nil {
		return nil // a Report always encodes
	}
	return &pending{key: ReportKey(v.ID), payload: payload}
}

// announce writes the record to the outbox's journal before the hand-off.
// A failure (disk full) is not fatal: the commit after the hand-off still
// runs, and says why if it fails too.
func (p *Pipeline) announce(r *pending) *pending {
	if r == nil {
		return nil
	}
	done, err := p.outbox.Intend(card.RecordReport, r.key, r.payload)
	if err != nil {
		p.refusedLog.Warn().Err(err).Msg("usage report not journaled before the hand-off")
	}
	r.done = done
	return r
}

// commit queues the record durably, then ends its journal entry.
func (p *Pipeline) commit(ctx context.Context, v card.Visit, r *pending) {
	if r == nil {
		return
	}
	_, err := p.outbox.EnqueueKeyed(ctx, card.RecordReport, r.key, r.payload)
	if r.done != nil {
		r.done()
	}
	if err != nil {
		n := p.o.Stats.ReportsRefused.Add(1)
		// Sampled: with the disk full every scan is refused; one line a
		// minute says so, the counter says how often.
		p.refusedLog.Error().Err(err).Str("scan", v.ID).Int64("refusedTotal", n).
			Msg("usage report not queued (the identity reached the HIS; see scanagent_reports_refused_total)")
		return
	}
	p.o.Stats.Reports.Add(1)
}

// ReportKey is the outbox key of a visit's usage report: the pipeline's
// report of a static scan and the HIS's report of the same scan map to one
// record, so a visit is reported once.
func ReportKey(scanID string) string { return "scan:" + scanID }

// EnqueueReport queues a reportHISData under key.
func EnqueueReport(ctx context.Context, o Outbox, key string, r card.Report) error {
	_, err := Enqueue(ctx, o, card.RecordReport, key, r)
	return err
}

// Enqueue queues v's JSON as a record of kind under key.
func Enqueue(ctx context.Context, o Outbox, kind, key string, v any) (uint64, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encode %s record: %w", kind, err)
	}
	return o.EnqueueKeyed(ctx, kind, key, payload)
}

// DefaultReport is the report settings a HIS report without channel or
// department takes: those of the first source (by name) that has them.
func DefaultReport(reports map[string]card.ReportDefaults) card.ReportDefaults {
	first := ""
	for n := range reports {
		if first == "" || n < first {
			first = n
		}
	}
	return reports[first]
}

// Recorder queues the usage reports and card bindings the HIS posts
// (POST /v1/usage, /v1/bind), completed with the agent's report defaults.
type Recorder struct {
	Outbox   Outbox
	Defaults card.ReportDefaults
	Now      func() time.Time
}

// RecordUsage queues a reportHISData and returns the record's id. With a
// scanId it takes that scan's key (ReportKey): one visit, one report, even
// when the agent already reported that static scan or the HIS reports it
// twice. Otherwise an idempotency key, when given, keys the record.
func (r Recorder) RecordUsage(ctx context.Context, scanID, idemKey string, rep card.Report) (string, error) {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	r.Defaults.Fill(&rep, now())
	key := hisKey(idemKey)
	if scanID != "" {
		key = ReportKey(scanID)
	}
	return r.enqueue(ctx, card.RecordReport, key, rep)
}

// RecordBinding queues a bindCardRelation and returns the record's id.
func (r Recorder) RecordBinding(ctx context.Context, idemKey string, b card.Binding) (string, error) {
	return r.enqueue(ctx, card.RecordBind, hisKey(idemKey), b)
}

func (r Recorder) enqueue(ctx context.Context, kind, key string, v any) (string, error) {
	seq, err := Enqueue(ctx, r.Outbox, kind, key, v)
	if err != nil {
		return "", err
	}
	return strconv.FormatUint(seq, 10), nil
}

// hisKey is the outbox key of a HIS request's Idempotency-Key.
func hisKey(k string) string {
	if k == "" {
		return ""
	}
	return "his:" + k
}
