package verify

import (
	"context"
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
