package verify

import (
	"context"
	"net/http"
	"testing"

	"scanagent/internal/card"
	"scanagent/test/fakeplatform/platform"
)

// verifyQRCode is the usage record of a dynamic code's visit (guide
// §3.2.11): the scan's medicalStep, useScene and useChannel travel with it,
// directly and through a gateway, and the visit is counted once.
func TestVerifyQRCodeCarriesScanOverrides(t *testing.T) {
	dyn := platform.BuiltinCards()[0].DynamicQRCodeText
	tests := []struct {
		name string
		req  card.Request
		want map[string]string // "" = absent from the request
	}{
		{"overrides", card.Request{MedicalStep: "0101051", UseScene: "0101051", UseChannel: "0200"},
			map[string]string{"medicalStep": "0101051", "useScene": "0101051", "useChannel": "0200"}},
		{"defaults", card.Request{},
			map[string]string{"medicalStep": "010101", "useScene": "", "useChannel": ""}},
	}
	for name, newClient := range implementations() {
		for _, tt := range tests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				e := newEnv(t)
				r := tt.req
				r.Kind, r.Text = card.KindEHCDynamic, dyn
				if _, err := newClient(t, e).Verify(context.Background(), r); err != nil {
					t.Fatal(err)
				}
				st := e.fake.Stats()
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
}

// bindCardRelation's result is required (guide §3.2.6): true is bound,
// false refused, and an answer without it is an unknown outcome (the
// record keeps its requestId; a replay's 10054 then means bound).
func TestBindCardRelationResult(t *testing.T) {
	for _, tt := range []struct {
		name, rsp string
		class     card.Class
		unknown   bool
	}{
		{"bound", `{"result":true}`, 0, false},
		{"refused", `{"result":false}`, card.Rejected, false},
		{"no result", `{}`, card.Retryable, true},
		{"no rsp", `null`, card.Retryable, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := stubPlatform(t, func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte(`{"commonOut":{"resultCode":0},"rsp":` + tt.rsp + `}`))
			})
			err := stubEHC(srv.URL, newClock()).BindCardRelation(context.Background(), card.Binding{PatID: "P1", QRCodeText: "x:1"}, "ID1")
			if tt.class == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			e := wantClass(t, err, tt.class, 0)
			if e.Unknown != tt.unknown {
				t.Fatalf("Unknown = %v, want %v", e.Unknown, tt.unknown)
			}
		})
	}
}
