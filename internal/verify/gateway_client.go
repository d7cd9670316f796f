package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"time"

	"scanagent/internal/card"
)

// The gateway wire, as a terminal's client calls it (the server is
// internal/gateway; the two share no code, and the contract test in
// internal/gateway keeps them compatible).
const (
	gwVerify    = "/v1/verify"
	gwReport    = "/v1/report"
	gwBind      = "/v1/bind"
	gwHeartbeat = "/v1/heartbeat"
)

// APIHeartbeat names a terminal's heartbeat in breakers and errors.
const APIHeartbeat = "heartbeat"

// Upstream is a platform client's method set, what the direct client (EHC)
// and a terminal's gateway client (Gateway) both offer.
type Upstream interface {
	Verify(ctx context.Context, r card.Request) (card.Identity, error)
	ReportHISData(ctx context.Context, r card.Report, requestID string) error
	BindCardRelation(ctx context.Context, b card.Binding, requestID string) error
}

var _ Upstream = (*EHC)(nil)
var _ Upstream = (*Gateway)(nil)

// UnservedHeader marks a gateway's 503 that refused a call without
// processing it (a follower, with [gateway.ha] followers_serve = false):
// the terminal moves to its next gateway, even with a dynamic code. A 503
// without it may come from a proxy that forwarded the call: its outcome
// is unknown.
const UnservedHeader = "X-Scanagent-Unserved"

// GatewayOptions configures a terminal's gateway client.
type GatewayOptions struct {
	// URLs are the gateways, most preferred first; URL is the one-gateway
	// form, used when URLs is empty.
	URL             string
	URLs            []string
	Token           string
	HTTP            *http.Client
	Retries         int
	BreakerFailures int
	BreakerCooldown time.Duration
	Now             func() time.Time
}

// Gateway is a terminal's client of scanagent gateways: the same methods
// as EHC, and no appSecret. With several gateways each has its own
// breaker; a call that cannot reach one (connection error, timeout, 503)
// moves on to the next, and the first whose breaker is closed is always
// tried first, so the terminal returns to its preferred gateway once a
// trial call after the breaker's cooldown succeeds.
type Gateway struct {
	o     GatewayOptions
	urls  []string
	gates []*gate
}

// NewGateway returns a gateway client.
func NewGateway(o GatewayOptions) *Gateway {
	if o.Now == nil {
		o.Now = time.Now
	}
	o.HTTP = withoutRedirects(o.HTTP)
	urls := o.URLs
	if len(urls) == 0 {
		urls = []string{o.URL}
	}
	c := &Gateway{o: o, urls: urls}
	for range urls {
		c.gates = append(c.gates, newGate(o.BreakerFailures, o.BreakerCooldown, time.Hour, o.Now))
	}
	return c
}

// GatewayState is one gateway's breaker, for status pages.
type GatewayState struct {
	URL string `json:"url"`
	GateState
}

// Status reports the breaker towards the gateway in use (the first whose
// breaker is closed; the first when all are open) and, with several,
// each gateway's.
func (c *Gateway) Status() Status {
	states := make([]GateState, len(c.gates))
	for i, g := range c.gates {
		states[i] = g.state()
	}
	s := Status{Mode: "gateway", GateState: states[0]}
	for _, st := range states {
		if !st.BreakerOpen {
			s.GateState = st
			break
		}
	}
	if len(c.urls) > 1 {
		for i, st := range states {
			s.Gateways = append(s.Gateways, GatewayState{URL: bareGatewayURL(c.urls[i]), GateState: st})
		}
	}
	return s
}

// bareGatewayURL is u without credentials, query or fragment.
func bareGatewayURL(u string) string {
	if p, err := url.Parse(u); err == nil {
		return bareURL(p)
	}
	return u
}

// gwCall is one call of the gateway wire.
type gwCall struct {
	api, path string
	// requestID, when set, is the queued record's: an attempt whose
	// outcome is unknown is repeated with it on the next gateway, and the
	// platform's 10054 to the repeat means the first was processed (SPEC
	// §4).
	requestID string
	// sendOnce (a dynamic code, which the platform may consume) moves on
	// only after an attempt that surely was not processed.
	sendOnce bool
	// passive feeds the breakers only failures to reach a gateway (a
	// heartbeat: a gateway that takes it says nothing of the platform
	// behind it).
	passive bool
}

// call makes the call on the first gateway that answers it.
func (c *Gateway) call(ctx context.Context, k gwCall, in, out any) error {
	var err error
	unknown := false // an earlier attempt of this call may have been processed
	for i := range c.urls {
		allow := c.gates[i].allow
		if k.passive {
			allow = c.gates[i].allowPassive
		}
		p, gerr := allow(k.api)
		if gerr != nil {
			if err == nil {
				err = gerr
			}
			continue // breaker open: the next gateway
		}
		var moveOn bool
		moveOn, err = c.attempt(ctx, p, i, k, in, out)
		if !moveOn || ctx.Err() != nil {
			break
		}
		if e, ok := card.AsError(err); ok && e.Unknown {
			if k.sendOnce {
				break
			}
			unknown = true
		}
	}
	if unknown && k.requestID != "" {
		return replayed(err)
	}
	return err
}

// attempt calls gateway i; moveOn says the gateway could not be reached
// or refused to serve, so the next one should be tried.
func (c *Gateway) attempt(ctx context.Context, p *pass, i int, k gwCall, in, out any) (moveOn bool, err error) {
	defer p.release() // frees a half-open trial however the call ends
	a, err := c.post(ctx, k.api, c.urls[i], k.path, in)
	if err == nil {
		moveOn, err = c.interpret(k.api, c.urls[i], k.path, a, out)
	} else {
		moveOn = true
	}
	switch {
	case ctx.Err() != nil:
	case k.passive:
		p.note(err, !moveOn)
	default:
		p.record(err)
	}
	return moveOn, err
}

// replayed is the outcome of a queued record's call in which an earlier
// attempt's outcome was unknown and a later one, on another gateway,
// reused its requestId. 10054 means the earlier attempt was processed:
// delivered. A failure that says nothing of the earlier attempt (a fault,
// a refused token, a rate limit) leaves the outcome unknown, so the outbox
// keeps the requestId.
func replayed(err error) error {
	e, ok := card.AsError(err)
	if !ok {
		return err
	}
	switch e.Class {
	case card.Duplicate:
		return nil
	case card.Retryable, card.TokenExpired, card.RateLimited:
		cp := *e
		cp.Class, cp.Unknown = card.Retryable, true
		return &cp
	}
	return err
}

// gwError is a failure to get the gateway's answer.
func gwError(api string, unknown bool, msg string, err error) *card.Error {
	return &card.Error{API: api, Class: card.Retryable, Msg: "gateway: " + msg, Err: err, Unknown: unknown, Unavailable: true}
}

// post sends in to the gateway; a transport fault is card.Retryable, Unknown
// once the request was written; a redirect is not followed.
func (c *Gateway) post(ctx context.Context, api, base, path string, in any) (httpAnswer, error) {
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+path, bytes.NewReader(body))
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
	return httpAnswer{status: resp.StatusCode, location: redirectTarget(resp), data: data, unserved: resp.Header.Get(UnservedHeader) != ""}, nil
}

// interpret turns the gateway's answer into nil or an *card.Error, and
// whether the next gateway should be tried. The gateway answers 200 (or
// 400 for a malformed request) with a JSON envelope; a 503 marked
// UnservedHeader was not processed; any other 5xx, 429 or 408 comes from
// something in between that may have forwarded the request, so its
// outcome is unknown (502, 503 and 504 also move on: the gateway behind
// it is unreachable).
func (c *Gateway) interpret(api, base, path string, a httpAnswer, out any) (bool, error) {
	switch {
	case isRedirect(a.status):
		return false, &card.Error{API: api, Class: card.Fatal, Msg: "gateway: " + redirectMsg(a.status, strings.TrimRight(base, "/")+path, a.location) + ": check platform.gateway_url"}
	case a.status == http.StatusUnauthorized:
		return false, &card.Error{API: api, Class: card.Fatal, Msg: "gateway refused this terminal's token (check platform.gateway_token)"}
	case a.status == http.StatusServiceUnavailable && a.unserved:
		return true, gwError(api, false, "HTTP 503: this gateway does not serve now (a follower)", nil)
	case a.status >= 500, a.status == http.StatusTooManyRequests, a.status == http.StatusRequestTimeout:
		moveOn := a.status == http.StatusBadGateway || a.status == http.StatusServiceUnavailable || a.status == http.StatusGatewayTimeout
		return moveOn, gwError(api, true, fmt.Sprintf("HTTP %d (the request may have been processed)", a.status), nil)
	case a.status != http.StatusOK && a.status != http.StatusBadRequest:
		return false, &card.Error{API: api, Class: card.Fatal, Msg: fmt.Sprintf("gateway: HTTP %d (check platform.gateway_url)", a.status)}
	}
	var ans struct {
		Result json.RawMessage `json:"result"`
		Error  *card.Error     `json:"error"`
	}
	if err := json.Unmarshal(a.data, &ans); err != nil {
		return false, gwError(api, true, "answer is not JSON", nil)
	}
	if ans.Error != nil {
		return false, ans.Error
	}
	if out != nil && len(ans.Result) > 0 {
		if err := json.Unmarshal(ans.Result, out); err != nil {
			return false, gwError(api, true, "answer has an unexpected shape", err)
		}
	}
	return false, nil
}

// Verify asks the gateway to verify r.
func (c *Gateway) Verify(ctx context.Context, r card.Request) (card.Identity, error) {
	once := r.Kind == card.KindEHCDynamic
	return retry(ctx, c.o.Retries, once, func() (card.Identity, error) {
		var id card.Identity
		err := c.call(ctx, gwCall{api: "verify", path: gwVerify, sendOnce: once}, r, &id)
		return id, err
	})
}

// ReportHISData forwards a usage report.
func (c *Gateway) ReportHISData(ctx context.Context, r card.Report, requestID string) error {
	return c.call(ctx, gwCall{api: APIReportHISData, path: gwReport, requestID: requestID}, map[string]any{"requestId": requestID, "report": r}, nil)
}

// BindCardRelation forwards a binding.
func (c *Gateway) BindCardRelation(ctx context.Context, b card.Binding, requestID string) error {
	return c.call(ctx, gwCall{api: APIBindCardRelation, path: gwBind, requestID: requestID}, map[string]any{"requestId": requestID, "binding": b}, nil)
}

// Heartbeat sends the terminal's state (a fleet.Heartbeat; the gateway
// takes the terminal's id from its token) to the first gateway that takes
// it, through the same breakers and failover as the platform calls. It
// only feeds them failures to reach a gateway: a gateway that takes a
// heartbeat says nothing of the platform behind it, so a success neither
// closes a breaker nor resets its count, and a refusal (a gateway older
// than heartbeats answers 404) leaves them as they are.
func (c *Gateway) Heartbeat(ctx context.Context, hb any) error {
	return c.call(ctx, gwCall{api: APIHeartbeat, path: gwHeartbeat, passive: true}, hb, nil)
}
