package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/backoff"
	"scanagent/internal/card"
	"scanagent/internal/verify/sign"
)

// API names of the e-Health Card open platform.
const (
	APIGetAppToken           = "getAppToken"
	APIGetHealthCardByQRCode = "getHealthCardByQRCode"
	APIVerifyQRCode          = "verifyQRCode"
	APIReportHISData         = "reportHISData"
	APIBindCardRelation      = "bindCardRelation"
)

// MaxResponse caps how much of a platform answer is read.
const MaxResponse = 1 << 20

// EHCOptions configures the e-Health Card client.
type EHCOptions struct {
	AppID      string
	AppSecret  string
	HospitalID string
	// BaseURL is the ISVOpenObj base; TokenURL the full getAppToken URL;
	// URLs overrides single APIs by name.
	BaseURL  string
	TokenURL string
	URLs     map[string]string
	HTTP     *http.Client

	// verifyQRCode fields.
	TerminalID   string
	MedicalStep  string
	UseCityCode  string
	UseCityName  string
	HospitalCode string
	HospitalName string
	ChannelCode  string
	ChannelName  string
	// ReportIDField names the ID number in reportHISData.
	ReportIDField string

	// Retries of a retryable failure within one verification.
	Retries         int
	BreakerFailures int
	BreakerCooldown time.Duration
	RateLimitPause  time.Duration

	// Share, when set, makes this client one of several gateways that
	// share one appToken (internal/ha, on etcd): it is called once, with
	// the client's getAppToken, and the client then takes its token from
	// the share instead of fetching it itself. TokenWait bounds how long a
	// call waits for another gateway's new token (default 5 s).
	Share     func(fetch func(ctx context.Context) (token string, ttl time.Duration, err error)) TokenShare
	TokenWait time.Duration

	// Observe, when set, is told each HTTP attempt's API, result ("ok",
	// a card.Class name such as "retryable" or "rate_limited", or
	// "canceled") and duration: a call the gate refuses makes no attempt.
	Observe func(api, result string, d time.Duration)

	Log zerolog.Logger
	Now func() time.Time
}

// EHC is the e-Health Card open platform client. It holds the appToken for
// its appId, so exactly one EHC per appId may exist in a deployment (a
// gateway serves the others) — unless the EHCs share the token
// (EHCOptions.Share: several gateways, one of them elected to fetch).
// Safe for concurrent use.
type EHC struct {
	o      EHCOptions
	tokens tokens
	gate   *gate
}

// NewEHC returns a client.
func NewEHC(o EHCOptions) *EHC {
	if o.Now == nil {
		o.Now = time.Now
	}
	o.HTTP = withoutRedirects(o.HTTP)
	if o.ReportIDField == "" {
		o.ReportIDField = "idCardNumber"
	}
	if o.MedicalStep == "" {
		o.MedicalStep = "010101"
	}
	c := &EHC{o: o, gate: newGate(o.BreakerFailures, o.BreakerCooldown, o.RateLimitPause, o.Now)}
	timeout := o.HTTP.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if o.Share != nil {
		c.tokens = newSharedTokens(o.Share(c.fetchToken), o.TokenWait, timeout, o.Now)
	} else {
		c.tokens = newTokenHolder(c.fetchToken, o.Now, timeout)
	}
	return c
}

// Status is the client's state for status pages and metrics.
type Status struct {
	Mode     string        `json:"mode"`
	TokenAge time.Duration `json:"tokenAgeNs"`
	GateState
	// Gateways is each gateway's breaker, for a terminal with several.
	Gateways []GatewayState `json:"gateways,omitempty"`
}

// Status reports token age, breaker and last errors.
func (c *EHC) Status() Status {
	return Status{Mode: "direct", TokenAge: c.tokens.Age(), GateState: c.gate.state()}
}

func (c *EHC) url(api string) string {
	if u := c.o.URLs[api]; u != "" {
		return u
	}
	if api == APIGetAppToken {
		return c.o.TokenURL
	}
	return strings.TrimRight(c.o.BaseURL, "/") + "/" + api
}

func (c *EHC) fetchToken(ctx context.Context) (string, time.Duration, error) {
	var rsp struct {
		AppToken  string      `json:"appToken"`
		ExpiresIn json.Number `json:"expiresIn"`
	}
	if err := c.once(ctx, APIGetAppToken, "", card.NewRequestID(), map[string]any{"appId": c.o.AppID}, &rsp); err != nil {
		return "", 0, err
	}
	if rsp.AppToken == "" {
		return "", 0, &card.Error{API: APIGetAppToken, Class: card.Retryable, Msg: "answer carries no appToken", Unknown: true}
	}
	ttl := 7200 * time.Second
	if n, err := strconv.ParseFloat(rsp.ExpiresIn.String(), 64); err == nil && n > 0 {
		ttl = time.Duration(n * float64(time.Second))
	}
	c.o.Log.Info().Dur("ttl", ttl).Msg("appToken fetched")
	return rsp.AppToken, ttl, nil
}

// call makes one API call through the gate with the token rule.
func (c *EHC) call(ctx context.Context, api, requestID string, req map[string]any, out any) error {
	p, err := c.gate.allow(api)
	if err != nil {
		return err
	}
	defer p.release() // frees a half-open trial however the call ends
	err = c.withToken(ctx, api, requestID, req, out)
	if ctx.Err() == nil {
		p.record(err)
	}
	return err
}

// withToken makes the call with a live appToken. On 21003/21004 the token
// is invalidated. A fresh call (no requestID) is then retried once with a
// new token and a new requestId (SPEC §4). A caller-supplied requestId (a
// queued record) is not retried here: the platform answered it, so the id
// is spent (guide FAQ 2: a different requestId for every request) and a
// platform that remembers ids would answer its replay with 10054. The
// caller gets a definite (not Unknown) card.TokenExpired error and retries with
// a new id, which it persists before sending.
func (c *EHC) withToken(ctx context.Context, api, requestID string, req map[string]any, out any) error {
	fresh := requestID == ""
	attempts := 1
	if fresh {
		attempts = 2
	}
	var err error
	for range attempts {
		id := requestID
		if fresh {
			id = card.NewRequestID()
		}
		tok, terr := c.tokens.Token(ctx)
		if terr != nil {
			return terr
		}
		err = c.once(ctx, api, tok, id, req, out)
		if card.ClassOf(err) != card.TokenExpired {
			return err
		}
		c.tokens.Invalidate(tok)
		c.o.Log.Warn().Str("api", api).Err(err).Bool("queued", !fresh).Msg("appToken rejected; token dropped")
	}
	e, _ := card.AsError(err)
	if fresh {
		// A fresh token died at once: 21004 is "illegal appToken or
		// hospitalId" (guide §3.2.12), so the hospital_id is wrong or
		// another process fetches tokens for this appId (SPEC §4 token
		// rule). The token holder now holds the next fetch off.
		e.Class = card.Retryable
		e.Msg += " (a fresh token was rejected too: check platform.hospital_id, and that no other system fetches tokens for this appId)"
	} else {
		e.Msg += " (token dropped; not processed: retry with a new requestId)"
	}
	return err
}

// once makes exactly one HTTP request and interprets the answer.
func (c *EHC) once(ctx context.Context, api, token, requestID string, req map[string]any, out any) error {
	text, body, err := c.encode(token, requestID, req)
	if err != nil {
		return ehcError(api, requestID, card.Fatal, false, "encode request", err)
	}
	start := c.o.Now()
	a, err := c.post(ctx, api, requestID, body)
	if err == nil {
		err = c.interpret(api, requestID, text, a, out)
	}
	if c.o.Observe != nil {
		c.o.Observe(api, attemptResult(err), c.o.Now().Sub(start))
	}
	return err
}

// attemptResult names the result of one attempt for Observe.
func attemptResult(err error) string {
	if err == nil {
		return "ok"
	}
	if _, ok := card.AsError(err); !ok && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return "canceled" // the caller gave up; a platform timeout is retryable
	}
	return card.ClassOf(err).String()
}

// ehcError is a failure of one request that carries no resultCode.
func ehcError(api, requestID string, class card.Class, unknown bool, msg string, err error) *card.Error {
	return &card.Error{API: api, Class: class, Msg: msg, Err: err, RequestID: requestID, Unknown: unknown, Unavailable: class == card.Retryable}
}

// encode signs a request and returns its signing text and body. Empty
// optional fields are omitted from the body (SPEC §2).
func (c *EHC) encode(token, requestID string, req map[string]any) (string, []byte, error) {
	commonIn := map[string]any{
		"appToken":   token,
		"requestId":  requestID,
		"hospitalId": c.o.HospitalID,
		"timestamp":  strconv.FormatInt(c.o.Now().Unix(), 10),
	}
	for k, v := range req {
		if s, ok := v.(string); ok && s == "" {
			delete(req, k)
		}
	}
	text := sign.Text(commonIn, req)
	commonIn["sign"] = sign.Sign(text, c.o.AppSecret)
	body, err := json.Marshal(map[string]any{"commonIn": commonIn, "req": req})
	return text, body, err
}

// httpAnswer is what one request got back.
type httpAnswer struct {
	status int
	// location is a redirect's target with query, fragment and
	// credentials removed (they may carry secrets).
	location string
	data     []byte
	took     time.Duration
	// unserved: a gateway's 503 marked UnservedHeader.
	unserved bool
}

// post sends body to api's URL. A transport fault is card.Retryable, Unknown
// once the request was written; a redirect is not followed.
func (c *EHC) post(ctx context.Context, api, requestID string, body []byte) (httpAnswer, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url(api), bytes.NewReader(body))
	if err != nil {
		return httpAnswer{}, ehcError(api, requestID, card.Fatal, false, "bad URL", err)
	}
	hreq.Header.Set("Content-Type", "application/json; charset=utf-8")
	var wrote bool
	hreq = hreq.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote = true },
	}))
	start := c.o.Now()
	resp, err := c.o.HTTP.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return httpAnswer{}, ctx.Err()
		}
		return httpAnswer{}, ehcError(api, requestID, card.Retryable, wrote, "request failed", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil {
		return httpAnswer{}, ehcError(api, requestID, card.Retryable, true, "reading answer failed", err)
	}
	return httpAnswer{status: resp.StatusCode, location: redirectTarget(resp), data: data, took: c.o.Now().Sub(start)}, nil
}

// interpret turns an HTTP answer into nil or an *card.Error, decoding rsp into
// out.
func (c *EHC) interpret(api, requestID, text string, a httpAnswer, out any) error {
	log := c.o.Log.Debug().Str("api", api).Str("requestId", requestID).Int("status", a.status).Dur("took", a.took)
	if a.status != http.StatusOK {
		log.Msg("platform HTTP error")
		return c.statusError(api, requestID, text, a)
	}
	if len(a.data) > MaxResponse {
		return ehcError(api, requestID, card.Retryable, true, fmt.Sprintf("answer larger than %d bytes", MaxResponse), nil)
	}
	ans, msg := decodeAnswer(a.data)
	if msg != "" {
		return ehcError(api, requestID, card.Retryable, true, msg, nil)
	}
	log.Int("resultCode", ans.code).Msg("platform answered")
	if ans.code != 0 {
		return c.resultError(api, requestID, text, ans)
	}
	if ans.requestID != "" && ans.requestID != requestID {
		return ehcError(api, requestID, card.Retryable, true, "answer echoes another requestId", nil)
	}
	if out != nil && len(ans.rsp) > 0 && string(ans.rsp) != "null" {
		if err := json.Unmarshal(ans.rsp, out); err != nil {
			return ehcError(api, requestID, card.Retryable, true, "answer rsp has an unexpected shape", err)
		}
	}
	return nil
}

// statusError classifies an answer with an HTTP status other than 200. A
// proxy or gateway may answer 429, 503 or any 5xx after forwarding the
// request, so those outcomes are unknown, unless the body is the
// platform's own answer to this request with a resultCode of the guide's
// table, which is definite.
func (c *EHC) statusError(api, requestID, text string, a httpAnswer) error {
	if isRedirect(a.status) {
		return ehcError(api, requestID, card.Fatal, false, redirectMsg(a.status, c.url(api), a.location)+": check the platform URLs", nil)
	}
	if ans, msg := decodeAnswer(a.data); msg == "" && ans.code != 0 && guideCodes[ans.code] && (ans.requestID == "" || ans.requestID == requestID) {
		return c.resultError(api, requestID, text, ans)
	}
	switch {
	case a.status >= 500, a.status == http.StatusTooManyRequests, a.status == http.StatusRequestTimeout:
		return ehcError(api, requestID, card.Retryable, true, fmt.Sprintf("HTTP %d from platform (the request may have been processed)", a.status), nil)
	}
	return ehcError(api, requestID, card.Fatal, false, fmt.Sprintf("HTTP %d from platform (check the URL)", a.status), nil)
}

// resultError is the error of a non-zero resultCode. A configuration error
// is logged with the signed keys (never the values or the secret).
func (c *EHC) resultError(api, requestID, text string, ans platformAnswer) error {
	e := &card.Error{API: api, Class: Classify(ans.code), Code: ans.code, Msg: ans.msg, RequestID: requestID}
	if e.Class == card.Fatal {
		keys := strings.Split(text, "&")
		for i, kv := range keys {
			keys[i], _, _ = strings.Cut(kv, "=")
		}
		c.o.Log.Error().Str("api", api).Int("resultCode", ans.code).Str("errMsg", ans.msg).
			Strs("signedKeys", keys).Msg("platform refused the configuration (check app_id, app_secret, hospital_id; `scanagent debug sign` shows the signing text)")
	}
	return e
}

// platformAnswer is a decoded {"commonOut":{...},"rsp":...}.
type platformAnswer struct {
	requestID string
	code      int
	msg       string
	rsp       json.RawMessage
}

// decodeAnswer decodes a platform answer; msg says what is wrong with one
// that is not.
func decodeAnswer(data []byte) (a platformAnswer, msg string) {
	var ans struct {
		CommonOut *struct {
			RequestID  string      `json:"requestId"`
			ResultCode json.Number `json:"resultCode"`
			ErrMsg     string      `json:"errMsg"`
		} `json:"commonOut"`
		Rsp json.RawMessage `json:"rsp"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&ans); err != nil {
		return a, "answer is not JSON (" + snippet(data) + ")"
	}
	if ans.CommonOut == nil {
		return a, "answer has no commonOut"
	}
	code, err := strconv.Atoi(ans.CommonOut.ResultCode.String())
	if err != nil {
		return a, "answer has a non-integer resultCode"
	}
	return platformAnswer{requestID: ans.CommonOut.RequestID, code: code, msg: ans.CommonOut.ErrMsg, rsp: ans.Rsp}, ""
}

// snippet describes a non-JSON answer without copying much of it.
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(strings.ToLower(s), "<") {
		return "an HTML page"
	}
	if len(s) > 32 {
		s = s[:32] + "…"
	}
	return strconv.Quote(s)
}

// platformCard is the card of getHealthCardByQRCode and the flat answer of
// verifyQRCode.
type platformCard struct {
	QRCodeText   string `json:"qrCodeText"`
	Name         string `json:"name"`
	Gender       string `json:"gender"`
	Nation       string `json:"nation"`
	Birthday     string `json:"birthday"`
	IDNumber     string `json:"idNumber"`
	IDType       string `json:"idType"`
	Address      string `json:"address"`
	Phone        string `json:"phone"`
	Phone1       string `json:"phone1"`
	PHID         string `json:"phid"`
	PatID        string `json:"patid"`
	HealthCardID string `json:"healthCardId"`
}

func (k platformCard) identity(text string) card.Identity {
	phone := k.Phone1
	if phone == "" {
		phone = k.Phone
	}
	if k.QRCodeText != "" {
		text = k.QRCodeText
	}
	return card.Identity{
		QRCodeText: text, Name: k.Name, Gender: k.Gender, Nation: k.Nation,
		Birthday: k.Birthday, IDType: NormalizeIDType(k.IDType), IDNumber: strings.ToUpper(k.IDNumber), Phone: phone,
		Address: k.Address, PHID: k.PHID, HealthCardID: k.HealthCardID, PatID: k.PatID,
	}
}

// Verify looks up a static code (getHealthCardByQRCode) or verifies a
// dynamic one (verifyQRCode), retrying platform faults with backoff. A
// dynamic code is retried only when the failed attempt was never sent: the
// platform may consume it.
func (c *EHC) Verify(ctx context.Context, r card.Request) (card.Identity, error) {
	switch r.Kind {
	case card.KindEHCStatic:
		return retry(ctx, c.o.Retries, false, func() (card.Identity, error) { return c.verifyStatic(ctx, r) })
	case card.KindEHCDynamic:
		return retry(ctx, c.o.Retries, true, func() (card.Identity, error) { return c.verifyDynamic(ctx, r) })
	}
	return card.Identity{}, &card.Error{API: "verify", Class: card.Rejected, Msg: "the e-Health Card platform does not verify " + string(r.Kind) + " codes"}
}

func (c *EHC) verifyStatic(ctx context.Context, r card.Request) (card.Identity, error) {
	var rsp struct {
		Card *platformCard `json:"card"`
	}
	if err := c.call(ctx, APIGetHealthCardByQRCode, "", map[string]any{"qrCodeText": r.Text}, &rsp); err != nil {
		return card.Identity{}, err
	}
	if rsp.Card == nil {
		return card.Identity{}, &card.Error{API: APIGetHealthCardByQRCode, Class: card.Retryable, Msg: "answer carries no card", Unknown: true}
	}
	return rsp.Card.identity(r.Text), nil
}

// verifyDynamic calls verifyQRCode, whose request is also the visit's
// usage record (guide §3.2.11): the per-scan medicalStep, useScene and
// useChannel travel with it.
func (c *EHC) verifyDynamic(ctx context.Context, r card.Request) (card.Identity, error) {
	step := r.MedicalStep
	if step == "" {
		step = c.o.MedicalStep
	}
	term := r.TerminalID
	if term == "" {
		term = c.o.TerminalID
	}
	req := map[string]any{
		"qrCodeText": r.Text, "terminalId": term, "time": card.FormatTime(c.o.Now()), "medicalStep": step,
		"useCityCode": c.o.UseCityCode, "useCityName": c.o.UseCityName,
		"hospitalCode": c.o.HospitalCode, "hospitalName": c.o.HospitalName,
		"channelCode": c.o.ChannelCode, "channelName": c.o.ChannelName,
		"useScene": r.UseScene, "useChannel": r.UseChannel,
	}
	var rsp platformCard
	if err := c.call(ctx, APIVerifyQRCode, "", req, &rsp); err != nil {
		return card.Identity{}, err
	}
	if rsp.Name == "" && rsp.IDNumber == "" && rsp.HealthCardID == "" {
		return card.Identity{}, &card.Error{API: APIVerifyQRCode, Class: card.Retryable, Msg: "answer carries no identity", Unknown: true}
	}
	return rsp.identity(r.Text), nil
}

// retry runs do up to 1+retries times while it fails retryably and the
// breaker is closed; with sendOnce, an attempt whose outcome is unknown is
// not repeated.
func retry(ctx context.Context, retries int, sendOnce bool, do func() (card.Identity, error)) (card.Identity, error) {
	policy := backoff.Policy{Min: 200 * time.Millisecond}
	for attempt := 0; ; attempt++ {
		id, err := do()
		e, ok := card.AsError(err)
		if err == nil || !ok || e.Class != card.Retryable || attempt >= retries || !e.RetryAfter.IsZero() || (sendOnce && e.Unknown) {
			return id, err
		}
		if cerr := backoff.Sleep(ctx, policy.Delay(attempt+1)); cerr != nil {
			return card.Identity{}, errors.Join(err, cerr)
		}
	}
}

// ReportHISData sends one usage report with the given requestId (a queued
// report keeps its requestId only while an attempt's outcome is unknown).
// card.TokenExpired means the token was dropped and the report not processed:
// retry with a new requestId.
func (c *EHC) ReportHISData(ctx context.Context, r card.Report, requestID string) error {
	req := map[string]any{
		"time": r.Time, "hospitalId": c.o.HospitalID, "scene": r.Scene, "department": r.Department,
		"cardType": r.CardType, "cardChannel": r.CardChannel,
	}
	if r.CardType == "11" {
		req["qrCodeText"] = r.QRCodeText
	} else {
		req[c.o.ReportIDField] = r.IDCardNumber
		req["name"] = r.Name
	}
	return c.call(ctx, APIReportHISData, requestID, req, nil)
}

// BindCardRelation binds a hospital patient id to a card.
func (c *EHC) BindCardRelation(ctx context.Context, b card.Binding, requestID string) error {
	var rsp struct {
		Result *bool `json:"result"`
	}
	if err := c.call(ctx, APIBindCardRelation, requestID, map[string]any{"patid": b.PatID, "qrCodeText": b.QRCodeText}, &rsp); err != nil {
		return err
	}
	switch {
	case rsp.Result == nil:
		// result is required (guide §3.2.6): an answer without it does
		// not say the binding was made. Unknown, so the next attempt
		// replays this requestId, and a 10054 then means it was.
		return &card.Error{API: APIBindCardRelation, Class: card.Retryable, Msg: "answer carries no result", RequestID: requestID, Unknown: true}
	case !*rsp.Result:
		return &card.Error{API: APIBindCardRelation, Class: card.Rejected, Msg: "platform answered result=false", RequestID: requestID}
	}
	return nil
}
