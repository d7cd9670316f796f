package verify

import (
	"context"
	"testing"

	"scanagent/internal/card"
	"scanagent/test/fakeplatform/platform"
)

// A queued record whose token was refused must not be resent with the same
// requestId (guide FAQ 2): the platform answered it, and a platform that
// remembers ids would answer the resend 10054, which the outbox would take
// for "delivered". The client drops the token and hands back a definite
// card.TokenExpired error; the outbox retries with a new id.
func TestTokenRejectedQueuedRecordKeepsNoID(t *testing.T) {
	cards := platform.BuiltinCards()
	r := card.Report{QRCodeText: cards[0].QRCodeText, Time: "2026-11-23 18:00:00", Scene: "010101", Department: "内科", CardType: "11", CardChannel: "0100"}
	for name, newClient := range implementations() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t)
			c := newClient(t, e)
			if _, err := c.Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: cards[0].QRCodeText}); err != nil {
				t.Fatal(err)
			}
			// Another holder of the appId fetches a token: ours is dead (21004).
			if _, err := e.direct().Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: cards[0].QRCodeText}); err != nil {
				t.Fatal(err)
			}
			rid := card.NewRequestID()
			ee := wantClass(t, c.ReportHISData(ctx, r, rid), card.TokenExpired, 21004)
			if ee.Unknown || ee.RequestID != rid {
				t.Fatalf("want a definite answer to %s, got %+v", rid, ee)
			}
			st := e.fake.Stats()
			if n := st.Calls["reportHISData"]; n != 1 || len(st.Reports) != 0 {
				t.Fatalf("requestId %s sent %d times, %d reports accepted; want it sent once and nothing accepted", rid, n, len(st.Reports))
			}
			// The outbox's next round: a new id, a new token.
			if err := c.ReportHISData(ctx, r, card.NewRequestID()); err != nil {
				t.Fatalf("retry with a new requestId: %v", err)
			}
			if st := e.fake.Stats(); len(st.Reports) != 1 || st.Reports[0].RequestID == rid || st.Tokens != 3 {
				t.Fatalf("reports %+v, tokens %d: want one report under a new id after one refresh", st.Reports, st.Tokens)
			}
		})
	}
}

// A fresh call (a verification) still refreshes the token once and retries
// at once, with a new requestId.
func TestTokenRejectedFreshCallRetriesWithNewID(t *testing.T) {
	e := newEnv(t)
	c := e.direct()
	ctx := context.Background()
	req := card.Request{Kind: card.KindEHCStatic, Text: platform.BuiltinCards()[0].QRCodeText}
	if _, err := c.Verify(ctx, req); err != nil {
		t.Fatal(err)
	}
	e.fake.SetFaults(platform.Faults{APIs: []string{"getHealthCardByQRCode"}, ResultCode: 21003, Count: 1})
	if _, err := c.Verify(ctx, req); err != nil {
		t.Fatalf("after 21003: %v", err)
	}
	st := e.fake.Stats()
	if st.Tokens != 2 || st.Duplicates != 0 || st.Calls["getHealthCardByQRCode"] != 3 {
		t.Fatalf("tokens %d, duplicates %d, calls %d: want one refresh and a retry under a new id", st.Tokens, st.Duplicates, st.Calls["getHealthCardByQRCode"])
	}
}
