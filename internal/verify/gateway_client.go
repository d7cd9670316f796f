package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"time"

	"scanagent/internal/card"
)

// The gateway wire, as a terminal's client calls it (the server is
// internal/gateway; the two share no code, and the contract test in
// internal/gateway keeps them compatible).
const (
	gwVerify = "/v1/verify"
	gwReport = "/v1/report"
	gwBind   = "/v1/bind"
)

// Upstream is a platform client's method set, what the direct client (EHC)
// and a terminal's gateway client (Gateway) both offer.
type Upstream interface {
	Verify(ctx context.Context, r card.Request) (card.Identity, error)
	ReportHISData(ctx context.Context, r card.Report, requestID string) error
	BindCardRelation(ctx context.Context, b card.Binding, requestID string) error
}

var _ Upstream = (*EHC)(nil)
var _ Upstream = (*Gateway)(nil)

// GatewayOptions configures a terminal's gateway client.
type GatewayOptions struct {
	URL             string
	Token           string
	HTTP            *http.Client
	Retries         int
	BreakerFailures int
	BreakerCooldown time.Duration
	Now             func() time.Time
}

// Gateway is a terminal's client of a scanagent gateway: the same methods
// as EHC, and no appSecret.
type Gateway struct {
	o    GatewayOptions
	gate *gate
}

// NewGateway returns a gateway client.
func NewGateway(o GatewayOptions) *Gateway {
	if o.Now == nil {
		o.Now = time.Now
	}
	o.HTTP = withoutRedirects(o.HTTP)
	return &Gateway{o: o, gate: newGate(o.BreakerFailures, o.BreakerCooldown, time.Hour, o.Now)}
}

// Status reports the breaker state towards the gateway.
func (c *Gateway) Status() Status { return Status{Mode: "gateway", GateState: c.gate.state()} }

func (c *Gateway) call(ctx context.Context, api, path string, in, out any) error {
	p, err := c.gate.allow(api)
	if err != nil {
		return err
	}
	defer p.release() // frees a half-open trial however the call ends
	err = c.once(ctx, api, path, in, out)
	if ctx.Err() == nil {
		p.record(err)
	}
	return err
}

// gwError is a failure to get the gateway's answer.
func gwError(api string, unknown bool, msg string, err error) *card.Error {
	return &card.Error{API: api, Class: card.Retryable, Msg: "gateway: " + msg, Err: err, Unknown: unknown, Unavailable: true}
}

func (c *Gateway) once(ctx context.Context, api, path string, in, out any) error {
	a, err := c.post(ctx, api, path, in)
	if err != nil {
		return err
	}
	return c.interpret(api, path, a, out)
}

// post sends in to the gateway; a transport fault is card.Retryable, Unknown
// once the request was written; a redirect is not followed.
func (c *Gateway) post(ctx context.Context, api, path string, in any) (httpAnswer, error) {
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.o.URL, "/")+path, bytes.NewReader(body))
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
	return httpAnswer{status: resp.StatusCode, location: redirectTarget(resp), data: data}, nil
}

// interpret turns the gateway's answer into nil or an *card.Error. The gateway
// answers 200 (or 400 for a malformed request) with a JSON envelope; any
// other 5xx, 429 or 408 comes from something in between that may have
// forwarded the request, so its outcome is unknown.
func (c *Gateway) interpret(api, path string, a httpAnswer, out any) error {
	switch {
	case isRedirect(a.status):
		return &card.Error{API: api, Class: card.Fatal, Msg: "gateway: " + redirectMsg(a.status, strings.TrimRight(c.o.URL, "/")+path, a.location) + ": check platform.gateway_url"}
	case a.status == http.StatusUnauthorized:
		return &card.Error{API: api, Class: card.Fatal, Msg: "gateway refused this terminal's token (check platform.gateway_token)"}
	case a.status >= 500, a.status == http.StatusTooManyRequests, a.status == http.StatusRequestTimeout:
		return gwError(api, true, fmt.Sprintf("HTTP %d (the request may have been processed)", a.status), nil)
	case a.status != http.StatusOK && a.status != http.StatusBadRequest:
		return &card.Error{API: api, Class: card.Fatal, Msg: fmt.Sprintf("gateway: HTTP %d (check platform.gateway_url)", a.status)}
	}
	var ans struct {
		Result json.RawMessage `json:"result"`
		Error  *card.Error     `json:"error"`
	}
	if err := json.Unmarshal(a.data, &ans); err != nil {
		return gwError(api, true, "answer is not JSON", nil)
	}
	if ans.Error != nil {
		return ans.Error
	}
	if out != nil && len(ans.Result) > 0 {
		if err := json.Unmarshal(ans.Result, out); err != nil {
			return gwError(api, true, "answer has an unexpected shape", err)
		}
	}
	return nil
}

// Verify asks the gateway to verify r.
func (c *Gateway) Verify(ctx context.Context, r card.Request) (card.Identity, error) {
	return retry(ctx, c.o.Retries, r.Kind == card.KindEHCDynamic, func() (card.Identity, error) {
		var id card.Identity
		err := c.call(ctx, "verify", gwVerify, r, &id)
		return id, err
	})
}

// ReportHISData forwards a usage report.
func (c *Gateway) ReportHISData(ctx context.Context, r card.Report, requestID string) error {
	return c.call(ctx, APIReportHISData, gwReport, map[string]any{"requestId": requestID, "report": r}, nil)
}

// BindCardRelation forwards a binding.
func (c *Gateway) BindCardRelation(ctx context.Context, b card.Binding, requestID string) error {
	return c.call(ctx, APIBindCardRelation, gwBind, map[string]any{"requestId": requestID, "binding": b}, nil)
}
