package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
)

// post sends body to the gateway at url+path with a bearer token and
// returns the HTTP status.
func post(t *testing.T, url, path, token, body string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", url+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// Only a terminal's exact token is accepted; the client takes a refusal
// as a configuration error, and the upstream is never called.
func TestAuth(t *testing.T) {
	var calls atomic.Int32
	up := upstream{verify: func(context.Context, card.Request) (card.Identity, error) {
		calls.Add(1)
		return card.Identity{}, nil
	}}
	url := start(t, up, zerolog.Nop())
	for _, tok := range []string{"", "terminal-token-012345678", "terminal-token-01234567890", "wrong"} {
		_, err := client(url, tok, newClock()).Verify(context.Background(), card.Request{Kind: card.KindEHCStatic, Text: "x:1"})
		if e := wantClass(t, err, card.Fatal, 0); !strings.Contains(e.Msg, "gateway_token") {
			t.Errorf("token %q: %v, want a hint at platform.gateway_token", tok, e)
		}
	}
	req, _ := http.NewRequest("POST", url+pathVerify, strings.NewReader(`{"kind":"ehc_static"}`))
	req.Header.Set("Authorization", "Basic "+terminalToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("basic auth: %v %v", resp, err)
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("upstream called %d times without a valid token", n)
	}
	if _, err := client(url, terminalToken, newClock()).Verify(context.Background(), card.Request{Kind: card.KindEHCStatic, Text: "x:1"}); err != nil {
		t.Fatal(err)
	}
}

// Unknown fields are refused (400), and the client hands the refusal back
// as a rejection.
func TestStrictDecoding(t *testing.T) {
	url := start(t, upstream{}, zerolog.Nop())
	for path, body := range map[string]string{
		pathVerify: `{"kind":"ehc_static","bogus":1}`,
		pathReport: `{"requestId":"R","report":{"scene":"010101","extra":1}}`,
		pathBind:   `{"requestId":"R","binding":{"patid":"P"},"more":true}`,
	} {
		if got := post(t, url, path, terminalToken, body); got != http.StatusBadRequest {
			t.Errorf("%s %s: HTTP %d, want 400", path, body, got)
		}
	}
}

// A verification is stamped with the authenticated terminal, whatever the
// request says.
func TestStampsTerminal(t *testing.T) {
	got := make(chan string, 2)
	up := upstream{verify: func(ctx context.Context, r card.Request) (card.Identity, error) {
		got <- r.TerminalID
		return card.Identity{QRCodeText: r.Text}, nil
	}}
	srv := New(up, map[string]string{"counter-07": "token-seven-0123456789", "counter-08": "token-eight-0123456789"}, nil, zerolog.Nop())
	url := serve(t, srv)
	for tok, want := range map[string]string{"token-seven-0123456789": "counter-07", "token-eight-0123456789": "counter-08"} {
		if _, err := client(url, tok, newClock()).Verify(context.Background(), card.Request{Kind: card.KindEHCDynamic, Text: "x", TerminalID: "spoofed"}); err != nil {
			t.Fatal(err)
		}
		if id := <-got; id != want {
			t.Fatalf("terminalId = %q, want the authenticated terminal %q", id, want)
		}
	}
}

// A gateway whose upstream call ended without a definite answer (its
// context ended mid-call) tells the terminal the outcome is unknown.
func TestUnknownWithoutAnswer(t *testing.T) {
	url := start(t, upstream{report: func(context.Context, card.Report, string) error { return context.DeadlineExceeded }}, zerolog.Nop())
	err := client(url, terminalToken, newClock()).ReportHISData(context.Background(), card.Report{}, card.NewRequestID())
	if e := wantClass(t, err, card.Retryable, 0); !e.Unknown || !e.Unavailable {
		t.Fatalf("err = %+v, want unknown and unavailable", e)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("the gateway's own context error leaked to the terminal as its own")
	}
}

// The scan's medicalStep, useScene and useChannel pass the strict
// decoding; a misspelt field does not.
func TestAcceptsScanOverrides(t *testing.T) {
	var got card.Request
	url := start(t, upstream{verify: func(ctx context.Context, r card.Request) (card.Identity, error) {
		got = r
		return card.Identity{QRCodeText: r.Text}, nil
	}}, zerolog.Nop())
	for body, want := range map[string]int{
		`{"kind":"ehc_dynamic","qrCodeText":"x","medicalStep":"010102","useScene":"010102","useChannel":"0100"}`: 200,
		`{"kind":"ehc_dynamic","qrCodeText":"x","usescene2":"010102"}`:                                           400,
	} {
		if status := post(t, url, pathVerify, terminalToken, body); status != want {
			t.Fatalf("%s: HTTP %d, want %d", body, status, want)
		}
	}
	if got.UseScene != "010102" || got.UseChannel != "0100" || got.MedicalStep != "010102" {
		t.Fatalf("upstream got %+v", got)
	}
}

// The gateway's log names terminals, paths and classes; personal data
// only masked, tokens never.
func TestLogsNoPersonalData(t *testing.T) {
	logs := &syncBuffer{}
	id := card.Identity{Name: "龙小英", IDNumber: "432901198810228888", Phone: "18888882012", QRCodeText: "D109C4C340995DFC:1"}
	url := start(t, upstream{
		verify: func(context.Context, card.Request) (card.Identity, error) { return id, nil },
		report: func(context.Context, card.Report, string) error {
			return &card.Error{API: "reportHISData", Class: card.Rejected, Code: 10042, Msg: "参数错误"}
		},
	}, zerolog.New(logs).Level(zerolog.DebugLevel))
	c := client(url, terminalToken, newClock())
	ctx := context.Background()
	if _, err := c.Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: id.QRCodeText}); err != nil {
		t.Fatal(err)
	}
	c.ReportHISData(ctx, card.Report{QRCodeText: id.QRCodeText, IDCardNumber: id.IDNumber, Name: id.Name}, "R1")
	client(url, "stolen-token-0123456789", newClock()).Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: id.QRCodeText})
	out := logs.String()
	for _, want := range []string{"4329**********8888", terminalID, `"class":"rejected"`, "without a valid terminal token"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{id.Name, id.IDNumber, id.Phone, id.QRCodeText, terminalToken, "stolen-token"} {
		if strings.Contains(out, secret) {
			t.Errorf("log leaks %q:\n%s", secret, out)
		}
	}
}

// Calls without a valid terminal token can come from anyone on the LAN, as
// fast as they like: they are logged at most once a minute, not once each.
func TestRefusedCallsDoNotFloodTheLog(t *testing.T) {
	var logs syncBuffer
	url := start(t, upstream{}, zerolog.New(&logs))
	for range 100 {
		resp, err := http.Post(url+pathVerify, "application/json", strings.NewReader(`{"kind":"ehc_static"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	}
	if n := strings.Count(logs.String(), "without a valid terminal token"); n != 1 {
		t.Fatalf("%d log lines for 100 refused calls, want 1", n)
	}
}
