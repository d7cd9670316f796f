package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/internal/verify"
)

// The wire's contract, end to end: a terminal's client (verify.Gateway)
// hands its caller the *card.Error the gateway's upstream answered, equal
// in every field but the cause (Err), which stays at the gateway. The
// outbox and the visit policy on the terminal decide on these fields
// exactly as they would on the gateway.
func TestRoundTripErrors(t *testing.T) {
	const rid = "0123456789ABCDEF0123456789ABCDEF"
	midnight := time.Date(2026, 11, 24, 0, 0, 0, 0, card.CST)
	errs := map[string]*card.Error{
		"retryable platform fault": {API: "getHealthCardByQRCode", Class: card.Retryable, Code: -1, Msg: "卡管平台异常", RequestID: rid},
		"retryable unknown outcome": {API: "reportHISData", Class: card.Retryable, Msg: "request failed", RequestID: rid,
			Unknown: true, Unavailable: true, Err: io.ErrUnexpectedEOF},
		"retryable breaker open": {API: "verifyQRCode", Class: card.Retryable, Msg: "platform unavailable: circuit breaker open",
			Unavailable: true, RetryAfter: time.Date(2026, 11, 23, 10, 0, 30, 123456789, time.UTC)},
		"fatal": {API: "getAppToken", Class: card.Fatal, Code: 21006, Msg: "签名错误 <appId&nonce>", RequestID: rid,
			Err: errors.New("signedKeys appId,nonce")},
		"rejected":              {API: "getHealthCardByQRCode", Class: card.Rejected, Code: -10019, Msg: "二维码无效", RequestID: rid},
		"rate limited 10034":    {API: "reportHISData", Class: card.RateLimited, Code: 10034, Msg: "接口调用次数限制", RequestID: rid, RetryAfter: midnight},
		"rate limited 21007":    {API: "bindCardRelation", Class: card.RateLimited, Code: 21007, Msg: "接口调用被限制", RetryAfter: midnight.Add(-90 * time.Minute)},
		"token expired":         {API: "reportHISData", Class: card.TokenExpired, Code: 21003, Msg: "appToken已过期", RequestID: rid},
		"duplicate":             {API: "reportHISData", Class: card.Duplicate, Code: 10054, Msg: "重复请求", RequestID: rid},
		"skm rejected, no code": {API: "verify", Class: card.Rejected, Msg: "Su Kang Codes are not accepted here ([skm] is not enabled)"},
	}
	covered := map[card.Class]bool{}
	for _, e := range errs {
		covered[e.Class] = true
	}
	for c := card.Retryable; c <= card.Duplicate; c++ {
		if !covered[c] {
			t.Fatalf("class %s not covered", c)
		}
	}
	calls := map[string]func(ctx context.Context, c *verify.Gateway) error{
		"verify": func(ctx context.Context, c *verify.Gateway) error {
			_, err := c.Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: "x:1"})
			return err
		},
		"report": func(ctx context.Context, c *verify.Gateway) error {
			return c.ReportHISData(ctx, card.Report{}, rid)
		},
		"bind": func(ctx context.Context, c *verify.Gateway) error {
			return c.BindCardRelation(ctx, card.Binding{}, rid)
		},
	}
	for name, want := range errs {
		for call, do := range calls {
			for _, wrapped := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/wrapped=%v", name, call, wrapped), func(t *testing.T) {
					var answer error = want
					if wrapped {
						answer = fmt.Errorf("gatewayUpstream: %w", want)
					}
					fail := func() error { return answer }
					url := start(t, upstream{
						verify: func(context.Context, card.Request) (card.Identity, error) { return card.Identity{}, fail() },
						report: func(context.Context, card.Report, string) error { return fail() },
						bind:   func(context.Context, card.Binding, string) error { return fail() },
					}, zerolog.Nop())
					got, ok := card.AsError(do(context.Background(), client(url, terminalToken, newClock())))
					if !ok {
						t.Fatalf("client returned %v, want an *card.Error", got)
					}
					assertSameError(t, got, want)
				})
			}
		}
	}
}

// assertSameError fails unless got and want agree in every field but Err.
func assertSameError(t *testing.T, got, want *card.Error) {
	t.Helper()
	if !got.RetryAfter.Equal(want.RetryAfter) {
		t.Errorf("RetryAfter = %v, want %v", got.RetryAfter, want.RetryAfter)
	}
	g, w := *got, *want
	g.Err, w.Err = nil, nil
	g.RetryAfter, w.RetryAfter = time.Time{}, time.Time{}
	if g != w {
		t.Errorf("client got %+v\n         want %+v", g, w)
	}
	if got.Err != nil {
		t.Errorf("Err = %v: the cause stays at the gateway", got.Err)
	}
}

// An error that is not an *card.Error (no definite answer: the gateway's
// call ended mid-way) reaches the terminal as a retryable, unknown,
// unavailable outcome of the gateway.
func TestRoundTripNoAnswer(t *testing.T) {
	for name, cause := range map[string]error{
		"deadline": context.DeadlineExceeded,
		"canceled": fmt.Errorf("reportHISData: %w", context.Canceled),
		"plain":    errors.New("connection reset by peer"),
	} {
		t.Run(name, func(t *testing.T) {
			url := start(t, upstream{report: func(context.Context, card.Report, string) error { return cause }}, zerolog.Nop())
			err := client(url, terminalToken, newClock()).ReportHISData(context.Background(), card.Report{}, "R")
			got, ok := card.AsError(err)
			if !ok {
				t.Fatalf("err = %v", err)
			}
			assertSameError(t, got, &card.Error{API: "gateway", Class: card.Retryable, Msg: cause.Error(), Unknown: true, Unavailable: true})
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("the gateway's context error leaked to the terminal as its own")
			}
		})
	}
}

// Identities come back equal, whatever the kind of code; requests,
// reports and bindings reach the upstream equal, the verification stamped
// with the authenticated terminal.
func TestRoundTripValues(t *testing.T) {
	tests := []struct {
		req card.Request
		id  card.Identity
	}{
		{card.Request{Kind: card.KindEHCStatic, Text: "D109C4C340995DFC:1"},
			card.Identity{Name: "龙小英", Gender: "女", Nation: "汉族", Birthday: "1988-10-22", IDType: "01", IDNumber: "432901198810228888",
				Phone: "18888882012", Address: `厦门市<思明区>&"湖滨" \ 1号` + "\u2028", PHID: "B146D0EA", HealthCardID: "D109C4C3", PatID: "P001",
				QRCodeText: "D109C4C340995DFC:1"}},
		{card.Request{Kind: card.KindEHCDynamic, Text: "D109:0:0E3C::35020001001", MedicalStep: "0101051", UseScene: "0101051", UseChannel: "0200"},
			card.Identity{Name: "张三", IDType: "01", IDNumber: "11010519491231002X", QRCodeText: "D109:0:0E3C::35020001001"}},
		{card.Request{Kind: card.KindSKM, Text: "https://jsstm.jszwfw.gov.cn/jkm/2?t=GREEN0001"},
			card.Identity{Name: "欧阳娜娜", IDNumber: "350203200002290025", Level: "green", Tip: "绿码"}},
		{card.Request{Kind: card.KindIDCard, IDNumber: "432901198810228888"}, card.Identity{IDType: "01", IDNumber: "432901198810228888"}},
		{card.Request{Kind: card.KindCustom, Text: "H0001234"}, card.Identity{CustomType: "hospital_card", PatID: "H0001234"}},
		{card.Request{Kind: card.KindEHCStatic, Text: "empty:1"}, card.Identity{}},
	}
	var gotReq card.Request
	var gotReport card.Report
	var gotBind card.Binding
	var gotRID string
	var answer card.Identity
	url := start(t, upstream{
		verify: func(_ context.Context, r card.Request) (card.Identity, error) { gotReq = r; return answer, nil },
		report: func(_ context.Context, r card.Report, rid string) error { gotReport, gotRID = r, rid; return nil },
		bind:   func(_ context.Context, b card.Binding, rid string) error { gotBind, gotRID = b, rid; return nil },
	}, zerolog.Nop())
	c := client(url, terminalToken, newClock())
	ctx := context.Background()
	for _, tt := range tests {
		answer = tt.id
		sent := tt.req
		sent.TerminalID = "spoofed"
		id, err := c.Verify(ctx, sent)
		if err != nil {
			t.Fatal(err)
		}
		if id != tt.id {
			t.Errorf("%s: identity\n got %+v\nwant %+v", tt.req.Kind, id, tt.id)
		}
		want := tt.req
		want.TerminalID = terminalID
		if gotReq != want {
			t.Errorf("%s: upstream got request %+v, want %+v", tt.req.Kind, gotReq, want)
		}
	}
	for _, r := range []card.Report{
		{QRCodeText: "D109C4C340995DFC:1", Time: "2026-11-23 18:00:00", Scene: "010101", Department: "内科<急诊>", CardType: "11", CardChannel: "0100"},
		{IDCardNumber: "432901198810228888", Name: "龙小英", Time: "2026-11-23 18:00:00", Scene: "010101", CardType: "01", CardChannel: "0200"},
		{},
	} {
		for _, rid := range []string{"0123456789ABCDEF0123456789ABCDEF", ""} {
			if err := c.ReportHISData(ctx, r, rid); err != nil {
				t.Fatal(err)
			}
			if gotReport != r || gotRID != rid {
				t.Errorf("upstream got report %+v %q, want %+v %q", gotReport, gotRID, r, rid)
			}
		}
	}
	for _, b := range []card.Binding{{PatID: "P001", QRCodeText: "D109C4C340995DFC:1"}, {}} {
		if err := c.BindCardRelation(ctx, b, "RID-1"); err != nil {
			t.Fatal(err)
		}
		if gotBind != b || gotRID != "RID-1" {
			t.Errorf("upstream got binding %+v %q, want %+v", gotBind, gotRID, b)
		}
	}
}
