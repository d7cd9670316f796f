package visit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"scanagent/internal/card"
)

// Resolve turns a scan into its visit: parsed, verified by the verifier of
// its kind, with the identity or the reason it was refused. It does not
// deliver, log or report.
func (p *Pipeline) Resolve(ctx context.Context, sc card.Scan) card.Visit {
	v := card.Visit{Type: "scan", ID: card.NewScanID(sc.At), Time: sc.At, Source: sc.Source}
	if sc.Overflow {
		p.o.Stats.Rejected.Add(1)
		v.Error = &card.VisitError{Code: string(card.ReasonTooLong), Message: "scan longer than the source's max_frame"}
		return v
	}
	c, err := p.o.Parser.Parse(sc.Data)
	if err != nil {
		p.o.Stats.Rejected.Add(1)
		reason := card.ReasonUnknown
		if r, ok := card.IsRejected(err); ok {
			reason = r.Reason
		}
		v.Error = &card.VisitError{Code: string(reason), Message: err.Error()}
		return v
	}
	v.Kind = c.Kind
	start := p.o.Now()
	id, verified, slow, err := p.verifyWithin(ctx, c, sc.Source)
	if p.verifierFor(c.Kind) != nil {
		v.PlatformLatency = float64(p.o.Now().Sub(start).Microseconds()) / 1000
	}
	switch {
	case err == nil:
		v.Identity, v.Verified = &id, verified
		p.count(verified)
	case c.Kind == card.KindEHCStatic && (isOffline(err) || slow) && p.o.Offline == OfflineUnverified:
		// A static code names the card for good: the HIS can take it now
		// and the visit is reported when the platform is back.
		p.o.Stats.Unverified.Add(1)
		v.Offline = true
		v.Identity = &card.Identity{QRCodeText: c.Text}
		v.Error = &card.VisitError{Code: "offline", Message: "platform unreachable: card handed over unverified (agent.offline = \"unverified\")"}
	case slow:
		p.o.Stats.Failed.Add(1)
		v.Error = &card.VisitError{Code: "platform_slow", Message: "platform slow: retry or use an ID card"}
	default:
		p.o.Stats.Failed.Add(1)
		v.Error = refusal(err, c.Kind)
	}
	return v
}

// verifyWithin verifies within Options.Budget. Past the budget it gives up
// waiting (slow) but leaves the call running to its own timeout, so that a
// hung platform still counts as failing and the breaker opens: the scans
// after the first few then fail at once instead of each waiting the budget.
func (p *Pipeline) verifyWithin(ctx context.Context, c card.Code, source string) (id card.Identity, verified, slow bool, err error) {
	if p.o.Budget <= 0 || p.verifierFor(c.Kind) == nil {
		id, verified, err = p.verify(ctx, c, source)
		return id, verified, false, err
	}
	type result struct {
		id       card.Identity
		verified bool
		err      error
	}
	done := make(chan result, 1)
	go func() {
		id, verified, err := p.verify(ctx, c, source)
		done <- result{id, verified, err}
	}()
	t := time.NewTimer(p.o.Budget)
	defer t.Stop()
	select {
	case r := <-done:
		return r.id, r.verified, false, r.err
	case <-t.C:
		return card.Identity{}, false, true, errSlow
	}
}

// verifierFor is the platform client that verifies kind, nil when none
// does (ID numbers, custom codes) or its platform is switched off.
func (p *Pipeline) verifierFor(kind card.Kind) Verifier {
	switch {
	case kind.IsEHC():
		return p.o.EHC
	case kind == card.KindSKM:
		return p.o.SKM
	}
	return nil
}

// errSlow is a verification that outlasted the budget.
var errSlow = errors.New("the platform did not answer within agent.platform_budget")

func (p *Pipeline) count(verified bool) {
	if verified {
		p.o.Stats.Verified.Add(1)
	} else {
		p.o.Stats.Unverified.Add(1)
	}
}

// verify routes a code to the verifier of its kind. e-Health Card codes go
// to the platform (a dynamic one with the source's 用卡环节 and channel:
// verifyQRCode is its visit's usage record, guide §3.2.11), Su Kang Codes
// to the SKM service; ID numbers and custom codes are handed over as read,
// unverified.
func (p *Pipeline) verify(ctx context.Context, c card.Code, source string) (card.Identity, bool, error) {
	req := card.Request{Kind: c.Kind, Text: c.Text, IDNumber: c.IDNumber}
	switch c.Kind {
	case card.KindEHCStatic, card.KindEHCDynamic:
		if p.o.EHC == nil {
			return card.Identity{}, false, &card.Error{API: "verify", Class: card.Rejected, Msg: "e-Health Card codes are not accepted here (platform.mode = \"off\")"}
		}
		if d, ok := p.o.Reports[source]; ok && c.Kind == card.KindEHCDynamic {
			req.MedicalStep, req.UseScene, req.UseChannel = d.Scene, d.Scene, d.Channel
		}
		id, err := p.o.EHC.Verify(ctx, req)
		return id, err == nil, err
	case card.KindSKM:
		if p.o.SKM == nil {
			return card.Identity{}, false, &card.Error{API: "verify", Class: card.Rejected, Msg: "Su Kang Codes are not accepted here ([skm] is not enabled)"}
		}
		id, err := p.o.SKM.Verify(ctx, req)
		return id, err == nil, err
	case card.KindIDCard:
		return card.Identity{IDNumber: c.IDNumber, IDType: card.CardTypeIDCard}, false, nil
	}
	return card.Identity{QRCodeText: c.Text, CustomType: c.Type}, false, nil
}

// isOffline reports whether err means the platform cannot be reached (the
// offline policy applies).
func isOffline(err error) bool {
	e, ok := card.AsError(err)
	return ok && e.Unavailable
}

// refusal is what the HIS is told about a scan that was not verified.
func refusal(err error, kind card.Kind) *card.VisitError {
	e, ok := card.AsError(err)
	if !ok {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return &card.VisitError{Code: "timeout", Message: "verification did not finish in time"}
		}
		return &card.VisitError{Code: "error", Message: err.Error()}
	}
	switch {
	case e.Unavailable && kind == card.KindEHCDynamic:
		return &card.VisitError{Code: "offline", Message: "platform unreachable: a dynamic code cannot be verified offline; ask for an ID card or retry"}
	case e.Unavailable:
		return &card.VisitError{Code: "offline", Message: "platform unreachable: " + e.Msg}
	case e.Class == card.Rejected && e.Code != 0:
		return &card.VisitError{Code: fmt.Sprintf("platform_%d", e.Code), Message: e.Msg}
	}
	return &card.VisitError{Code: e.Class.String(), Message: e.Error()}
}
