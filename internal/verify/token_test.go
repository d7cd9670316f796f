package verify

import (
	"context"
	"strings"
	"testing"
	"time"

	"scanagent/internal/card"
	"scanagent/test/fakeplatform/platform"
)

// The token holder's fetch hold-off (token.go): one fresh token refused is
// another holder's doing and is replaced at once; a second in a row holds
// the next fetch off, doubling, until a token outlives freshWindow.
func TestTokenHoldOff(t *testing.T) {
	clk := newClock()
	fetches := 0
	h := newTokenHolder(func(context.Context) (string, time.Duration, error) {
		fetches++
		return "tok" + string(rune('0'+fetches)), time.Hour, nil
	}, clk.Now, time.Second)
	ctx := context.Background()
	token := func() (string, error) { return h.Token(ctx) }
	refuseFresh := func() {
		t.Helper()
		tok, err := token()
		if err != nil {
			t.Fatalf("fetch %d: %v", fetches+1, err)
		}
		h.Invalidate(tok)
	}
	refuseFresh() // another holder fetched: replaced at once
	refuseFresh() // refused as fast: hold off 30 s
	if _, err := token(); card.ClassOf(err) != card.TokenExpired || !strings.Contains(err.Error(), "hospital_id") {
		t.Fatalf("during the hold-off: %v, want token_expired naming hospital_id", err)
	}
	if e, _ := card.AsError(func() error { _, err := token(); return err }()); e == nil || !e.RetryAfter.Equal(clk.Now().Add(holdMin)) {
		t.Fatalf("hold-off error %+v, want RetryAfter = now + %v", e, holdMin)
	}
	if fetches != 2 {
		t.Fatalf("%d fetches, want 2 (none during the hold-off)", fetches)
	}
	for _, hold := range []time.Duration{holdMin, 2 * holdMin, 4 * holdMin} {
		clk.Add(hold - time.Second)
		if _, err := token(); err == nil {
			t.Fatalf("fetched before the %v hold-off ended", hold)
		}
		clk.Add(time.Second)
		refuseFresh() // the hold-off ended; refused again: it doubles
	}
	clk.Add(64 * holdMin)
	tok, err := token()
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(freshWindow) // this one lived: refused later, it is replaced at once
	h.Invalidate(tok)
	refuseFresh()
	if _, err := token(); err != nil {
		t.Fatalf("after a token that lived: %v", err)
	}
}

// A wrong hospitalId makes the platform answer 21004 to every call
// (guide §3.2.12 "非法appToken或hospitalId"): scans are refused naming
// hospital_id, and getAppToken is not called scan after scan.
func TestRefusedFreshTokensDoNotStormGetAppToken(t *testing.T) {
	e := newEnv(t)
	c := e.direct()
	e.fake.SetFaults(platform.Faults{APIs: []string{APIGetHealthCardByQRCode}, ResultCode: 21004})
	req := card.Request{Kind: card.KindEHCStatic, Text: platform.BuiltinCards()[0].QRCodeText}
	var err error
	for range 10 {
		_, err = c.Verify(context.Background(), req)
		if err == nil {
			t.Fatal("verified with every token refused")
		}
	}
	if n := e.fake.Stats().Tokens; n != 2 {
		t.Fatalf("getAppToken called %d times over 10 scans, want 2 (then held off)", n)
	}
	if !strings.Contains(err.Error(), "hospital_id") {
		t.Fatalf("scan error %v does not name hospital_id", err)
	}
	if st := c.Status(); st.BreakerOpen {
		t.Fatalf("breaker open (%d failures): a refused token is not an outage", st.Failures)
	}
}
