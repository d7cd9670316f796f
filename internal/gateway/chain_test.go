package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/internal/verify"
	"scanagent/test/fakeplatform/platform"
)

// chain is a deployment in miniature: a terminal's client → a gateway
// server → the direct e-Health Card client → the fake platform. It is the
// gateway arm of internal/verify's contract suite, which runs the same
// scenarios against the direct client alone.
type chain struct {
	fake  *platform.Server
	clock *clock
	url   string // the platform's
}

func newChain(t testing.TB) *chain {
	t.Helper()
	c := newClock()
	fake := platform.New(platform.Config{Now: c.Now})
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	return &chain{fake: fake, clock: c, url: srv.URL}
}

// direct is a direct client of the fake platform, as the gateway's agent
// builds it.
func (ch *chain) direct() *verify.EHC {
	d := platform.Defaults()
	return verify.NewEHC(verify.EHCOptions{
		AppID: d.AppID, AppSecret: d.AppSecret, HospitalID: d.HospitalID,
		BaseURL: ch.url + platform.APIPrefix, TokenURL: ch.url + platform.TokenPath,
		HTTP: &http.Client{Timeout: 2 * time.Second}, TerminalID: "gateway-host", UseCityCode: "350200", UseCityName: "厦门市",
		HospitalCode: "90003", HospitalName: "示例医院", Retries: 1, BreakerFailures: 3, BreakerCooldown: 30 * time.Second,
		RateLimitPause: time.Hour, Log: zerolog.Nop(), Now: ch.clock.Now,
	})
}

// terminal starts a gateway in front of a direct client and returns a
// terminal's client of it.
func (ch *chain) terminal(t testing.TB) *verify.Gateway {
	url := start(t, ch.direct(), zerolog.Nop())
	return verify.NewGateway(verify.GatewayOptions{URL: url, Token: terminalToken, Retries: 1, BreakerFailures: 3,
		BreakerCooldown: 30 * time.Second, Now: ch.clock.Now})
}

func TestThroughGateway(t *testing.T) {
	cards := platform.BuiltinCards()
	ctx := context.Background()
	t.Run("static", func(t *testing.T) {
		ch := newChain(t)
		id, err := ch.terminal(t).Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: cards[1].QRCodeText})
		if err != nil {
			t.Fatal(err)
		}
		if id.Name != "龙小英" || id.IDNumber != "432901198810228888" || id.IDType != "01" || id.Phone != "18888882012" {
			t.Fatalf("identity = %+v", id)
		}
	})
	t.Run("dynamic fixed and minted", func(t *testing.T) {
		ch := newChain(t)
		c := ch.terminal(t)
		id, err := c.Verify(ctx, card.Request{Kind: card.KindEHCDynamic, Text: cards[0].DynamicQRCodeText})
		if err != nil || id.Name != "张三" || id.IDNumber != "11010519491231002X" {
			t.Fatalf("fixed dynamic: %+v %v", id, err)
		}
		code, _ := ch.fake.MintDynamic(2)
		if id, err := c.Verify(ctx, card.Request{Kind: card.KindEHCDynamic, Text: code}); err != nil || id.Name != "欧阳娜娜" {
			t.Fatalf("minted dynamic: %+v %v", id, err)
		}
		ch.clock.Add(6 * time.Minute)
		_, err = c.Verify(ctx, card.Request{Kind: card.KindEHCDynamic, Text: code})
		wantClass(t, err, card.Rejected, 10008)
	})
	t.Run("unknown card rejected", func(t *testing.T) {
		ch := newChain(t)
		_, err := ch.terminal(t).Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: strings.Repeat("A", 64) + ":1"})
		wantClass(t, err, card.Rejected, -10019)
	})
	t.Run("report and bind delivered once", func(t *testing.T) {
		ch := newChain(t)
		c := ch.terminal(t)
		r := card.Report{QRCodeText: cards[0].QRCodeText, Time: "2026-11-23 18:00:00", Scene: "010101", Department: "内科", CardType: "11", CardChannel: "0100"}
		rid := card.NewRequestID()
		if err := c.ReportHISData(ctx, r, rid); err != nil {
			t.Fatal(err)
		}
		if err := c.BindCardRelation(ctx, card.Binding{PatID: "P001", QRCodeText: cards[0].QRCodeText}, ""); err != nil {
			t.Fatal(err)
		}
		// Replaying the same requestId is answered 10054.
		wantClass(t, c.ReportHISData(ctx, r, rid), card.Duplicate, 10054)
		st := ch.fake.Stats()
		if len(st.Reports) != 2 || st.Reports[0].RequestID != rid || st.Reports[0].Req["department"] != "内科" {
			t.Fatalf("reports = %+v", st.Reports)
		}
	})
	t.Run("id report uses configured field", func(t *testing.T) {
		ch := newChain(t)
		r := card.Report{IDCardNumber: "432901198810228888", Name: "龙小英", Time: "2026-11-23 18:00:00", Scene: "010101", CardType: "01", CardChannel: "0200"}
		if err := ch.terminal(t).ReportHISData(ctx, r, ""); err != nil {
			t.Fatal(err)
		}
		got := ch.fake.Stats().Reports[0].Req
		if got["idCardNumber"] != "432901198810228888" || got["name"] != "龙小英" || got["qrCodeText"] != "" {
			t.Fatalf("req = %v", got)
		}
	})
	t.Run("21003 mid-run recovers", func(t *testing.T) {
		ch := newChain(t)
		c := ch.terminal(t)
		if _, err := c.Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: cards[0].QRCodeText}); err != nil {
			t.Fatal(err)
		}
		ch.fake.SetFaults(platform.Faults{APIs: []string{"getHealthCardByQRCode"}, ResultCode: 21003, Count: 1})
		if _, err := c.Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: cards[0].QRCodeText}); err != nil {
			t.Fatalf("after 21003: %v", err)
		}
		if n := ch.fake.Stats().Tokens; n != 2 {
			t.Fatalf("tokens fetched = %d, want 2", n)
		}
	})
	t.Run("platform fault is retryable and unavailable", func(t *testing.T) {
		ch := newChain(t)
		c := ch.terminal(t)
		ch.fake.SetFaults(platform.Faults{Status: 502})
		_, err := c.Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: cards[0].QRCodeText})
		if !card.IsUnavailable(err) || card.ClassOf(err) != card.Retryable {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("rate limit pauses the API", func(t *testing.T) {
		ch := newChain(t)
		c := ch.terminal(t)
		ch.fake.SetFaults(platform.Faults{APIs: []string{"reportHISData"}, ResultCode: 10034, Count: 1})
		r := card.Report{QRCodeText: cards[0].QRCodeText, Time: "2026-11-23 18:00:00", Scene: "010101", CardType: "11", CardChannel: "0100"}
		wantClass(t, c.ReportHISData(ctx, r, ""), card.RateLimited, 10034)
		wantClass(t, c.ReportHISData(ctx, r, ""), card.RateLimited, 0)
		// Other APIs keep working.
		if _, err := c.Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: cards[0].QRCodeText}); err != nil {
			t.Fatal(err)
		}
	})
}

// A queued record whose token was refused comes back to the terminal as a
// definite card.TokenExpired for its requestId, sent once (guide FAQ 2);
// the outbox's retry under a new id goes through.
func TestThroughGatewayTokenRejectedKeepsNoID(t *testing.T) {
	cards := platform.BuiltinCards()
	r := card.Report{QRCodeText: cards[0].QRCodeText, Time: "2026-11-23 18:00:00", Scene: "010101", Department: "内科", CardType: "11", CardChannel: "0100"}
	ctx := context.Background()
	ch := newChain(t)
	c := ch.terminal(t)
	if _, err := c.Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: cards[0].QRCodeText}); err != nil {
		t.Fatal(err)
	}
	// Another holder of the appId fetches a token: the gateway's is dead (21004).
	if _, err := ch.direct().Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: cards[0].QRCodeText}); err != nil {
		t.Fatal(err)
	}
	rid := card.NewRequestID()
	ee := wantClass(t, c.ReportHISData(ctx, r, rid), card.TokenExpired, 21004)
	if ee.Unknown || ee.RequestID != rid {
		t.Fatalf("want a definite answer to %s, got %+v", rid, ee)
	}
	st := ch.fake.Stats()
	if n := st.Calls["reportHISData"]; n != 1 || len(st.Reports) != 0 {
		t.Fatalf("requestId %s sent %d times, %d reports accepted; want it sent once and nothing accepted", rid, n, len(st.Reports))
	}
	if err := c.ReportHISData(ctx, r, card.NewRequestID()); err != nil {
		t.Fatalf("retry with a new requestId: %v", err)
	}
	if st := ch.fake.Stats(); len(st.Reports) != 1 || st.Reports[0].RequestID == rid || st.Tokens != 3 {
		t.Fatalf("reports %+v, tokens %d: want one report under a new id after one refresh", st.Reports, st.Tokens)
	}
}

// verifyQRCode is the usage record of a dynamic code's visit (guide
// §3.2.11): through a gateway, the scan's medicalStep, useScene and
// useChannel travel with it, the terminal is the authenticated one, and
// the visit is counted once.
func TestThroughGatewayVerifyQRCodeCarriesScanOverrides(t *testing.T) {
	dyn := platform.BuiltinCards()[0].DynamicQRCodeText
	tests := []struct {
		name string
		req  card.Request
		want map[string]string // "" = absent from the request
	}{
		{"overrides", card.Request{MedicalStep: "0101051", UseScene: "0101051", UseChannel: "0200"},
			map[string]string{"medicalStep": "0101051", "useScene": "0101051", "useChannel": "0200", "terminalId": terminalID}},
		{"defaults", card.Request{TerminalID: "spoofed"},
			map[string]string{"medicalStep": "010101", "useScene": "", "useChannel": "", "terminalId": terminalID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := newChain(t)
			r := tt.req
			r.Kind, r.Text = card.KindEHCDynamic, dyn
			if _, err := ch.terminal(t).Verify(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			st := ch.fake.Stats()
			if len(st.Verifications) != 1 {
				t.Fatalf("verifications = %+v", st.Verifications)
			}
			got := st.Verifications[0].Req
			for k, v := range tt.want {
				if _, present := got[k]; got[k] != v || (v == "" && present) {
					t.Errorf("%s = %q (present %v), want %q", k, got[k], present, v)
				}
			}
			if st.Usage[dyn] != 1 || st.UsageTotals[platform.UsageVerifyDynamic] != 1 || len(st.Reports) != 0 {
				t.Fatalf("usage %v totals %v reports %d: want the visit counted once, by verifyQRCode", st.Usage, st.UsageTotals, len(st.Reports))
			}
		})
	}
}
