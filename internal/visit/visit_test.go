package visit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/internal/code"
	"scanagent/internal/visit"
)

// This file is the product in one table: what happens to each kind of code
// a patient shows, for each state the platform can be in, in both
// deployment shapes (SPEC §4, §5 and the README's "kind → calls → counted"
// table). Read it before changing route.go or report.go.

const (
	staticCode  = "C7DA29340C1A4C2B9F6E0A12B34C5D6E:1"
	dynamicCode = "D109C4C3B1E94A7F8E6D5C4B3A291807:0:B0E3CC5F50EF5DC663F094C985B58312::35020001001"
	skmCode     = "https://jsstm.jszwfw.gov.cn/jkm/2?t=ABCDEF0123456789"
	idNumber    = "432901198810228888"
	hospCard    = "HC0012345678"
	source      = "counter" // reports with 用卡环节 0101015 当日取号 through channel 0100 人工窗口
)

// platform states, as the verifiers report them.
type state string

const (
	up          state = "up"
	down        state = "down"         // no answer: connection refused, timeout, 5xx
	rejecting   state = "rejecting"    // the platform refuses this code (10008 健康卡授权码不存在; SKM 111 expired)
	rateLimited state = "rate-limited" // 10034 调用次数限制
	breakerOpen state = "breaker-open" // the client stopped calling after repeated faults
)

// mode is the deployment shape: the terminal calls the platform itself, or
// a scanagent gateway on the LAN that holds the secret. The gateway relays
// the platform's answer as the same typed error (its API name differs), so
// the policy is the same in both shapes: every row is run in both.
type mode string

const (
	direct  mode = "direct"
	gateway mode = "gateway"
)

// fakeVerifier is one platform in one state; it records the calls made.
type fakeVerifier struct {
	name  string // the platform API this kind is verified with
	state state
	mode  mode
	mu    sync.Mutex
	calls []string
}

func (f *fakeVerifier) Verify(_ context.Context, r card.Request) (card.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	call := f.name
	if r.UseScene != "" || r.UseChannel != "" {
		call += fmt.Sprintf(" medicalStep=%s useScene=%s useChannel=%s", r.MedicalStep, r.UseScene, r.UseChannel)
	}
	f.calls = append(f.calls, call)
	api := f.name
	if f.mode == gateway {
		api = "gateway"
	}
	switch f.state {
	case down:
		return card.Identity{}, &card.Error{API: api, Class: card.Retryable, Msg: "connection refused", Unavailable: true, Unknown: true}
	case breakerOpen:
		return card.Identity{}, &card.Error{API: api, Class: card.Retryable, Msg: "platform unavailable: circuit breaker open", Unavailable: true}
	case rateLimited:
		return card.Identity{}, &card.Error{API: api, Class: card.RateLimited, Code: 10034, Msg: "调用次数限制", RetryAfter: time.Now().Add(time.Hour)}
	case rejecting:
		if f.name == "skm" {
			return card.Identity{}, &card.Error{API: api, Class: card.Rejected, Code: 111, Msg: "二维码已过期"}
		}
		return card.Identity{}, &card.Error{API: api, Class: card.Rejected, Code: 10008, Msg: "健康卡授权码不存在"}
	}
	return card.Identity{Name: "龙小英", IDNumber: idNumber, IDType: "01", QRCodeText: r.Text}, nil
}

// fakeOutbox keeps what is queued, as "kind key scene cardType channel",
// and the journal entries announced and not yet ended.
type fakeOutbox struct {
	mu       sync.Mutex
	records  []string
	err      error
	intended map[string]bool
}

func (f *fakeOutbox) Intend(kind, key string, _ []byte) (func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.intended == nil {
		f.intended = map[string]bool{}
	}
	f.intended[kind+" "+key] = true
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.intended, kind+" "+key)
	}, nil
}

func (f *fakeOutbox) journaled() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.intended)
}

func (f *fakeOutbox) EnqueueKeyed(_ context.Context, kind, key string, payload []byte) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	var r card.Report
	if err := json.Unmarshal(payload, &r); err != nil {
		return 0, err
	}
	f.records = append(f.records, fmt.Sprintf("%s %s scene=%s cardType=%s channel=%s", kind, key, r.Scene, r.CardType, r.CardChannel))
	return uint64(len(f.records)), nil
}

type sinkFunc func(card.Visit)

func (f sinkFunc) Deliver(_ context.Context, v card.Visit) error { f(v); return nil }

// his is what the HIS is told: "verified", "unverified" (identity as read,
// or offline), or "refused <code>".
func his(v card.Visit) string {
	switch {
	case v.Identity != nil && v.Verified:
		return "verified"
	case v.Identity != nil && v.Offline:
		return "unverified offline"
	case v.Identity != nil:
		return "unverified"
	case v.Error != nil:
		return "refused " + v.Error.Code
	}
	return "nothing"
}

const (
	getCard  = "getHealthCardByQRCode"
	verifyQR = "verifyQRCode medicalStep=0101015 useScene=0101015 useChannel=0100"
	skmScan  = "skm"
	report   = "report scan:<id> scene=0101015 cardType=11 channel=0100" // reportHISData, queued
)

func TestVisitPolicy(t *testing.T) {
	tests := []struct {
		kind    string
		payload string
		state   state
		offline string   // agent.offline; "" = refuse
		his     string   // what the HIS is told
		calls   []string // the platform calls made for the scan
		records []string // the usage records queued by the agent
		counted string   // how the visit is counted on the platform
	}{
		// Static e-Health Card (<id>:1): looked up, then one reportHISData.
		{"static", staticCode, up, "", "verified", []string{getCard}, []string{report}, "reportHISData"},
		{"static", staticCode, down, "", "refused offline", []string{getCard}, nil, "not counted: refused"},
		{"static", staticCode, down, "unverified", "unverified offline", []string{getCard}, []string{report}, "reportHISData, sent when the platform is back"},
		{"static", staticCode, breakerOpen, "", "refused offline", []string{getCard}, nil, "not counted: refused"},
		{"static", staticCode, breakerOpen, "unverified", "unverified offline", []string{getCard}, []string{report}, "reportHISData, sent when the platform is back"},
		{"static", staticCode, rejecting, "unverified", "refused platform_10008", []string{getCard}, nil, "not counted: refused"},
		{"static", staticCode, rateLimited, "unverified", "refused rate_limited", []string{getCard}, nil, "not counted: refused"},
		// Dynamic e-Health Card (<id>:0:<token>::<org>): verifyQRCode is the
		// visit's usage record; never a reportHISData, never offline.
		{"dynamic", dynamicCode, up, "", "verified", []string{verifyQR}, nil, "verifyQRCode"},
		{"dynamic", dynamicCode, down, "unverified", "refused offline", []string{verifyQR}, nil, "not counted: refused"},
		{"dynamic", dynamicCode, breakerOpen, "unverified", "refused offline", []string{verifyQR}, nil, "not counted: refused"},
		{"dynamic", dynamicCode, rejecting, "", "refused platform_10008", []string{verifyQR}, nil, "not counted: refused"},
		{"dynamic", dynamicCode, rateLimited, "", "refused rate_limited", []string{verifyQR}, nil, "not counted: refused"},
		// Su Kang Code: verified by the SKM service; not an e-Health Card
		// visit, so nothing is reported.
		{"skm", skmCode, up, "", "verified", []string{skmScan}, nil, "not an e-Health Card visit"},
		{"skm", skmCode, down, "unverified", "refused offline", []string{skmScan}, nil, "not an e-Health Card visit"},
		{"skm", skmCode, breakerOpen, "", "refused offline", []string{skmScan}, nil, "not an e-Health Card visit"},
		{"skm", skmCode, rejecting, "", "refused platform_111", []string{skmScan}, nil, "not an e-Health Card visit"},
		{"skm", skmCode, rateLimited, "", "refused rate_limited", []string{skmScan}, nil, "not an e-Health Card visit"},
		// ID card number: handed over as read, whatever the platform's
		// state; it carries no name, so the HIS reports the visit
		// (POST /v1/usage with the scanId).
		{"id card", idNumber, up, "", "unverified", nil, nil, "by the HIS: POST /v1/usage"},
		{"id card", idNumber, down, "", "unverified", nil, nil, "by the HIS: POST /v1/usage"},
		{"id card", idNumber, breakerOpen, "", "unverified", nil, nil, "by the HIS: POST /v1/usage"},
		{"id card", idNumber, rejecting, "", "unverified", nil, nil, "by the HIS: POST /v1/usage"},
		{"id card", idNumber, rateLimited, "", "unverified", nil, nil, "by the HIS: POST /v1/usage"},
		// Hospital card (a configured custom type): handed over as read.
		{"custom", hospCard, up, "", "unverified", nil, nil, "not an e-Health Card visit"},
		{"custom", hospCard, down, "", "unverified", nil, nil, "not an e-Health Card visit"},
		// Garbage never reaches a platform.
		{"unknown", "hello world", up, "", "refused unknown", nil, nil, "not counted: refused"},
		{"bad checksum", "101102199809089988", up, "", "refused bad_checksum", nil, nil, "not counted: refused"},
	}
	for _, tt := range tests {
		for _, m := range []mode{direct, gateway} {
			name := fmt.Sprintf("%s/%s/%s/offline=%s", tt.kind, tt.state, m, tt.offline)
			t.Run(name, func(t *testing.T) {
				got := runVisit(t, tt.payload, tt.state, m, tt.offline)
				if got.his != tt.his {
					t.Errorf("HIS told %q, want %q", got.his, tt.his)
				}
				if !slices.Equal(got.calls, tt.calls) {
					t.Errorf("platform calls %q, want %q", got.calls, tt.calls)
				}
				if !slices.Equal(got.records, tt.records) {
					t.Errorf("records %q, want %q", got.records, tt.records)
				}
				if tt.counted == "" {
					t.Fatal("say how the visit is counted")
				}
			})
		}
	}
}

type outcome struct {
	his     string
	calls   []string
	records []string
}

func runVisit(t *testing.T, payload string, st state, m mode, offline string) outcome {
	t.Helper()
	parser, err := code.NewParser(code.Options{Custom: []code.CustomType{{Name: "hospital_card", Pattern: `^HC[0-9]{10}$`}}})
	if err != nil {
		t.Fatal(err)
	}
	ehc := &fakeVerifier{state: st, mode: m}
	skm := &fakeVerifier{name: "skm", state: st, mode: direct}
	route := func(_ context.Context, r card.Request) string {
		if r.Kind == card.KindEHCDynamic {
			return "verifyQRCode"
		}
		return getCard
	}
	ob := &fakeOutbox{}
	p := visit.New(visit.Options{Parser: parser, EHC: verifierByKind{ehc, route}, SKM: skm, Offline: offline,
		Reports: map[string]card.ReportDefaults{source: {Scene: "0101015", Channel: "0100"}}, Log: zerolog.Nop()})
	p.SetOutbox(ob)
	var visits []card.Visit
	p.AddSink("his", sinkFunc(func(v card.Visit) { visits = append(visits, v) }))
	p.Handle(context.Background(), card.Scan{Data: []byte(payload), Source: source, At: time.Now()})
	if len(visits) != 1 {
		t.Fatalf("the HIS got %d visits, want 1", len(visits))
	}
	v := visits[0]
	recs := make([]string, len(ob.records))
	for i, r := range ob.records {
		recs[i] = strings.Replace(r, v.ID, "<id>", 1)
	}
	var calls []string
	for _, f := range []*fakeVerifier{ehc, skm} {
		calls = append(calls, f.calls...)
	}
	return outcome{his: his(v), calls: calls, records: recs}
}

// verifierByKind names the e-Health Card call by the code's kind.
type verifierByKind struct {
	f    *fakeVerifier
	name func(context.Context, card.Request) string
}

func (v verifierByKind) Verify(ctx context.Context, r card.Request) (card.Identity, error) {
	v.f.name = v.name(ctx, r)
	return v.f.Verify(ctx, r)
}

// With the platform switched off (platform.mode = "off") or [skm]
// disabled, those codes are refused here, not sent anywhere.
func TestVerifierMissing(t *testing.T) {
	parser, _ := code.NewParser(code.Options{})
	for _, payload := range []string{staticCode, dynamicCode, skmCode} {
		var got card.Visit
		p := visit.New(visit.Options{Parser: parser, Log: zerolog.Nop()})
		p.AddSink("his", sinkFunc(func(v card.Visit) { got = v }))
		p.Handle(context.Background(), card.Scan{Data: []byte(payload), Source: source, At: time.Now()})
		if his(got) != "refused rejected" || !strings.Contains(got.Error.Message, "not accepted here") {
			t.Errorf("%.20s: %q %+v", payload, his(got), got.Error)
		}
	}
}

// A verification that runs out of time is a timeout for the HIS; a scan
// cut at max_frame is too_long; a held trigger is suppressed.
func TestVisitEdges(t *testing.T) {
	parser, _ := code.NewParser(code.Options{})
	slow := verifierFunc(func(ctx context.Context, _ card.Request) (card.Identity, error) { return card.Identity{}, ctx.Err() })
	var got []card.Visit
	p := visit.New(visit.Options{Parser: parser, EHC: slow, Debounce: code.NewDebouncer(time.Second), Log: zerolog.Nop()})
	p.AddSink("his", sinkFunc(func(v card.Visit) { got = append(got, v) }))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	now := time.Now()
	p.Handle(ctx, card.Scan{Data: []byte(staticCode), Source: source, At: now})
	p.Handle(ctx, card.Scan{Data: []byte(staticCode), Source: source, At: now.Add(200 * time.Millisecond)})
	p.Handle(ctx, card.Scan{Data: []byte("x"), Source: source, At: now, Overflow: true})
	if len(got) != 2 || his(got[0]) != "refused timeout" || his(got[1]) != "refused too_long" {
		t.Fatalf("visits: %+v", got)
	}
	if st := p.Stats(); st.Suppressed.Load() != 1 || st.Failed.Load() != 1 || st.Rejected.Load() != 1 || st.Scans.Load() != 3 {
		t.Fatalf("stats: %+v", st)
	}
}

// A refused report (disk full) does not keep the identity from the HIS,
// and is counted.
func TestReportRefusedStillHandsOver(t *testing.T) {
	parser, _ := code.NewParser(code.Options{})
	ob := &fakeOutbox{err: errors.New("outbox full: no space left on device")}
	var visits []card.Visit
	p := visit.New(visit.Options{Parser: parser, EHC: &fakeVerifier{name: getCard, state: up},
		Reports: map[string]card.ReportDefaults{source: {Scene: "010105", Channel: "0100"}}, Log: zerolog.Nop()})
	p.SetOutbox(ob)
	p.AddSink("his", sinkFunc(func(v card.Visit) { visits = append(visits, v) }))
	for range 3 {
		p.Handle(context.Background(), card.Scan{Data: []byte(staticCode), Source: source, At: time.Now()})
	}
	if len(visits) != 3 || visits[0].Identity == nil || p.Stats().ReportsRefused.Load() != 3 || p.Stats().Reports.Load() != 0 {
		t.Fatalf("visits %d refused %d", len(visits), p.Stats().ReportsRefused.Load())
	}
}

// The HIS reporting a scan the agent already reported (or reporting it
// twice) names the same visit: the same outbox key, so one record. A
// report without a scan is keyed by its Idempotency-Key, and gets the
// agent's defaults.
func TestRecorderKeysAndDefaults(t *testing.T) {
	ob := &fakeOutbox{}
	r := visit.Recorder{Outbox: ob, Defaults: card.ReportDefaults{Channel: "0200", Department: "内科"}}
	for _, key := range []string{"a", "b"} {
		if _, err := r.RecordUsage(context.Background(), "s1", key, card.Report{QRCodeText: staticCode, Scene: "010105", CardType: "11"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.RecordUsage(context.Background(), "", "k1", card.Report{IDCardNumber: idNumber, Name: "龙小英", Scene: "010105", CardType: "01"}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"report scan:s1 scene=010105 cardType=11 channel=0200",
		"report scan:s1 scene=010105 cardType=11 channel=0200",
		"report his:k1 scene=010105 cardType=01 channel=0200",
	}
	if !slices.Equal(ob.records, want) {
		t.Fatalf("records %q, want %q", ob.records, want)
	}
}

type verifierFunc func(context.Context, card.Request) (card.Identity, error)

func (f verifierFunc) Verify(ctx context.Context, r card.Request) (card.Identity, error) {
	return f(ctx, r)
}

// A report is journaled before the identity reaches the HIS and its
// journal entry ends only after the commit: a crash at any point between
// leaves it either in the journal or in the outbox.
func TestReportJournaledAcrossTheHandoff(t *testing.T) {
	parser, _ := code.NewParser(code.Options{})
	ob := &fakeOutbox{}
	var atHandoff, afterHandoff int
	p := visit.New(visit.Options{Parser: parser, EHC: &fakeVerifier{name: getCard, state: up},
		Reports: map[string]card.ReportDefaults{source: {Scene: "010105", Channel: "0100"}}, Log: zerolog.Nop(),
		AfterHandoff: func(card.Visit) { afterHandoff = ob.journaled() + 10*len(ob.records) }})
	p.SetOutbox(ob)
	p.AddSink("his", sinkFunc(func(card.Visit) { atHandoff = ob.journaled() + 10*len(ob.records) }))
	p.Handle(context.Background(), card.Scan{Data: []byte(staticCode), Source: source, At: time.Now()})
	if atHandoff != 1 || afterHandoff != 1 {
		t.Fatalf("at the hand-off: %d, after it: %d; want the report journaled (1) and not yet committed", atHandoff, afterHandoff)
	}
	if ob.journaled() != 0 || len(ob.records) != 1 {
		t.Fatalf("after Handle: %d journaled, %d committed; want 0 and 1", ob.journaled(), len(ob.records))
	}
}
